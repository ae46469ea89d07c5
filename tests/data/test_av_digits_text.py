"""AV-Digits-Text: the generated third modality, its determinism, and methods on 2^3 patterns."""
import re

import numpy as np
import pytest
import torch

from umm_helpers.core.patterns import PatternLogits
from umm_helpers.data import MultiModalDataset, av_digits_text, load_dataset
from umm_helpers.data.av_digits_text import KINDS, TextConfig, describe
from umm_helpers.data.text_features import HashingFeaturizer
from umm_helpers.engine.config import TrainConfig
from umm_helpers.methods.run import run_method

torch.set_num_threads(1)

VALUES = {w: i for i, w in enumerate(av_digits_text.WORDS)}
VALUES.update({"nought": 0, "nil": 0, **{w: k for k, w in av_digits_text.LARGER.items()}})


@pytest.fixture(scope="module")
def base():
    return load_dataset("av-digits")


@pytest.fixture(scope="module")
def ds():
    return load_dataset("av-digits-text")


def test_three_modalities_on_top_of_av_digits(ds, base):
    assert ds.name == "av-digits-text" and ds.modalities == ["audio", "image", "text"]
    assert ds.checksum.startswith(base.checksum) and ds.checksum != base.checksum
    for k, split in ds.splits().items():
        ref = base.splits()[k]
        assert torch.equal(split.labels, ref.labels)
        for m in ("audio", "image"):
            assert torch.equal(split.inputs[m], ref.inputs[m])
        x = split.inputs["text"]
        assert x.shape == (len(split), 512) and x.dtype == torch.float32
        assert bool(torch.isfinite(x).all())
        assert torch.allclose(x.norm(dim=1), torch.ones(len(split)), atol=1e-5)
        texts = split.meta["text"]
        assert len(texts) == len(split) and all(isinstance(t, str) and t for t in texts.tolist())
        assert set(split.meta["text_kind"].tolist()) <= set(KINDS)
        assert torch.equal(x, HashingFeaturizer(512)(texts.tolist()))
    assert len(set(ds.train.meta["text"].tolist())) > 0.5 * len(ds.train), "texts too uniform"


def test_deterministic_and_seeded(ds, base):
    again = av_digits_text.add_text(base, TextConfig())
    assert again.checksum == ds.checksum
    assert np.array_equal(again.test.meta["text"], ds.test.meta["text"])
    assert torch.equal(again.test.inputs["text"], ds.test.inputs["text"])
    other = av_digits_text.add_text(base, TextConfig(seed=1))
    assert other.checksum != ds.checksum
    assert np.mean(other.test.meta["text"] != ds.test.meta["text"]) > 0.5
    # a text depends on (seed, label, image index) only, not on the split or its order
    split = ds.validation
    for i in (0, 7, 40):
        text, kind, _ = describe(int(split.labels[i]), int(split.meta["image_index"][i]))
        assert text == split.meta["text"][i] and kind == split.meta["text_kind"][i]


def test_kinds_match_labels_and_rates(ds):
    kinds = np.concatenate([s.meta["text_kind"] for s in ds.splits().values()])
    digits = np.concatenate([s.meta["text_digit"] for s in ds.splits().values()])
    labels = np.concatenate([s.labels.numpy() for s in ds.splits().values()])
    cfg = TextConfig()
    assert abs(np.mean(kinds == "other") - cfg.p_other) < 0.03
    assert abs(np.mean(kinds == "ambiguous") - cfg.p_ambiguous) < 0.03
    assert set(kinds.tolist()) == set(KINDS)
    clear = ~np.isin(kinds, ["other", "ambiguous"])
    assert np.array_equal(digits[clear], labels[clear])
    assert np.all(digits[kinds == "other"] != labels[kinds == "other"])
    assert np.all(digits[kinds == "ambiguous"] == -1)


def _numbers(text: str) -> list[int] | None:
    out = []
    for tok in re.findall(r"[a-z]+|[0-9]+", text.lower()):
        if tok.isdigit():
            out.append(int(tok))
        elif tok in VALUES:
            out.append(VALUES[tok])
    return out


def test_arithmetic_texts_evaluate_to_the_digit(ds):
    split = ds.train
    checked = 0
    for text, kind, label in zip(split.meta["text"], split.meta["text_kind"],
                                 split.labels.tolist()):
        nums = _numbers(text)
        if kind not in ("sum", "difference") or len(nums) != 2:
            continue  # a typo hid an operand
        value = nums[0] + nums[1] if kind == "sum" else nums[0] - nums[1]
        assert value == label, text
        checked += 1
    assert checked > 20
    ambiguous = [t for t, k, y in zip(split.meta["text"], split.meta["text_kind"],
                                      split.labels.tolist()) if k == "ambiguous"]
    assert any(" or " in t for t in ambiguous)


def test_typos_and_fillers_appear(ds):
    texts = " ".join(ds.train.meta["text"].tolist()).lower()
    tokens = set(re.findall(r"[a-z]+", texts))
    assert tokens & set(av_digits_text.FILLERS)
    assert tokens - set(VALUES) - set(av_digits_text.FILLERS) - {
        w for t in (av_digits_text.WORD_TEMPLATES + av_digits_text.NUMERAL_TEMPLATES
                    + av_digits_text.SUM_TEMPLATES + av_digits_text.DIFF_TEMPLATES
                    + av_digits_text.AMBIGUOUS_TEMPLATES) for w in re.findall(r"[a-z]+", t)
    } - {"just", "before", "after", "comes", "digit", "the"}, "no typos"


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="p_other"):
        av_digits_text.add_text(None, TextConfig(p_other=1.5))  # type: ignore[arg-type]


def _small(ds: MultiModalDataset, sizes=(160, 60, 100)) -> MultiModalDataset:
    parts = []
    for split, n in zip(ds.splits().values(), sizes):
        idx = torch.from_numpy(np.random.default_rng(0).permutation(len(split))[:n])
        parts.append(split.subset(idx))
    return MultiModalDataset(*parts, name="av-digits-text-small")


@pytest.mark.parametrize("method", ["ume-mma", "joint"])
def test_methods_score_every_condition_and_eight_patterns(ds, method):
    small = _small(ds)
    run = run_method(method, small, config=TrainConfig(epochs=2, device="cpu", seed=0),
                     cache=False)
    scores = run.result["scores"]
    assert list(scores) == ["full", "miss:audio", "miss:image", "miss:text"]
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert sorted(run.result["sweeps"]) == ["any", "audio", "image", "text"]
    patterns = PatternLogits.compute(run.model, small.test)
    assert patterns.patterns.shape == (8, 3) and patterns.logits.shape == (8, 100, 10)
    assert len({tuple(p) for p in patterns.patterns.tolist()}) == 8
    # pattern 0 (nothing present) is the training-label prior for every sample
    assert torch.allclose(patterns.logits[0], patterns.logits[0, :1].expand(100, -1))
    if method == "ume-mma":
        assert sorted(run.result["unimodal_scores"]) == ["audio", "image", "text"]
