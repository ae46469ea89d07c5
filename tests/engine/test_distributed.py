"""Data-parallel training under torchrun (notebook 07): helpers, and a 2-process gloo run on CPU
that must match the single-process run of the same global batch."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from _engine_data import tiny_dataset
from safetensors.torch import load_file
from torch import nn

from umm_helpers.core.fusion import LateFusionModel
from umm_helpers.data import MultiModalDataset
from umm_helpers.engine import distributed
from umm_helpers.engine.checkpoint import load_tensors
from umm_helpers.engine.trainer import CHECKPOINT_NAME, TrainConfig, batch_bounds, fit

TESTS = Path(__file__).resolve().parents[1]  # the folder of _engine_data.py
# Max |w_2proc - w_1proc| over all weights. Only the order of float additions differs (each
# rank's shard gradient, then their weighted sum); measured 3e-8 for this setup.
TOLERANCE = 1e-5
# 91 training samples, global batch 16: five full batches and a last one of 11, split 5 / 6,
# so the per-rank weighting of uneven shards is exercised too. MMA and training-time missing
# audio are on: the masks are drawn for the global batch, as in one process.
CONFIG = TrainConfig(epochs=3, batch_size=16, device="cpu", p_missing=0.5, keep={"audio": 0.6},
                     seed=4)


def vector_dataset() -> MultiModalDataset:
    """Vector modalities (audio [12], image [8]) of the tiny seeded task."""
    return tiny_dataset({"audio": (12,), "image": (8,)}, n=(91, 40, 40))


def vector_model(dataset: MultiModalDataset, seed: int = 0) -> LateFusionModel:
    """Late fusion of MLP encoders without BatchNorm, so data-parallel can match exactly."""
    torch.manual_seed(seed)
    enc = {m: nn.Sequential(nn.Flatten(), nn.Linear(int(x.shape[1]), 32), nn.ReLU(),
                            nn.Linear(32, 16), nn.ReLU())
           for m, x in dataset.train.inputs.items()}
    return LateFusionModel(enc, dataset.num_classes, {m: 16 for m in enc})


def batchnorm_model(dataset: MultiModalDataset, seed: int = 0) -> LateFusionModel:
    """Late fusion of MLP encoders with BatchNorm (per-shard statistics unless synced).

    The layer before BatchNorm has no bias, as in ``ConvEncoder``: such a bias has a gradient
    of exactly zero in theory, so Adam would turn its rounding noise into steps of size lr.
    """
    torch.manual_seed(seed)
    enc = {m: nn.Sequential(nn.Flatten(), nn.Linear(int(x.shape[1]), 32, bias=False),
                            nn.BatchNorm1d(32),
                            nn.ReLU(), nn.Linear(32, 16), nn.ReLU())
           for m, x in dataset.train.inputs.items()}
    return LateFusionModel(enc, dataset.num_classes, {m: 16 for m in enc})


def test_launch_info_reads_torchrun_variables(monkeypatch):
    assert distributed.launch_info() is None
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.launch_info() == distributed.LaunchInfo(1, 4, 1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="inconsistent"):
        distributed.launch_info()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="integers"):
        distributed.launch_info()


def test_more_processes_than_gpus_is_refused_with_the_fix(monkeypatch):
    for var, value in (("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1")):
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("UMM_DEVICE", "cuda")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeError, match=r"1 CUDA device.*--nproc_per_node=1.*UMM_DEVICE=cpu"):
        distributed.init()
    assert not distributed.is_initialized()


def test_single_process_helpers_are_no_ops():
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    with distributed.session() as opened:
        assert not opened and not distributed.is_initialized()
    distributed.barrier()
    model = nn.Linear(2, 2)
    wrapped, undo = distributed.wrap_model(model, sync_batchnorm=True)
    assert wrapped is model  # one process: no DistributedDataParallel
    undo()
    assert distributed.broadcast_float(0.25) == 0.25


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_tile_each_batch(world):
    for n in range(2 * world, 40):
        ranges = [distributed.shard_range(n, r, world) for r in range(world)]
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        sizes = [e - s for s, e in ranges]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 2


def test_seeds_differ_per_rank_and_repeat():
    seeds = [distributed.derive_seed(7, r) for r in range(4)]
    assert len(set(seeds)) == 4 and all(0 <= s < 2**63 for s in seeds)
    assert seeds == [distributed.derive_seed(7, r) for r in range(4)]
    assert distributed.derive_seed(7, 0, 1) != distributed.derive_seed(7, 0, 2)


def test_run_cache_keys_data_parallel_runs_apart(monkeypatch):
    from umm_helpers.methods.identity import run_key

    config = TrainConfig().to_dict()
    single = run_key("abc", "joint", config, {"audio": "enc"})
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    assert run_key("abc", "joint", config, {"audio": "enc"}) != single


def test_last_batch_rule_per_rank():
    assert batch_bounds(91, 16, min_last=4)[-1] == (80, 91)
    assert batch_bounds(83, 16, min_last=4)[-1] == (64, 80)  # 3 left: one rank would get 1


CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    sys.path[:0] = [{tests!r}, {here!r}]
    import torch.distributed as dist
    from safetensors.torch import save_file
    from test_distributed import CONFIG, batchnorm_model, vector_dataset, vector_model
    from umm_helpers.engine import distributed
    from umm_helpers.tools.cli import main
    from umm_helpers.data import register_dataset
    from umm_helpers.engine.trainer import fit

    out = Path(sys.argv[1])
    with distributed.session() as opened:
        rank = distributed.rank()
        info = {{"opened": opened, "rank": rank, "world": distributed.world_size(),
                 "backend": dist.get_backend()}}
        ds = vector_dataset()
        try:
            fit(vector_model(ds), ds, CONFIG.replace(batch_size=15))
        except ValueError as exc:
            info["error"] = str(exc)
        model = vector_model(ds, seed=rank)  # other ranks start elsewhere: fit syncs them
        info["history"] = fit(model, ds, CONFIG, checkpoint_dir=out / "ckpt")
        save_file({{k: v.contiguous() for k, v in model.state_dict().items()}},
                  str(out / f"weights{{rank}}.safetensors"))
        (out / f"info{{rank}}.json").write_text(json.dumps(info))
        for synced in (True, False):
            bn = batchnorm_model(ds, seed=rank)
            fit(bn, ds, CONFIG.replace(sync_batchnorm=synced))
            assert all("forward" not in m.__dict__ for m in bn.modules())  # layers restored
            save_file({{k: v.contiguous() for k, v in bn.state_dict().items()}},
                      str(out / f"bn{{int(synced)}}-{{rank}}.safetensors"))
        register_dataset("tiny-vectors", vector_dataset)
        code = main(["run", "--dataset", "tiny-vectors", "--method", "joint-mma",
                     "--epochs", "2", "--out", str(out / "cli")])
        code += main(["compare", "--dataset", "tiny-vectors", "--methods", "joint,ume",
                      "--seeds", "0", "--epochs", "1", "--sync-batchnorm",
                      "--out", str(out / "compare")])
    sys.exit(code)
""")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(TESTS), here=str(Path(__file__).parent)))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "UMM_PROGRESS": "0",
           "UMM_RUNS_DIR": str(tmp_path / "runs"), "UMM_DEVICE": "cpu"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(script), str(out)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert seconds < 60, f"the 2-process run took {seconds:.1f} s"

    infos = [json.loads((out / f"info{r}.json").read_text()) for r in (0, 1)]
    assert [(i["opened"], i["rank"], i["world"], i["backend"]) for i in infos] == [
        (True, 0, 2, "gloo"), (True, 1, 2, "gloo")]
    assert all("batch_size = 15" in i["error"] and "multiple of 2" in i["error"]
               for i in infos)

    ds = vector_dataset()
    single = vector_model(ds, seed=0)
    expected_history = fit(single, ds, CONFIG)
    expected = single.state_dict()
    ranks = [load_file(str(out / f"weights{r}.safetensors")) for r in (0, 1)]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in expected)  # ranks agree exactly
    diff = max(float((ranks[0][k] - expected[k]).abs().max()) for k in expected)
    print(f"BatchNorm-free: max weight gap {diff:.3g}")
    assert diff < TOLERANCE, f"max |w_2proc - w_1proc| = {diff:.3g}"
    initial = vector_model(ds, seed=0).state_dict()
    moved = max(float((ranks[0][k] - initial[k]).abs().max()) for k in expected)
    assert moved > 1000 * TOLERANCE  # training did change the weights
    for got, want in zip(infos[0]["history"], expected_history):
        assert got["epoch"] == want["epoch"]
        assert got["train_loss"] == pytest.approx(want["train_loss"], abs=TOLERANCE)
        assert abs(got["val_score"] - want["val_score"]) <= 1 / len(ds.validation)

    # rank 0 wrote the checkpoint, the cached run and the CLI result, once, with no temp files
    _, meta = load_tensors(out / "ckpt" / CHECKPOINT_NAME)
    assert meta["state"]["epoch"] == CONFIG.epochs
    written = list((out / "cli").rglob("result.json"))
    assert [p.relative_to(out / "cli").parts[1:] for p in written] == [
        ("joint-mma", "seed0", "result.json")]
    result = json.loads(written[0].read_text())
    assert result["method"] == "joint-mma" and 0.25 < result["scores"]["full"] <= 1
    assert len(result["history"]) == 2
    cached = list((tmp_path / "runs").rglob("joint-mma/*/result.json"))
    assert len(cached) == 1 and not list(cached[0].parent.glob("ckpt-*"))
    assert not list(tmp_path.rglob("*.tmp"))
    assert proc.stdout.count("joint-mma seed 0:") == 1

    # BatchNorm: synced statistics match one process; per-shard statistics do not
    single_bn = batchnorm_model(ds, seed=0)
    fit(single_bn, ds, CONFIG)
    want = single_bn.state_dict()
    for synced, bound in ((1, TOLERANCE), (0, None)):
        got = [load_file(str(out / f"bn{synced}-{r}.safetensors")) for r in (0, 1)]
        assert all(torch.equal(got[0][k], got[1][k]) for k in want)
        gap = max(float((got[0][k].float() - want[k].float()).abs().max()) for k in want)
        print(f"BatchNorm {'synced' if synced else 'per shard'}: max weight gap {gap:.3g}")
        if bound is not None:
            assert gap < bound, f"synced BatchNorm: max |w_2proc - w_1proc| = {gap:.3g}"
        else:
            assert gap > 100 * TOLERANCE, f"per-shard BatchNorm unexpectedly exact ({gap:.3g})"

    # umm compare under torchrun: one table, written once by rank 0
    assert proc.stdout.count("| method |") == 1
    assert sorted(p.name for p in (out / "compare").iterdir()) == ["compare.csv", "compare.md"]
    assert "| ume |" in (out / "compare" / "compare.md").read_text()
