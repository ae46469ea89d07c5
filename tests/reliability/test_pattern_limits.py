"""Stated limits: presence patterns are enumerated for at most MAX_PATTERN_MODALITIES
modalities; above it a clear error comes at once, before any model runs or trains."""
from __future__ import annotations

import time

import numpy as np
import pytest
from _engine_data import late_model

from umm_helpers.core.fusion import MAX_PATTERN_MODALITIES
from umm_helpers.core.patterns import PatternLogits
from umm_helpers.data import MultiModalDataset
from umm_helpers.engine.config import TrainConfig
from umm_helpers.methods.run import run_method
from umm_helpers.settings import runs_dir


def _many(m: int, n: int = 20) -> MultiModalDataset:
    rng = np.random.default_rng(0)

    def part():
        return ({f"m{j}": rng.normal(size=(n, 2)).astype(np.float32) for j in range(m)},
                np.arange(n) % 2)

    return MultiModalDataset.from_arrays(part(), part(), part())


def test_pattern_logits_refuse_too_many_modalities_at_once():
    ds = _many(MAX_PATTERN_MODALITIES + 1)
    model = late_model(ds)
    calls = []
    model.register_forward_hook(lambda *a: calls.append(1))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=rf"2\^{MAX_PATTERN_MODALITIES + 1}.*at most "
                                         rf"{MAX_PATTERN_MODALITIES} modalities"):
        PatternLogits.compute(model, ds.test)
    assert calls == [] and time.perf_counter() - start < 1.0


def test_the_limit_itself_works():
    ds = _many(MAX_PATTERN_MODALITIES, n=6)
    patterns = PatternLogits.compute(late_model(ds), ds.test)
    assert patterns.logits.shape[:2] == (2 ** MAX_PATTERN_MODALITIES, 6)


def test_run_method_refuses_before_training(cpu):
    ds = _many(12)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="MAX_PATTERN_MODALITIES"):
        run_method("joint", ds, config=TrainConfig(epochs=1, batch_size=4))
    assert time.perf_counter() - start < 2.0
    assert not runs_dir().exists() or not any(runs_dir().rglob("*"))
