"""Wall time per method (``umm bench --methods``) and the ``avmnist-shapes`` stand-in."""
import json

import pytest
import torch

from umm_helpers.data import load_dataset
from umm_helpers.data.avmnist_shapes import split_sizes
from umm_helpers.engine.batches import batch_bounds
from umm_helpers.tools.bench import (
    bench,
    interleaved,
    method_times,
    method_timing,
    settled,
    spread,
    summary_lines,
)


def test_shapes_standin_has_avmnist_sizes_and_shapes():
    assert split_sizes(1.0) == {"train": 55_000, "validation": 5_000, "test": 10_000}
    ds = load_dataset("avmnist-shapes", scale=0.002)
    assert [len(s) for s in ds.splits().values()] == [110, 10, 20]
    assert tuple(ds.train.inputs["image"].shape[1:]) == (1, 28, 28)
    assert tuple(ds.train.inputs["audio"].shape[1:]) == (1, 112, 112)
    assert ds.num_classes == 10 and ds.train.inputs["audio"].dtype == torch.float32


def test_shapes_standin_is_deterministic_per_seed():
    a, b = (load_dataset("avmnist-shapes", scale=0.001, seed=3) for _ in range(2))
    c = load_dataset("avmnist-shapes", scale=0.001, seed=4)
    assert torch.equal(a.test.inputs["audio"], b.test.inputs["audio"])
    assert a.checksum == b.checksum != c.checksum
    assert not torch.equal(a.test.inputs["audio"], c.test.inputs["audio"])


@pytest.mark.parametrize("scale", [0, -1, 1.5])
def test_shapes_standin_rejects_bad_scale(scale):
    with pytest.raises(ValueError, match=r"scale = .*fraction in \(0, 1\]"):
        split_sizes(scale)


def test_method_timing_separates_overhead_own_and_reused_stages():
    history = ([{"stage": "unimodal:a", "seconds": 2.0, "reused": True}] * 2
               + [{"stage": "finetune", "seconds": 1.0}, {"stage": "finetune", "seconds": 3.0}])
    row = method_timing(history, wall_s=5.0, estimate_epochs=10)
    assert row["overhead_s"] == 1.0  # 5 s wall - 4 s of own epochs; reused epochs are not in wall
    assert row["epoch_s"] == {"unimodal:a": 2.0, "finetune": 2.0}
    assert row["estimate_s"] == 1.0 + 10 * 4.0
    assert row["own_estimate_s"] == 1.0 + 10 * 2.0


def test_method_timing_counts_unimodal_runs_trained_during_the_call():
    history = [{"stage": "unimodal:a", "seconds": 2.0, "reused": False},
               {"stage": "finetune", "seconds": 1.0}]
    assert method_timing(history, wall_s=4.0, estimate_epochs=1)["overhead_s"] == 1.0


def test_method_times_runs_every_method_in_a_scratch_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UMM_RUNS_DIR", str(tmp_path))
    ds = load_dataset("avmnist-shapes", scale=0.002)
    out = method_times(ds, "unimodal:image,ume", epochs=1, estimate_epochs=5, batch_size=32)
    assert list(out["methods"]) == ["unimodal:image", "ume"]
    ume = out["methods"]["ume"]
    assert set(ume["epoch_s"]) == {"unimodal:audio", "unimodal:image"}
    assert ume["estimate_s"] > ume["own_estimate_s"] >= ume["overhead_s"] - 0.1
    assert out["samples"]["train"] == 110 and out["epochs"] == 1
    assert list(tmp_path.iterdir()) == []  # the user's run cache is untouched
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["bench"] == "methods"


def test_bench_reports_speedup_and_overhead(registered, capsys):
    out = bench(registered, batch_size=16, repeats=1, max_rounds=4, device="cpu", widgets=True)
    line = json.loads(capsys.readouterr().out.strip())
    assert line == out
    assert out["speedup"] > 0 and out["overhead"] > 0 and out["slider_update_us"] > 0
    # a median of per-round ratios: inside their quartiles, near the ratio of the medians
    assert out["speedup_spread"]["p25"] <= out["speedup"] <= out["speedup_spread"]["p75"]
    assert out["amp_bf16"] is False and "engine_bf16_epoch_s" not in out  # CPU: float32 only
    assert "engine_eager_epoch_s" not in out and "peak_gpu_memory_gb" not in out  # CUDA only
    steps = len(batch_bounds(len(registered.train), 16))
    assert out["steps_per_s"] == pytest.approx(steps / out["engine_epoch_s"])
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        bench(registered, repeats=0)


def test_spread_is_the_median_and_the_quartiles():
    assert spread([1.0, 2.0, 3.0, 4.0, 5.0]) == {"median": 3.0, "p25": 2.0, "p75": 4.0}


def test_settled_needs_three_rounds_and_every_median_within_tolerance():
    assert not settled([[1.0, 1.0]], 0.02)
    assert settled([[1.0, 1.0, 1.0], [2.0, 2.0, 2.01]], 0.02)
    assert not settled([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]], 0.02)  # one loop still moves


def test_loops_are_timed_in_turn_until_they_settle():
    calls: list[str] = []

    def loop(name: str, seconds: float):
        def run() -> float:
            calls.append(name)
            return seconds
        return run

    times = interleaved({"a": loop("a", 1.0), "b": loop("b", 2.0)}, min_rounds=3,
                        max_rounds=10, tolerance=0.02)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three interleaved rounds
    assert times == {"a": [1.0] * 3, "b": [2.0] * 3}


def test_a_loop_that_never_settles_stops_at_max_rounds():
    values = iter(range(1, 100))
    times = interleaved({"a": lambda: float(next(values))}, min_rounds=3, max_rounds=6,
                        tolerance=0.01)
    assert len(times["a"]) == 6


def test_bench_reports_medians_spreads_and_rounds(registered, capsys):
    out = bench(registered, batch_size=16, repeats=3, max_rounds=4, device="cpu")
    assert 3 <= out["rounds"] <= 4
    for name in ("engine", "reference", "pure"):
        s = out["spread"][name]
        assert 0 < s["p25"] <= s["median"] <= s["p75"]
    assert out["speedup_spread"]["p25"] <= out["speedup"] <= out["speedup_spread"]["p75"]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rounds"] == out["rounds"]


def test_bench_refuses_max_rounds_below_repeats(registered):
    with pytest.raises(ValueError, match="max_rounds"):
        bench(registered, repeats=5, max_rounds=3)


def test_summary_lines_name_every_figure_with_its_range():
    q = {"median": 2.0, "p25": 1.0, "p75": 3.0}
    out = {"dataset": "d", "device": "cpu", "rounds": 4, "spread": {"engine": q, "pure": q},
           "speedup": 2.0, "speedup_spread": q, "overhead": 2.0, "overhead_spread": q}
    text = summary_lines(out)
    assert "4 interleaved rounds" in text and "engine epoch" in text and "pure epoch" in text
    assert "speedup" in text and "(1.000-3.000)" in text
    assert "steps per second" not in text
    text = summary_lines({**out, "steps_per_s": 812.4, "peak_gpu_memory_gb": 1.5})
    assert "steps per second   812" in text and "peak GPU memory    1.50 GB" in text
