"""Fusion models: presence handling, prior for all-absent samples, gradients."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from _engine_data import late_model, three_modal, tiny_dataset

from umm_helpers.core.encoders import default_encoders, feature_dim
from umm_helpers.core.fusion import (
    ConcatFusionModel,
    EarlyFusionModel,
    LateFusionModel,
    prior_logits_from_labels,
)


def _batch(ds, n=6):
    return {m: ds.test.inputs[m][:n] for m in ds.modalities}


def _concat(ds):
    torch.manual_seed(0)
    enc = {m: f() for m, f in default_encoders(ds).items()}
    dims = {m: feature_dim(e, tuple(ds.train.inputs[m].shape[1:])) for m, e in enc.items()}
    return ConcatFusionModel(enc, ds.num_classes, dims)


def _early(ds):
    torch.manual_seed(0)
    return EarlyFusionModel({m: ds.train.inputs[m].shape[1:] for m in ds.modalities},
                            ds.num_classes)


def test_late_fusion_sums_present_heads_for_every_pattern():
    ds = three_modal()
    model = late_model(ds).eval()
    x = _batch(ds, 8)
    uni = model.unimodal_logits(x)
    for bits in itertools.product([False, True], repeat=3):
        present = {m: torch.full((8,), b) for m, b in zip(ds.modalities, bits)}
        out = model(x, present)
        if any(bits):
            expected = sum(uni[m] for m, b in zip(ds.modalities, bits) if b)
            assert torch.allclose(out, expected, atol=1e-6)
        else:
            assert torch.equal(out, model.prior_logits.expand(8, -1))


@pytest.mark.parametrize("build", [late_model, _concat, _early])
def test_output_ignores_fill_value_of_absent_modality(build):
    ds = tiny_dataset()
    model = build(ds).eval()
    x = _batch(ds)
    present = {"audio": torch.tensor([1, 0, 1, 0, 1, 0]).bool(), "image": torch.ones(6).bool()}
    garbage = dict(x, audio=torch.where(present["audio"].view(-1, 1, 1, 1), x["audio"],
                                        torch.full_like(x["audio"], 1e6)))
    assert torch.equal(model(x, present), model(garbage, present))
    assert torch.isfinite(model(garbage, present)).all()


@pytest.mark.parametrize("build", [late_model, _concat, _early])
def test_all_absent_gives_prior_never_nan(build):
    ds = tiny_dataset()
    model = build(ds)
    model.set_prior(ds.train.labels)
    nothing = {m: torch.zeros(6, dtype=torch.bool) for m in ds.modalities}
    some = {"audio": torch.tensor([0, 1, 0, 1, 0, 1]).bool(), "image": torch.zeros(6).bool()}
    for mode in (model.train, model.eval):
        mode()
        out = model(_batch(ds), nothing)
        assert torch.equal(out, model.prior_logits.expand(6, -1))
        mixed = model(_batch(ds), some)
        assert torch.equal(mixed[0], model.prior_logits) and torch.isfinite(mixed).all()


def test_gradients_reach_only_present_branches():
    ds = tiny_dataset()
    model = late_model(ds)
    present = {"audio": torch.ones(6).bool(), "image": torch.zeros(6).bool()}
    model(_batch(ds), present).sum().backward()
    assert model.heads["audio"].weight.grad.abs().sum() > 0
    assert model.heads["image"].weight.grad.abs().sum() == 0
    assert all(p.grad is None or p.grad.abs().sum() == 0
               for p in model.encoders["image"].parameters())


def test_default_presence_is_all_present_and_missing_inputs_raise():
    ds = tiny_dataset()
    model = late_model(ds).eval()
    x = _batch(ds)
    full = {m: torch.ones(6).bool() for m in ds.modalities}
    assert torch.equal(model(x), model(x, full))
    with pytest.raises(ValueError, match=r"inputs lack modalities \['image'\]"):
        model({"audio": x["audio"]}, full)
    with pytest.raises(ValueError, match=r"presence dict lacks modalities \['image'\]"):
        model(x, {"audio": full["audio"]})


def test_features_and_shapes():
    ds = three_modal()
    model = late_model(ds)
    feats = model.features(_batch(ds, 4))
    assert sorted(feats) == ["audio", "image", "text"]
    assert all(f.shape == (4, 64) for f in feats.values())
    assert _concat(ds)(_batch(ds, 4)).shape == (4, 4)
    assert _early(ds)(_batch(ds, 4)).shape == (4, 4)
    with pytest.raises(ValueError, match="feature_dims has modalities"):
        LateFusionModel({"a": torch.nn.Identity()}, 3, {"b": 2})


def test_prior_from_labels():
    y = torch.tensor([0, 0, 0, 1])
    prior = prior_logits_from_labels(y, 3)
    assert torch.allclose(prior.exp(), torch.tensor([4 / 7, 2 / 7, 1 / 7]))
    multi = prior_logits_from_labels(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), 2)
    assert math.isclose(float(torch.sigmoid(multi[0])), 3 / 4, rel_tol=1e-6)
    assert float(multi[1]) < 0
