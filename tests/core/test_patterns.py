"""PatternLogits (every presence pattern once) and the sweeps read from it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from _engine_data import late_model, three_modal, tiny_dataset

from umm_helpers.core.fusion import EarlyFusionModel
from umm_helpers.core.missing import MaskTable, sweep_conditions
from umm_helpers.core.patterns import PatternLogits, sweep
from umm_helpers.core.scoring import evaluate, predict_logits, score_logits
from umm_helpers.engine.trainer import TrainConfig, fit


def _conditions(mods):
    conds = ["full"] + [f"miss:{m}" for m in mods]
    for rates in sweep_conditions(mods, [0.0, 0.3, 0.7, 1.0]).values():
        conds += rates
    return conds


def test_pattern_logits_equal_evaluate_exactly(trained):
    ds, model = trained
    conds = _conditions(ds.modalities)
    direct = evaluate(model, ds.test, conds, seed=4, batch_size=20)
    pats = PatternLogits.compute(model, ds.test, batch_size=20)
    table = MaskTable.create(len(ds.test), ds.modalities, 4)
    assert {c: pats.condition_score(c, table) for c in conds} == direct
    assert len({round(v, 6) for v in direct.values()}) > 3  # the conditions really differ



def test_pattern_logits_for_early_fusion():
    ds = tiny_dataset()
    torch.manual_seed(0)
    model = EarlyFusionModel({m: ds.train.inputs[m].shape[1:] for m in ds.modalities}, 4)
    fit(model, ds, TrainConfig(epochs=1, batch_size=16, device="cpu"))
    conds = _conditions(ds.modalities)
    pats = PatternLogits.compute(model, ds.test)
    table = MaskTable.create(len(ds.test), ds.modalities, 0)
    assert {c: pats.condition_score(c, table) for c in conds} == evaluate(model, ds.test, conds)



def test_pattern_zero_is_prior_and_predict_indexes(trained):
    ds, model = trained
    pats = PatternLogits.compute(model, ds.test)
    assert pats.logits.shape == (8, len(ds.test), ds.num_classes)
    assert torch.equal(pats.logits[0], model.prior_logits.expand(len(ds.test), -1))
    pres = np.zeros((len(ds.test), 3), dtype=bool)
    pres[::2, 1] = True  # image only for even samples
    out = pats.predict(pres)
    assert torch.equal(out[0], pats.logits[2, 0]) and torch.equal(out[1], pats.logits[0, 1])
    with pytest.raises(ValueError, match="presence array has shape"):
        pats.score(pres[:, :2])



def test_accuracy_for_rates_matches_rates_presence(trained):
    ds, model = trained
    pats = PatternLogits.compute(model, ds.test)
    table = MaskTable.create(len(ds.test), ds.modalities, 1)
    rates = {"audio": 0.4, "text": 0.8}
    pres = table.rates_presence(rates)
    expected = score_logits(predict_logits(model, ds.test, {m: torch.as_tensor(pres[:, j])
                                                            for j, m in enumerate(ds.modalities)}),
                            ds.test.labels)
    assert pats.accuracy_for_rates(rates, table) == expected



def test_sweep_shapes_and_endpoints(trained):
    ds, model = trained
    s = sweep(model, ds.test)
    assert sorted(s) == ["any", "audio", "image", "text"]
    assert all(len(v) == 11 for v in s.values())
    scores = evaluate(model, ds.test)
    assert s["audio"][0] == scores["full"] and s["audio"][-1] == scores["miss:audio"]



def test_multilabel_model_trains_and_scores_with_f1():
    ds = tiny_dataset(multilabel=True)
    model = late_model(ds)
    fit(model, ds, TrainConfig(epochs=3, batch_size=16, device="cpu"))
    scores = evaluate(model, ds.test)
    pats = PatternLogits.compute(model, ds.test)
    table = MaskTable.create(len(ds.test), ds.modalities, 0)
    assert scores == {c: pats.condition_score(c, table) for c in scores}
    assert 0.3 < scores["full"] <= 1.0


def _fusion_model(kind: str, ds):
    from umm_helpers.core.encoders import default_encoders, feature_dim
    from umm_helpers.core.fusion import ConcatFusionModel, LateFusionModel, PatternHeadsModel

    torch.manual_seed(1)
    enc = {m: f() for m, f in default_encoders(ds).items()}
    dims = {m: feature_dim(e, tuple(ds.train.inputs[m].shape[1:])) for m, e in enc.items()}
    cls = {"late": LateFusionModel, "concat": ConcatFusionModel,
           "pattern-heads": PatternHeadsModel}[kind]
    model = cls(enc, ds.num_classes, dims)
    fit(model, ds, TrainConfig(epochs=1, batch_size=16, device="cpu"))  # BatchNorm statistics
    return model


def _per_pattern(model, split, patterns, batch_size):
    from umm_helpers.core.missing import array_to_presence

    n, mods = len(split), list(split.modalities)
    return torch.stack([predict_logits(model, split, array_to_presence(
        np.broadcast_to(p, (n, len(mods))), mods), batch_size) for p in patterns])


@pytest.mark.parametrize("kind", ["late", "concat", "pattern-heads"])
def test_encoders_once_per_batch_give_the_forward_pass_bit_for_bit(kind):
    from umm_helpers.core.patterns import combines_features

    ds = three_modal()
    model = _fusion_model(kind, ds)
    assert combines_features(model)
    pats = PatternLogits.compute(model, ds.test, batch_size=20)  # batches of 20, 20, 20, 4
    assert torch.equal(pats.logits, _per_pattern(model, ds.test, pats.patterns, 20))


def test_the_encoders_run_once_per_batch_not_once_per_pattern():
    ds = three_modal()
    model = _fusion_model("late", ds)
    calls = []
    for m, enc in model.encoders.items():
        enc.register_forward_hook(lambda *_, m=m: calls.append(m))
    PatternLogits.compute(model, ds.test, batch_size=32)  # 64 samples: two batches
    assert sorted(calls) == sorted(list(ds.modalities) * 2)  # not 2^3 = 8 times as many


def test_a_subclass_with_its_own_forward_takes_the_per_pattern_path():
    from umm_helpers.core.fusion import ConcatFusionModel
    from umm_helpers.core.patterns import combines_features

    class Doubled(ConcatFusionModel):
        def forward(self, inputs, present=None):
            return 2 * super().forward(inputs, present)

    ds = three_modal()
    model = _fusion_model("concat", ds)
    model.__class__ = Doubled
    assert not combines_features(model)
    pats = PatternLogits.compute(model, ds.test)
    assert torch.equal(pats.logits, _per_pattern(model, ds.test, pats.patterns, 1024))


def test_a_forward_replaced_on_the_instance_takes_the_per_pattern_path():
    from umm_helpers.core.patterns import combines_features

    ds = three_modal()
    model = _fusion_model("late", ds)
    calls = []
    forward = model.forward
    model.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    assert not combines_features(model)
    PatternLogits.compute(model, ds.test)
    assert len(calls) == 2 ** 3  # one call per presence pattern, through the replaced forward
