"""Cached artefacts verify themselves: weights and result are committed together by a manifest of
sha256 sums written last, checked on every load. A damaged run is reported (a warning naming its
folder) and trained again, never used; a cache that cannot be written fails before training."""
from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from umm_helpers.engine.config import TrainConfig
from umm_helpers.methods.cache import MANIFEST, RESULT, WEIGHTS
from umm_helpers.methods.run import cached_run, run_method

CFG = TrainConfig(epochs=1, batch_size=16)


@pytest.fixture
def trained(ds, cpu):
    run = run_method("unimodal:image", ds, config=CFG)
    assert not run.cached and (run.path / MANIFEST).exists()
    return run


def _flip_a_data_byte(path):
    raw = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(raw[:8], "little")  # safetensors: length, JSON header, data
    raw[header + (len(raw) - header) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def _nan_weights_same_header(path):
    tensors = load_file(path)
    key = sorted(k for k, v in tensors.items() if v.is_floating_point())[0]
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    with open(path, "rb") as f:
        meta = json.loads(f.read(int.from_bytes(f.read(8), "little"))).get("__metadata__")
    save_file(tensors, path, metadata=meta)


def _empty_result(path):
    path.write_text("{}")


DAMAGE = {"flipped weight bytes": (WEIGHTS, _flip_a_data_byte),
          "NaN weights, header intact": (WEIGHTS, _nan_weights_same_header),
          "result.json holding {}": (RESULT, _empty_result)}


@pytest.mark.parametrize("label", sorted(DAMAGE))
def test_a_damaged_run_is_reported_and_retrained(ds, trained, label):
    name, damage = DAMAGE[label]
    damage(trained.path / name)
    with pytest.warns(UserWarning, match=rf"cached run {trained.path} is damaged"):
        assert cached_run("unimodal:image", ds, config=CFG) is None
    with pytest.warns(UserWarning, match=str(trained.path)):
        again = run_method("unimodal:image", ds, config=CFG)
    assert not again.cached and again.path == trained.path
    assert again.result["scores"] == trained.result["scores"]  # seeded: the same run again
    reloaded = run_method("unimodal:image", ds, config=CFG)
    assert reloaded.cached


def test_a_run_without_its_manifest_does_not_exist(ds, trained):
    (trained.path / MANIFEST).unlink()  # e.g. a save interrupted before its last write
    assert cached_run("unimodal:image", ds, config=CFG) is None
    assert not run_method("unimodal:image", ds, config=CFG).cached


def test_a_runs_folder_that_cannot_be_written_fails_before_training(ds, cpu, tmp_path,
                                                                    monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the runs folder should be")
    monkeypatch.setenv("UMM_RUNS_DIR", str(blocker))
    import umm_helpers.engine.trainer as trainer

    def never(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(trainer.Trainer, "fit", never)
    with pytest.raises(ValueError, match=r"run cache folder .* is not writable.*UMM_RUNS_DIR"):
        run_method("unimodal:image", ds, config=CFG)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_a_read_only_runs_folder_fails_before_training(ds, cpu, tmp_path, monkeypatch):
    runs = tmp_path / "ro"
    runs.mkdir()
    runs.chmod(0o555)
    monkeypatch.setenv("UMM_RUNS_DIR", str(runs))
    try:
        with pytest.raises(ValueError, match="not writable"):
            run_method("unimodal:image", ds, config=CFG)
    finally:
        runs.chmod(0o755)
