"""The run cache: atomic files, loading, and a cache root of the caller's choice."""
from __future__ import annotations

import pytest
import torch
from _engine_data import late_model, tiny_dataset

from umm_helpers.engine.checkpoint import CheckpointError
from umm_helpers.engine.config import TrainConfig
from umm_helpers.methods.cache import RunCache
from umm_helpers.methods.run import run_method


def test_save_and_load_run_atomically(tmp_path):
    ds = tiny_dataset()
    model = late_model(ds, seed=1)
    cache = RunCache(tmp_path)
    folder = cache.folder("tiny", "unimodal:image", "k")
    assert folder == tmp_path / "tiny" / "unimodal_image" / "k"
    assert cache.load_result(folder) is None
    cache.save(folder, model, {"method": "joint", "scores": {"full": 0.5}})
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.safetensors",
                                                        "result.json"]
    assert cache.load_result(folder)["scores"] == {"full": 0.5}
    other = cache.load_weights(folder, late_model(ds, seed=2))
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in model.state_dict().items())
    (folder / "model.safetensors").write_bytes(b"broken")
    with pytest.raises(CheckpointError, match=str(folder / "model.safetensors")):
        cache.load_weights(folder, model)
    with pytest.raises(CheckpointError, match=str(folder / "model.safetensors")):
        cache.load_result(folder)  # the manifest no longer matches the weights
    cache.save(folder, model, {"method": "joint", "scores": {"full": 0.5}})
    (folder / "result.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=str(folder / "result.json")):
        cache.load_result(folder)


def test_default_root_follows_the_runs_dir(tmp_path, monkeypatch):
    cache = RunCache()
    monkeypatch.setenv("UMM_RUNS_DIR", str(tmp_path / "a"))
    assert cache.root == tmp_path / "a" / "cache"
    monkeypatch.setenv("UMM_RUNS_DIR", str(tmp_path / "b"))
    assert cache.root == tmp_path / "b" / "cache"


def test_run_method_uses_the_cache_it_is_given(tmp_path):
    ds = tiny_dataset()
    cache = RunCache(tmp_path / "mine")
    cfg = TrainConfig(epochs=1, batch_size=16, device="cpu")
    first = run_method("joint", ds, config=cfg, cache=cache)
    assert not first.cached and first.path.parent.parent == cache.root / ds.name
    again = run_method("joint", ds, config=cfg, cache=cache)
    assert again.cached and again.result == first.result
    assert not run_method("joint", ds, config=cfg).cached  # the default cache is another root
