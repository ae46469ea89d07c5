"""Finite or nothing: a run whose loss or weights become NaN or inf stops with an error naming
the epoch and the fix, and nothing of it is cached (so no later method is built on it)."""
from __future__ import annotations

import math

import pytest
import torch
from _engine_data import late_model

from umm_helpers.engine.config import TrainConfig
from umm_helpers.engine.trainer import Trainer, TrainingDiverged, fit
from umm_helpers.methods.run import cached_run, run_method
from umm_helpers.settings import runs_dir

DIVERGING = dict(lr=1e10, epochs=3, batch_size=16)


def _committed_runs():
    return sorted(runs_dir().rglob("manifest.json")) + sorted(runs_dir().rglob("result.json"))


def test_a_diverged_run_stops_names_the_epoch_and_is_never_cached(ds, cpu):
    cfg = TrainConfig(**DIVERGING)
    with pytest.raises(TrainingDiverged, match=r"epoch 1 of 3.*Lower TrainConfig\.lr") as info:
        run_method("unimodal:image", ds, config=cfg)
    assert isinstance(info.value, ValueError)  # a bad setting: callers catching ValueError see it
    assert _committed_runs() == []
    assert cached_run("unimodal:image", ds, config=cfg) is None
    # the methods built on the uni-modal runs stop too, instead of reusing a diverged run
    with pytest.raises(TrainingDiverged):
        run_method("ume", ds, config=cfg)
    assert _committed_runs() == []


def test_a_lower_lr_then_trains_and_caches(ds, cpu):
    run = run_method("unimodal:image", ds, config=TrainConfig(lr=1e-3, epochs=1, batch_size=16))
    assert all(math.isfinite(h["train_loss"]) for h in run.history)
    assert len(_committed_runs()) == 2  # manifest.json and result.json of the one run


def test_non_finite_weights_stop_the_run_even_with_a_finite_loss(ds, cpu, tmp_path):
    class PoisonAfterStep(Trainer):
        def step(self, x, present, y, weight=1.0):
            value = super().step(x, present, y, weight)
            with torch.no_grad():
                next(self.model.parameters()).view(-1)[0] = math.inf
            return value

    model = late_model(ds)
    trainer = PoisonAfterStep(TrainConfig(epochs=2, batch_size=16), checkpoint_dir=tmp_path)
    with pytest.raises(TrainingDiverged, match="epoch 1 of 2"):
        trainer.fit(model, ds)
    assert not any(tmp_path.iterdir())  # no checkpoint of a non-finite epoch


def test_a_diverged_epoch_never_overwrites_a_checkpoint(ds, cpu, tmp_path):
    model = late_model(ds)
    fit(model, ds, TrainConfig(epochs=1, batch_size=16), checkpoint_dir=tmp_path)
    before = (tmp_path / "checkpoint.safetensors").read_bytes()
    with pytest.raises(TrainingDiverged, match="epoch 1 of 3"):
        fit(model, ds, TrainConfig(epochs=3, batch_size=16, lr=1e10), checkpoint_dir=tmp_path)
    assert (tmp_path / "checkpoint.safetensors").read_bytes() == before
