"""Text as features: a hashed bag of n-grams (no extra packages), notebook 07.

:class:`HashingFeaturizer`: lower-cased word n-grams plus character n-grams of each word (with
``<`` ``>`` word boundaries, so typos still share most of their features), each hashed with
``zlib.crc32`` into ``dim`` buckets. The counts are log-damped (``log1p``) and each row is scaled
to unit length. ``crc32`` is the same on every machine and every run (Python's built-in
``hash()`` of a string is salted per process and is never used). With these vectors,
:func:`umm_helpers.core.encoders.default_encoder` (an MLP) is the small trainable text encoder.
The frozen pretrained sentence encoder is in :mod:`umm_helpers.core.text`.
"""
from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

DEFAULT_DIM = 512
_TOKEN_RE = re.compile(r"[a-z]+|[0-9]+|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-case tokens: runs of letters, runs of digits, and single symbols (``+``, ``-``)."""
    return _TOKEN_RE.findall(str(text).lower())


def _check_orders(name: str, orders: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(n) for n in orders)
    if any(n < 1 for n in out):
        raise ValueError(f"HashingFeaturizer.{name} = {orders!r}: n-gram orders must be >= 1 "
                         "(use () to switch this kind of n-gram off).")
    return out


MODES = ("projection", "buckets")


def _signs(gram: str, dim: int) -> np.ndarray:
    """The fixed +-1 code ``[dim]`` of an n-gram: bits of ``blake2b(block:gram)``."""
    blocks = [hashlib.blake2b(f"{b}:{gram}".encode(), digest_size=64).digest()
              for b in range(-(-dim // 512))]
    bits = np.unpackbits(np.frombuffer(b"".join(blocks), dtype=np.uint8))[:dim]
    return bits.astype(np.float64) * 2.0 - 1.0


@dataclass(frozen=True)
class HashingFeaturizer:
    """Strings -> ``[N, dim]`` float32: a hashed bag of word and character n-grams.

    ``word_ngrams`` and ``char_ngrams`` give the n-gram orders; character n-grams are taken
    inside each token padded as ``<token>``. Each n-gram's count c is weighted ``log1p(c)``
    (``sublinear``, else c). ``mode`` says how the bag becomes ``dim`` numbers:

    * ``"projection"`` (default): every n-gram adds its weight times a fixed +-1 code of length
      ``dim`` (bits of ``blake2b`` of the n-gram), i.e. a random projection of the bag. Each
      feature mixes many n-grams, so no single rare n-gram (a typo, a filler word) gets a
      feature of its own that the MLP encoder's input BatchNorm would blow up; on AV-Digits-Text
      this generalises clearly better than bucket counts.
    * ``"buckets"``: the classic hashing trick, ``crc32(n-gram) % dim`` bucket counts.

    ``normalize`` scales each non-empty row to unit L2 norm (an empty string gives zeros). Codes
    and buckets come from ``hashlib``/``zlib``, identical on every machine and run (Python's
    salted ``hash()`` is never used).
    """

    dim: int = DEFAULT_DIM
    word_ngrams: tuple[int, ...] = (1, 2)
    char_ngrams: tuple[int, ...] = (3, 4)
    sublinear: bool = True
    normalize: bool = True
    mode: str = "projection"

    def __post_init__(self) -> None:
        if not isinstance(self.dim, int) or isinstance(self.dim, bool) or self.dim < 1:
            raise ValueError(f"HashingFeaturizer.dim = {self.dim!r}: expected an integer >= 1 "
                             f"(e.g. {DEFAULT_DIM}).")
        object.__setattr__(self, "word_ngrams", _check_orders("word_ngrams", self.word_ngrams))
        object.__setattr__(self, "char_ngrams", _check_orders("char_ngrams", self.char_ngrams))
        if not self.word_ngrams and not self.char_ngrams:
            raise ValueError("HashingFeaturizer needs word_ngrams or char_ngrams (or both).")
        if self.mode not in MODES:
            raise ValueError(f"HashingFeaturizer.mode = {self.mode!r}: expected one of {MODES}.")

    @property
    def identity(self) -> str:
        """A stable name of the featuriser (part of data checksums and cache keys)."""
        words = ",".join(map(str, self.word_ngrams)) or "-"
        chars = ",".join(map(str, self.char_ngrams)) or "-"
        hashing = "blake2b-signs" if self.mode == "projection" else "crc32-buckets"
        return (f"hashing-ngrams(dim={self.dim},word={words},char={chars},"
                f"sublinear={self.sublinear},normalize={self.normalize},hash={hashing})")

    def grams(self, text: str) -> list[str]:
        """Every n-gram of ``text`` (with its kind prefix ``w:`` or ``c:``), in order."""
        toks = tokenize(text)
        out: list[str] = []
        for n in self.word_ngrams:
            out += ["w:" + " ".join(toks[i:i + n]) for i in range(len(toks) - n + 1)]
        for tok in toks:
            padded = f"<{tok}>"
            for n in self.char_ngrams:
                out += ["c:" + padded[i:i + n] for i in range(len(padded) - n + 1)]
        return out

    def bags(self, texts: Sequence[str]) -> list[dict[str, int]]:
        """``{n-gram: count}`` per text."""
        if isinstance(texts, str):
            raise TypeError("HashingFeaturizer takes a sequence of strings, not one string: "
                            "wrap it in a list.")
        out = []
        for text in texts:
            bag: dict[str, int] = {}
            for gram in self.grams(text):
                bag[gram] = bag.get(gram, 0) + 1
            out.append(bag)
        return out

    def bucket(self, gram: str) -> int:
        """Bucket of an n-gram in ``"buckets"`` mode: ``crc32(gram) % dim``."""
        return zlib.crc32(gram.encode("utf-8")) % self.dim

    def __call__(self, texts: Sequence[str]) -> Tensor:
        bags = self.bags(texts)
        x = np.zeros((len(bags), self.dim), dtype=np.float64)
        memo: dict[str, Any] = {}
        for row, bag in enumerate(bags):
            for gram, count in bag.items():
                weight = float(np.log1p(count)) if self.sublinear else float(count)
                code = memo.get(gram)
                if code is None:
                    code = memo[gram] = (_signs(gram, self.dim) if self.mode == "projection"
                                         else self.bucket(gram))
                if self.mode == "projection":
                    x[row] += weight * code
                else:
                    x[row, code] += weight
        if self.normalize:
            norm = np.linalg.norm(x, axis=1, keepdims=True)
            x = x / np.where(norm > 0, norm, 1.0)
        return torch.from_numpy(x.astype(np.float32))


def hashed_features(texts: Sequence[str], dim: int = DEFAULT_DIM, **options: Any) -> Tensor:
    """``HashingFeaturizer(dim, **options)(texts)``: ``[N, dim]`` float32 features."""
    return HashingFeaturizer(dim=dim, **options)(texts)
