"""Scores under conditions, AURC, gap to the ceiling, macro-F1; the façade's evaluate."""
from __future__ import annotations

import pytest
import torch
from _engine_data import late_model, tiny_dataset

from umm_helpers.core.scoring import aurc, evaluate, gap_to_ceiling, macro_f1, score_logits


def test_default_conditions(trained):
    ds, model = trained
    assert list(evaluate(model, ds.test)) == ["full", "miss:audio", "miss:image", "miss:text"]
    with pytest.raises(ValueError, match="bad missing-modality condition"):
        evaluate(model, ds.test, ["miss:video"])



def test_aurc():
    rates = [i / 10 for i in range(11)]
    assert aurc(rates, [0.8] * 11) == pytest.approx(0.8)
    assert aurc(rates, [1 - r for r in rates]) == pytest.approx(0.5)
    assert aurc([0, 0.5, 1], [1.0, 0.5, 0.5]) == pytest.approx(0.625)
    with pytest.raises(ValueError, match="from 0 to 1"):
        aurc([0.0, 0.5], [1.0, 1.0])
    with pytest.raises(ValueError, match="matching"):
        aurc([0.0, 1.0], [1.0])



def test_gap_to_ceiling():
    gaps = gap_to_ceiling({"full": 0.9, "miss:audio": 0.7, "miss:image": 0.5},
                          {"audio": 0.6, "image": 0.75})
    assert gaps == pytest.approx({"miss:audio": -0.05, "miss:image": -0.1})



def test_macro_f1_and_multilabel_scoring():
    y = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0]]).float()
    assert macro_f1(y.bool(), y) == 1.0
    pred = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 0]]).bool()
    # class 0: f1 1; class 1: tp 1, fn 1 -> 2/3; class 2: tp 0, fn 1 -> 0
    assert macro_f1(pred, y) == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert score_logits(torch.where(y.bool(), 2.0, -2.0), y) == 1.0



def test_facade_evaluate_is_the_function():
    import umm_helpers as umm
    import umm_helpers.core.scoring  # noqa: F401  (importing a submodule changes nothing)

    ds = tiny_dataset()
    model = late_model(ds).eval()
    assert umm.evaluate is evaluate
    conditions = ["full"] + [f"miss:{m}" for m in ds.modalities]
    assert umm.evaluate(model, ds.test, conditions) == evaluate(model, ds.test, conditions)
