"""PatternHeadsModel: every presence pattern routed to its own head, the prior for none."""
from __future__ import annotations

import itertools

import pytest
import torch
from _engine_data import tiny_dataset
from torch import nn

from umm_helpers.core.fusion import MAX_PATTERN_MODALITIES, PatternHeadsModel, presence_patterns
from umm_helpers.core.missing import mma_presence


def _model(mods, num_classes=3, dim=4):
    torch.manual_seed(0)
    enc = {m: nn.Linear(2, dim) for m in mods}
    return PatternHeadsModel(enc, num_classes, {m: dim for m in mods}).eval()


def test_patterns_are_every_non_empty_subset_in_bit_order():
    assert presence_patterns(["b", "a"]) == [("a",), ("b",), ("a", "b")]
    assert len(presence_patterns("abcd")) == 15


@pytest.mark.parametrize("mods", [("a",), ("a", "b"), ("a", "b", "c")])
def test_each_sample_gets_its_patterns_head(mods):
    model = _model(mods)
    model.prior_logits.copy_(torch.tensor([1.0, 2.0, 3.0]))
    rows = list(itertools.product([False, True], repeat=len(mods)))
    x = {m: torch.randn(len(rows), 2) for m in mods}
    present = {m: torch.tensor([r[j] for r in rows]) for j, m in enumerate(mods)}
    out = model(x, present)
    with torch.no_grad():
        feats = {m: model.encoders[m](x[m]) for m in mods}
        for i, r in enumerate(rows):
            pattern = tuple(m for j, m in enumerate(mods) if r[j])
            if not pattern:  # nothing present: the prior, never NaN
                assert torch.equal(out[i], model.prior_logits)
                continue
            head = model.heads["+".join(pattern)]
            want = head(torch.cat([feats[m][i] for m in pattern]))
            assert torch.allclose(out[i], want, atol=1e-6), (pattern, out[i], want)


def test_output_ignores_what_fills_a_missing_modality():
    model = _model(("a", "b"))
    x = {"a": torch.randn(5, 2), "b": torch.randn(5, 2)}
    present = {"a": torch.ones(5, dtype=torch.bool), "b": torch.tensor([1, 0, 1, 0, 0]).bool()}
    other = {"a": x["a"], "b": torch.randn(5, 2) * 100}
    same = ~present["b"]
    assert torch.equal(model(x, present)[same], model(other, present)[same])


def test_too_many_modalities_are_refused_with_the_cost():
    mods = [f"m{j}" for j in range(MAX_PATTERN_MODALITIES + 1)]
    with pytest.raises(ValueError, match=r"1 to 6 modalities \(2\^M - 1 heads\), got 7"):
        _model(mods)
    assert len(_model(mods[:MAX_PATTERN_MODALITIES]).heads) == 2 ** MAX_PATTERN_MODALITIES - 1


def test_subset_mma_reaches_every_proper_subset_and_never_drops_all():
    g = torch.Generator().manual_seed(0)
    full = {m: torch.ones(20_000, dtype=torch.bool) for m in "abc"}
    out = mma_presence(full, 1.0, g, subsets=True)
    code = out["a"].long() + 2 * out["b"].long() + 4 * out["c"].long()
    counts = torch.bincount(code, minlength=8)
    assert counts[0] == 0 and counts[7] == 0  # never none, always something dropped (p=1)
    assert (counts[1:7].float() / 20_000 - 1 / 6).abs().max() < 0.015  # uniform over 6
    one = {"a": torch.tensor([True]), "b": torch.tensor([False]), "c": torch.tensor([False])}
    assert mma_presence(one, 1.0, g, subsets=True)["a"].item()  # a lone modality stays


def test_two_modalities_subset_rule_drops_exactly_one():
    g = torch.Generator().manual_seed(1)
    full = {m: torch.ones(1000, dtype=torch.bool) for m in "ab"}
    out = mma_presence(full, 0.5, g, subsets=True)
    kept = out["a"].long() + out["b"].long()
    assert set(kept.tolist()) == {1, 2} and abs((kept == 1).float().mean() - 0.5) < 0.05


def test_tiny_data_trains_through_the_engine():
    from umm_helpers.engine.config import TrainConfig
    from umm_helpers.engine.trainer import fit

    ds = tiny_dataset({"audio": (12,), "image": (8,)})
    torch.manual_seed(0)
    enc = {m: nn.Sequential(nn.Linear(int(x.shape[1]), 16), nn.ReLU())
           for m, x in ds.train.inputs.items()}
    model = PatternHeadsModel(enc, ds.num_classes, {m: 16 for m in enc})
    hist = fit(model, ds, TrainConfig(epochs=3, batch_size=16, device="cpu", p_missing=0.5))
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
