"""Many runs at once (``methods/parallel.py``): waves, equality with runs trained alone, errors."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from _engine_data import same_weights, tiny_dataset

from umm_helpers.data import MultiModalDataset
from umm_helpers.engine.config import TrainConfig
from umm_helpers.methods import parallel
from umm_helpers.methods.parallel import check_jobs, run_seeds, waves

MODALITIES = ["audio", "image"]


def test_waves_put_unimodal_and_scratch_runs_before_the_runs_built_on_them():
    first, second = waves(["ume", "joint", "unimodal:audio", "ume-mma"], [0, 1], MODALITIES)
    assert first == [("joint", 0), ("joint", 1), ("unimodal:audio", 0), ("unimodal:audio", 1),
                     ("unimodal:image", 0), ("unimodal:image", 1)]  # each uni-modal run once
    assert second == [("ume", 0), ("ume", 1), ("ume-mma", 0), ("ume-mma", 1)]
    assert waves(["joint", "early"], [3], MODALITIES) == [[("joint", 3), ("early", 3)]]


def _key_figures(run):
    r = run.result
    return ([(h["epoch"], h["train_loss"], h["val_score"]) for h in r["history"]],
            r["scores"], r["sweeps"], r["key"])


def test_runs_in_two_processes_equal_the_runs_trained_alone(tmp_path, monkeypatch):
    ds = tiny_dataset()
    config = TrainConfig(epochs=2, batch_size=16, device="cpu")
    names = ["joint", "ume-mma"]  # ume-mma waits for the uni-modal runs of the first wave
    assert torch.get_num_threads() == 1  # each of 2 workers gets 1 thread, as this process
    monkeypatch.setenv("UMM_RUNS_DIR", str(tmp_path / "two"))
    together = run_seeds(names, ds, [0, 1], config, jobs=2)
    assert sorted(p.name for p in (tmp_path / "two" / "cache" / "tiny").iterdir()) == [
        "joint", "ume-mma", "unimodal_audio", "unimodal_image"]
    monkeypatch.setenv("UMM_RUNS_DIR", str(tmp_path / "alone"))
    alone = run_seeds(names, ds, [0, 1], config, jobs=1)
    for name in names:
        for a, b in zip(together[name], alone[name]):
            assert a.cached and not b.cached  # trained by a worker, read back from the cache
            assert _key_figures(a) == _key_figures(b)
            assert same_weights(a.model, b.model)


def test_a_failing_run_is_named_and_the_queued_runs_are_cancelled(monkeypatch):
    def train_one(source, name, config, options):
        if name == "joint" and config.seed == 1:
            raise ValueError("TrainConfig.lr is too large")

    monkeypatch.setattr(parallel, "_train_one", train_one)
    job_waves = waves(["joint", "ume"], [0, 1], MODALITIES)
    with ThreadPoolExecutor(1) as pool:
        finished = parallel._finished(pool, "x:y", job_waves, TrainConfig(device="cpu"), None)
        with pytest.raises(ValueError, match="lr is too large") as info:
            list(finished)
    assert "while training 'joint' with seed 1 in a worker process" in info.value.__notes__[0]


def test_options_go_only_to_the_methods_that_have_them():
    assert parallel._options_for("umt", {"distill_weight": 2.0}) == {"distill_weight": 2.0}
    assert parallel._options_for("joint", {"distill_weight": 2.0}) is None
    assert parallel._options_for("unimodal:audio", None) is None


@pytest.mark.parametrize("jobs, message", [(0, "jobs = 0 is invalid: expected an integer >= 1"),
                                           ("2", "jobs = '2' is invalid"),
                                           (True, "jobs = True is invalid")])
def test_bad_jobs_are_refused(jobs, message):
    with pytest.raises(ValueError, match=message):
        check_jobs(jobs)


def test_jobs_default_to_one_on_a_cpu_and_refuse_torchrun(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check_jobs(None) == 1
    monkeypatch.setattr(parallel.distributed, "world_size", lambda: 2)
    assert check_jobs(1) == 1
    with pytest.raises(ValueError, match="cannot be combined with torchrun"):
        check_jobs(2)


def test_bad_names_and_options_fail_before_any_process_starts(monkeypatch):
    monkeypatch.setattr(parallel, "train_in_workers", lambda *a: pytest.fail("started"))
    ds = tiny_dataset()
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        run_seeds(["joint", "nope"], ds, [0], jobs=2)
    with pytest.raises(ValueError, match="option finetune_lr_scale = -1"):
        run_seeds(["ume-mma"], ds, [0], options={"finetune_lr_scale": -1}, jobs=2)


def test_small_data_goes_to_workers_large_data_is_loaded_by_them(monkeypatch):
    ds = tiny_dataset()
    assert parallel.worker_source(ds) is ds  # small, and no loader under its name
    assert parallel.worker_source(ds, "pkg.mod:load") == ("pkg.mod:load", ds.checksum)
    named = MultiModalDataset(ds.train, ds.validation, ds.test, name="synthetic",
                              checksum=ds.checksum)
    assert parallel.worker_source(named) is named
    monkeypatch.setattr(parallel, "SHARE_LIMIT_BYTES", 0)
    assert parallel.worker_source(named) == ("umm_helpers.data.synthetic:load", ds.checksum)


def test_a_worker_that_loads_other_data_refuses_to_train():
    with pytest.raises(ValueError, match=r"got checksum .* not the caller's abc .* pass loader="):
        parallel._train_one(("umm_helpers.data.synthetic:load", "abc"), "joint",
                            TrainConfig(device="cpu"), None)


def test_a_table_already_in_the_cache_starts_no_worker(monkeypatch):
    ds = tiny_dataset()
    config = TrainConfig(epochs=1, batch_size=16, device="cpu")
    alone = run_seeds(["joint"], ds, [0], config, jobs=1)
    monkeypatch.setattr(parallel, "train_in_workers", lambda *a: pytest.fail("started"))
    again = run_seeds(["joint"], ds, [0], config, jobs=2)
    assert again["joint"][0].cached and _key_figures(again["joint"][0]) == _key_figures(
        alone["joint"][0])
