"""Shared fixtures. Every test runs with progress bars off, its own run cache under
``tmp_path``, no ``torchrun`` variables and no ``UMM_DATA_ROOT``, seed offset or claims log from
the caller's shell."""
from __future__ import annotations

import pytest
from _engine_data import late_model, three_modal, tiny_dataset  # noqa: F401  (re-exported)

ISOLATED_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                 "UMM_DATA_ROOT", "UMM_SEED_OFFSET", "UMM_CLAIMS_LOG", "UMM_NOTEBOOK")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("UMM_PROGRESS", "0")
    monkeypatch.setenv("UMM_RUNS_DIR", str(tmp_path / "runs"))
    for var in ISOLATED_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def cpu(monkeypatch):
    """Force the CPU even where a GPU exists (tests whose numbers are pinned on the CPU)."""
    monkeypatch.setenv("UMM_DEVICE", "cpu")


@pytest.fixture
def registered(monkeypatch):
    """The tiny task, loadable by name as ``"tiny"`` (for the command line and ``compare``)."""
    import umm_helpers.data as data

    ds = tiny_dataset()
    monkeypatch.setitem(data._REGISTRY, "tiny", lambda: ds)
    return ds


@pytest.fixture
def ds():
    """The tiny seeded two-modality task (audio and image), fresh for each test."""
    return tiny_dataset()
