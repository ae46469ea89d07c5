"""Fixtures of the core tests."""
from __future__ import annotations

import pytest
from _engine_data import late_model, three_modal

from umm_helpers.engine.config import TrainConfig
from umm_helpers.engine.trainer import fit


@pytest.fixture(scope="module")
def trained():
    """A late-fusion model on the three-modality task, trained two epochs (once per module)."""
    ds = three_modal()
    model = late_model(ds)
    fit(model, ds, TrainConfig(epochs=2, batch_size=16, device="cpu"))
    return ds, model
