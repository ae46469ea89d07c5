"""AV-Digits-Text: AV-Digits (image, audio) plus a generated ``text`` modality.

Nothing new is shipped: the text of each pair is generated at load time, deterministically, from
its label, the index of its image and a seed. Texts are short, varied descriptions of the
digit: number words and numerals inside small templates, small sums and differences whose result
is the digit ("three plus four"), neighbours ("just after six"), typos in the number words and
filler words. Some are deliberately unhelpful, so that text alone is imperfect:

* ``ambiguous`` (``p_ambiguous``): two digits, the true one and another, e.g. "either two or
  seven";
* ``other`` (``p_other``): a clear description of a *different* digit (a mislabelled caption).

Sums, differences and neighbours ("just after six") are a further ``p_arithmetic`` of the clear
texts: their answer is never written, and a bag-of-n-grams model mostly misses it. With the
defaults (16% unhelpful texts) and the default MLP encoder and training config, text alone
reached 0.756 and 0.753 test accuracy (training seeds 0 and 1), below image or audio alone: the
MLP also memorises the mislabelled captions, which costs some of the clear ones too.

``split.meta["text"]`` holds the raw strings, ``meta["text_kind"]`` the kind of each text
(``word``, ``numeral``, ``sum``, ``difference``, ``neighbour``, ``ambiguous``, ``other``) and
``meta["text_digit"]`` the digit it names (-1 for ambiguous ones). The model reads
``inputs["text"]``: a hashed bag of word and character n-grams
(:class:`umm_helpers.data.text_features.HashingFeaturizer`, ``dim`` floats), so the default MLP
encoder is the small trainable text encoder. To use a frozen pretrained sentence encoder
instead, see :func:`umm_helpers.methods.feature_cache.cache_features` with
:class:`umm_helpers.core.text.SentenceEncoder`.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from umm_helpers.data import av_digits
from umm_helpers.data.dataset import MultiModalDataset, Split
from umm_helpers.data.text_features import HashingFeaturizer

NAME = "av-digits-text"
WORDS = av_digits.WORDS
KINDS = ("word", "numeral", "sum", "difference", "neighbour", "ambiguous", "other")
# Clear kinds (neither ambiguous nor about another digit): plain ones, and arithmetic ones
# (``p_arithmetic`` of the clear texts) whose weights are relative within each group.
PLAIN_KINDS, PLAIN_WEIGHTS = ("word", "numeral"), (0.6, 0.4)
ARITHMETIC_KINDS, ARITHMETIC_WEIGHTS = ("sum", "difference", "neighbour"), (0.5, 0.2, 0.3)
SYNONYMS = {0: ("zero", "zero", "zero", "nought", "nil")}
LARGER = {10: "ten", 11: "eleven", 12: "twelve"}
FILLERS = ("um", "uh", "the", "a", "picture", "image", "photo", "clip", "sound", "shows",
           "clearly", "maybe", "probably", "i", "think", "looks", "like", "handwritten",
           "spoken", "quickly", "blurry", "noisy", "label", "ok", "hmm", "so", "well", "here")
WORD_TEMPLATES = ("{w}", "the digit {w}", "a handwritten {w}", "number {w}", "it is {w}",
                  "this one is a {w}", "{w} i think", "looks like {w}", "that is a {w}",
                  "spoken: {w}", "someone says {w}", "{w}, clearly")
NUMERAL_TEMPLATES = ("{n}", "digit {n}", "the number {n}", "a {n}", "it shows {n}", "#{n}",
                     "{n} on the page", "label {n}")
SUM_TEMPLATES = ("{a} plus {b}", "{a} + {b}", "{a} and {b} added", "the sum of {a} and {b}",
                 "what is {a} plus {b}")
DIFF_TEMPLATES = ("{a} minus {b}", "{a} - {b}", "{a} take away {b}")
BEFORE_TEMPLATES = ("just before {x}", "the digit before {x}", "comes before {x}")
AFTER_TEMPLATES = ("just after {x}", "the digit after {x}", "comes after {x}")
AMBIGUOUS_TEMPLATES = ("either {a} or {b}", "{a} or {b}", "{a} or maybe {b}",
                       "not sure: {a} or {b}", "could be {a}, could be {b}")
ENDINGS = ("", "", "", ".", "!", "?", "...")


@dataclass(frozen=True)
class TextConfig:
    """Every knob of the text generator; the defaults make ``load_dataset("av-digits-text")``."""

    seed: int = 0
    p_other: float = 0.08
    p_ambiguous: float = 0.08
    p_arithmetic: float = 0.10
    p_typo: float = 0.10
    p_filler: float = 0.25
    dim: int = 512

    def validate(self) -> TextConfig:
        for name in ("p_other", "p_ambiguous", "p_arithmetic", "p_typo", "p_filler"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"TextConfig.{name} = {value!r}: expected a number in [0, 1].")
        if self.p_other + self.p_ambiguous > 1.0:
            raise ValueError(f"TextConfig: p_other + p_ambiguous = "
                             f"{self.p_other + self.p_ambiguous} exceeds 1.")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"TextConfig.seed = {self.seed!r}: expected an integer >= 0.")
        return self


def _typo(word: str, rng: np.random.Generator) -> str:
    """One edit inside a word: swap two neighbours, drop or double a letter."""
    if len(word) < 3:
        return word
    i = int(rng.integers(1, len(word) - 1))
    op = int(rng.integers(3))
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == 1:
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def _word(d: int, rng: np.random.Generator, cfg: TextConfig) -> str:
    options = SYNONYMS.get(d, (WORDS[d] if d < 10 else LARGER[d],))
    word = str(options[int(rng.integers(len(options)))])
    return _typo(word, rng) if rng.random() < cfg.p_typo else word


def _operand(d: int, rng: np.random.Generator, cfg: TextConfig) -> str:
    return str(d) if rng.random() < 0.35 else _word(d, rng, cfg)


def _pick(options: Sequence[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _clear(d: int, kind: str, rng: np.random.Generator, cfg: TextConfig) -> str:
    if kind == "word":
        return _pick(WORD_TEMPLATES, rng).format(w=_word(d, rng, cfg))
    if kind == "numeral":
        return _pick(NUMERAL_TEMPLATES, rng).format(n=d)
    if kind == "sum":
        a = int(rng.integers(0, d + 1))
        return _pick(SUM_TEMPLATES, rng).format(a=_operand(a, rng, cfg),
                                                b=_operand(d - a, rng, cfg))
    if kind == "difference":
        b = int(rng.integers(1, 4))
        return _pick(DIFF_TEMPLATES, rng).format(a=_operand(d + b, rng, cfg),
                                                 b=_operand(b, rng, cfg))
    # neighbour
    up = d == 0 or (d < 9 and rng.random() < 0.5)
    if up:
        return _pick(BEFORE_TEMPLATES, rng).format(x=_operand(d + 1, rng, cfg))
    return _pick(AFTER_TEMPLATES, rng).format(x=_operand(d - 1, rng, cfg))


def _decorate(text: str, rng: np.random.Generator, cfg: TextConfig) -> str:
    words = text.split(" ")
    for _ in range(2):
        if rng.random() < cfg.p_filler:
            words.insert(int(rng.integers(len(words) + 1)), _pick(FILLERS, rng))
    out = " ".join(words) + _pick(ENDINGS, rng)
    return out[:1].upper() + out[1:] if rng.random() < 0.3 else out


def describe(label: int, key: int, cfg: TextConfig = TextConfig()) -> tuple[str, str, int]:
    """``(text, kind, digit named)`` for a pair with ``label``; ``key`` seeds it (image index).

    Deterministic: the generator is seeded by ``(cfg.seed, key)``.
    """
    d = int(label)
    rng = np.random.default_rng([cfg.seed, 0x7E47, int(key)])
    u = rng.random()
    if u < cfg.p_ambiguous:
        other = int((d + rng.integers(1, 10)) % 10)
        a, b = (d, other) if rng.random() < 0.5 else (other, d)
        text = _pick(AMBIGUOUS_TEMPLATES, rng).format(a=_operand(a, rng, cfg),
                                                     b=_operand(b, rng, cfg))
        return _decorate(text, rng, cfg), "ambiguous", -1
    kinds, weights = ((ARITHMETIC_KINDS, ARITHMETIC_WEIGHTS) if rng.random() < cfg.p_arithmetic
                      else (PLAIN_KINDS, PLAIN_WEIGHTS))
    kind = str(rng.choice(kinds, p=np.asarray(weights) / sum(weights)))
    if u < cfg.p_ambiguous + cfg.p_other:
        named = int((d + rng.integers(1, 10)) % 10)
        return _decorate(_clear(named, kind, rng, cfg), rng, cfg), "other", named
    return _decorate(_clear(d, kind, rng, cfg), rng, cfg), kind, d


def describe_split(labels: Sequence[int] | np.ndarray, keys: Sequence[int] | np.ndarray,
                   cfg: TextConfig = TextConfig()) -> dict[str, np.ndarray]:
    """``{"text", "text_kind", "text_digit"}`` arrays for one split."""
    rows = [describe(int(y), int(k), cfg) for y, k in zip(labels, keys)]
    texts, kinds, digits = zip(*rows) if rows else ((), (), ())
    return {"text": np.array(texts, dtype=str), "text_kind": np.array(kinds, dtype=str),
            "text_digit": np.array(digits, dtype=np.int64)}


def add_text(base: MultiModalDataset, cfg: TextConfig = TextConfig(),
             featurizer: HashingFeaturizer | None = None, name: str = NAME
             ) -> MultiModalDataset:
    """``base`` plus the generated ``text`` modality (needs ``meta["image_index"]``)."""
    cfg = cfg.validate()
    featurizer = featurizer or HashingFeaturizer(dim=cfg.dim)
    digest = hashlib.sha256(json.dumps({"config": asdict(cfg), "featurizer": featurizer.identity},
                                       sort_keys=True).encode())
    splits = []
    for split in base.splits().values():
        keys = split.meta.get("image_index")
        if keys is None:
            raise ValueError(f"split {split.name!r} has no meta['image_index'] to seed its texts.")
        meta_text = describe_split(split.labels.cpu().numpy(), np.asarray(keys), cfg)
        for t in meta_text["text"]:
            digest.update(t.encode("utf-8") + b"\x00")
        x = featurizer(list(meta_text["text"])).to(split.labels.device)
        splits.append(Split({**split.inputs, "text": x}, split.labels, list(split.classes),
                            split.name, {**split.meta, **meta_text}))
    checksum = f"{base.checksum}-t{digest.hexdigest()[:8]}" if base.checksum else ""
    info = {**base.info, "text_config": asdict(cfg), "text_featurizer": featurizer.identity}
    train, validation, test = splits
    return MultiModalDataset(train, validation, test, name=name, checksum=checksum, info=info)


def load(root: str | Path | None = None, verify_sums: bool = True,
         config: TextConfig | None = None, **overrides: Any) -> MultiModalDataset:
    """AV-Digits with image ``[N, 1, 8, 8]``, audio ``[N, 1, 32, 32]`` and text ``[N, dim]``.

    ``overrides`` set :class:`TextConfig` fields, e.g. ``load_dataset("av-digits-text",
    seed=1, p_other=0.1)``. The shipped files are read (and checked) exactly as for
    ``av-digits``; the text is generated on top, deterministically.
    """
    cfg = replace(config or TextConfig(), **overrides)
    return add_text(av_digits.load(root, verify_sums), cfg)


__all__ = ["NAME", "KINDS", "TextConfig", "describe", "describe_split", "add_text", "load"]
