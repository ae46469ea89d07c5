"""Run cache keys and files, the CLI helpers, comparisons and the benchmark."""
from __future__ import annotations

import json
from argparse import Namespace

import pytest
import torch
from _engine_data import late_model, tiny_dataset

import umm_helpers.data as data
from umm_helpers.bench import bench, bench_cli
from umm_helpers.checkpoint import CheckpointError
from umm_helpers.encoders import default_encoders
from umm_helpers.runs import (CompareTable, compare, compare_cli, encoder_identity, load_result,
                              load_weights, result_path, run_cli, run_key, save_run, summarize)
from umm_helpers.train import TrainConfig


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("UMM_PROGRESS", "0")
    monkeypatch.setenv("UMM_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("UMM_DEVICE", "cpu")


@pytest.fixture
def registered(monkeypatch):
    ds = tiny_dataset()
    monkeypatch.setitem(data._REGISTRY, "tiny", lambda: ds)
    return ds


def test_run_key_depends_on_what_shapes_a_run():
    cfg = TrainConfig().to_dict()
    base = run_key("abc", "joint", cfg, {"audio": "enc"})
    assert base == run_key("abc", "joint", cfg, {"audio": "enc"})
    assert base != run_key("abd", "joint", cfg, {"audio": "enc"})
    assert base != run_key("abc", "ume", cfg, {"audio": "enc"})
    assert base != run_key("abc", "joint", TrainConfig(lr=0.01).to_dict(), {"audio": "enc"})
    assert base != run_key("abc", "joint", cfg, {"audio": "other"})
    assert base == run_key("abc", "joint", TrainConfig(device="cuda", stream=True).to_dict(),
                           {"audio": "enc"})


def test_encoder_identity_names_factory_and_arguments():
    ds = tiny_dataset()
    ident = encoder_identity(default_encoders(ds)["image"])
    assert ident == "umm_helpers.encoders.default_encoder((1, 4, 4))"
    torch.manual_seed(0)
    a = torch.nn.Linear(2, 2)
    b = torch.nn.Linear(2, 2)
    assert encoder_identity(a) != encoder_identity(b)
    assert encoder_identity(a).startswith("torch.nn.modules.linear.Linear@")


def test_save_and_load_run_atomically(tmp_path):
    ds = tiny_dataset()
    model = late_model(ds, seed=1)
    folder = tmp_path / "run"
    assert load_result(folder) is None
    save_run(folder, model, {"method": "joint", "scores": {"full": 0.5}})
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "result.json"]
    assert load_result(folder)["scores"] == {"full": 0.5}
    other = load_weights(folder, late_model(ds, seed=2))
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in model.state_dict().items())
    (folder / "model.safetensors").write_bytes(b"broken")
    with pytest.raises(CheckpointError, match=str(folder / "model.safetensors")):
        load_weights(folder, model)
    (folder / "result.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=str(folder / "result.json")):
        load_result(folder)


def test_run_cli_writes_result(registered, tmp_path, capsys):
    args = Namespace(dataset="tiny", method="unimodal:image", seed=1, epochs=1, out=None)
    assert run_cli(args) == 0
    path = result_path("tiny", "unimodal:image", 1)
    assert path == tmp_path / "runs" / "tiny" / "unimodal_image" / "seed1" / "result.json"
    result = json.loads(path.read_text())
    assert result["method"] == "unimodal:image" and result["config"]["seed"] == 1
    assert result["config"]["epochs"] == 1
    assert "unimodal:image seed 1: full" in capsys.readouterr().out


def test_summarize_mean_and_std():
    runs = [{"scores": {"full": s, "miss:a": s / 2}, "aurc": {"any": s - 0.1}}
            for s in (0.8, 0.6)]
    table = summarize({"joint": runs})
    assert table.columns == ["full", "miss:a", "aurc:any"]
    row = table.rows[0]
    assert row["full"] == pytest.approx((0.7, 0.1414213), rel=1e-5)
    assert row["seeds"] == 2
    assert "| joint | 0.700 ± 0.141 | 0.350 ± 0.071 | 0.600 ± 0.141 |" in table.to_markdown()
    assert table.to_csv().splitlines()[0] == ("method,seeds,full_mean,full_std,miss:a_mean,"
                                              "miss:a_std,aurc:any_mean,aurc:any_std")


def test_compare_writes_csv_and_markdown(registered, tmp_path, capsys):
    table = compare("tiny", "joint,ume", "0,1", epochs=1)
    assert isinstance(table, CompareTable)
    assert [r["method"] for r in table.rows] == ["joint", "ume"]
    assert all(r["seeds"] == 2 for r in table.rows)
    assert table.csv_path == tmp_path / "runs" / "tiny" / "compare.csv"
    assert table.markdown_path.read_text() == table.to_markdown()
    assert len(table.csv_path.read_text().splitlines()) == 3
    out = tmp_path / "out"
    args = Namespace(dataset="tiny", methods="joint", seeds="0,1", epochs=1, out=str(out))
    assert compare_cli(args) == 0
    assert "| joint |" in capsys.readouterr().out and (out / "compare.md").exists()
    with pytest.raises(ValueError, match="seeds must be a comma list"):
        compare("tiny", "joint", "0;1", epochs=1)


def test_bench_reports_speedup_and_overhead(registered, capsys):
    out = bench(registered, batch_size=16, repeats=1, device="cpu", widgets=True)
    line = json.loads(capsys.readouterr().out.strip())
    assert line == out
    assert out["speedup"] > 0 and out["overhead"] > 0 and out["slider_update_us"] > 0
    assert out["speedup"] == pytest.approx(out["reference_epoch_s"] / out["engine_epoch_s"])
    assert out["amp_bf16"] is False and "engine_fp32_epoch_s" not in out  # CPU: float32 only
    assert bench_cli(Namespace(dataset="tiny", widgets=False)) == 0
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        bench(registered, repeats=0)


def test_encoder_identity_tells_lambdas_and_captured_values_apart():
    import functools

    from umm_helpers.encoders import ConvEncoder, MLPEncoder
    from umm_helpers.runs import encoder_identity

    a = lambda: ConvEncoder(1)  # noqa: E731
    b = lambda: MLPEncoder(4)  # noqa: E731
    assert encoder_identity(a) != encoder_identity(b)

    def make(width):
        return lambda: MLPEncoder(4, out_features=width)

    assert encoder_identity(make(8)) != encoder_identity(make(16))
    assert encoder_identity(make(8)) == encoder_identity(make(8))
    assert encoder_identity(functools.partial(MLPEncoder, 4)) != \
        encoder_identity(functools.partial(MLPEncoder, 5))
    assert encoder_identity(ConvEncoder) == "umm_helpers.encoders.ConvEncoder"
