"""``make gpu-check`` refuses a machine without CUDA and formats a compact report."""
import pytest
import torch

from umm_helpers.tools import gpu_check


def test_refuses_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="needs a CUDA GPU.*make test"):
        gpu_check.cuda_device()


def test_report_lists_steps_bench_and_notebooks():
    text = gpu_check.report(
        "NVIDIA H100", {"unit": {"exit": 0, "seconds": 12.34, "last_line": "300 passed"}},
        {"speedup": 3.5, "overhead": 1.02},
        [{"notebook": "00_setup_and_data.ipynb", "seconds": 4.0, "status": "ok"}])
    assert text.splitlines()[0] == "device: NVIDIA H100"
    assert "unit       exit 0     12.3 s  300 passed" in text
    assert '"overhead": 1.02' in text and "00_setup_and_data.ipynb" in text and "4.0 s" in text


def test_report_lists_method_times():
    methods = {"dataset": "avmnist-shapes", "samples": {"train": 55000}, "epochs": 2,
               "methods": {"ume": {"wall_s": 3.25, "estimate_s": 61.0, "estimate_epochs": 20}}}
    text = gpu_check.report("GPU", {}, None, [], methods)
    assert "methods on avmnist-shapes (55000 training pairs, 2 epochs measured" in text
    assert "ume" in text and "3.2 s measured" in text and "~     61 s estimated" in text
    assert "bench:" not in text


def test_pytest_command_spreads_over_jobs_only_with_xdist(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    assert "-n" in gpu_check.pytest_command(4) or real("xdist") is None
    assert "-n" not in gpu_check.pytest_command(1)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name == "xdist" else real(name))
    assert "-n" not in gpu_check.pytest_command(4)


def test_gpu_check_saves_after_every_part_and_returns_worst_exit(monkeypatch, tmp_path):
    """The orchestration, with the GPU parts replaced by stand-ins."""
    import json

    from umm_helpers import data as data_mod
    from umm_helpers.tools import bench as bench_mod

    monkeypatch.setattr(gpu_check, "cuda_device", lambda: "Fake GPU")
    monkeypatch.setattr(gpu_check, "repo_root", lambda: tmp_path)
    monkeypatch.setattr(data_mod, "load_dataset", lambda name, **kw: name)
    monkeypatch.setattr(bench_mod, "bench", lambda ds, verbose=True, **kw: {
        "dataset": ds, "speedup": 2.0, **kw})
    monkeypatch.setattr(bench_mod, "method_times", lambda ds, methods, epochs: {
        "dataset": ds, "samples": {"train": 5}, "epochs": epochs, "methods": {}})
    seen = []

    def fake_timed(cmd, env=None):
        seen.append((cmd, env))
        (tmp_path / "build").mkdir(exist_ok=True)
        (tmp_path / "build" / "course_summary.json").write_text(
            json.dumps([{"notebook": "00.ipynb", "seconds": 1.0, "status": "ok"}]))
        return (0 if "course" in cmd else 1), 2.0, "last"

    monkeypatch.setattr(gpu_check, "_timed", fake_timed)
    assert gpu_check.run_gpu_check(jobs=1, method_epochs=3) == 1
    saved = json.loads((tmp_path / "build" / "gpu_check.json").read_text())
    assert saved["device"] == "Fake GPU" and saved["bench"]["dataset"] == "av-digits"
    assert saved["bench_avmnist"]["dataset"] == "avmnist-shapes"
    assert saved["methods"]["dataset"] == "avmnist-shapes" and saved["methods"]["epochs"] == 3
    assert saved["steps"]["course"]["exit"] == 0 and saved["steps"]["unit"]["exit"] == 1
    assert saved["notebooks"][0]["notebook"] == "00.ipynb"
    course_env = next(env for cmd, env in seen if "course" in cmd)
    assert course_env["UMM_RUNS_DIR"].endswith("gpu-check-runs")
    compare_cmd, compare_env = next((cmd, env) for cmd, env in seen if "compare" in cmd)
    assert compare_cmd[-6:] == ["--dataset", "avmnist-shapes", "--methods", "all",
                                "--seeds", "0,1,2"]
    assert compare_env["UMM_RUNS_DIR"].endswith("gpu-check-compare-runs")  # an empty cache
    assert saved["steps"]["compare"]["seeds_measured"] == 3


def test_report_gives_each_bench_figure_with_its_range():
    q = {"median": 1.0, "p25": 0.9, "p75": 1.1}
    line = {"dataset": "av-digits", "device": "cuda:0", "rounds": 7, "spread": {"engine": q},
            "speedup": 3.0, "speedup_spread": q, "overhead": 1.05, "overhead_spread": q}
    text = gpu_check.report("GPU", {}, line, [])
    assert "bench: av-digits on cuda:0, 7 interleaved rounds:" in text
    assert "overhead" in text and "(0.900-1.100)" in text


def test_quick_compare_measures_one_seed_and_says_it_extrapolates():
    cmd, seeds = gpu_check.compare_command(quick=True)
    assert cmd[-1] == "0" and seeds == 1
    quick = gpu_check.compare_line({"exit": 0, "seconds": 100.0, "seeds_measured": 1})
    assert "100.0 s for seed 0; ~300 s for 3 seeds (extrapolated from 1, --quick)" in quick
    full = gpu_check.compare_line({"exit": 0, "seconds": 250.0, "seeds_measured": 3})
    assert "250.0 s for seeds 0,1,2 (measured)" in full
    text = gpu_check.report("GPU", {"compare": {"exit": 0, "seconds": 100.0, "last_line": "",
                                                "seeds_measured": 1}}, None, [])
    assert "extrapolated" in text


def test_report_totals_notebooks_00_to_06_and_says_when_it_cannot():
    rows = [{"notebook": f"{k:02d}_x.ipynb", "seconds": 10.0, "status": "ok"} for k in range(10)]
    text = gpu_check.report("GPU", {}, None, rows)
    assert text.splitlines()[1] == "notebooks 00-06: 70.0 s in all, from an empty run cache"
    rows[3] = {"notebook": "03_x.ipynb", "seconds": None, "status": "FAILED"}
    assert "notebooks 00-06: not measured" in gpu_check.report("GPU", {}, None, rows)


def test_course_runs_twice_with_two_seed_offsets_and_reports_changed_claims(monkeypatch, tmp_path):
    import json

    monkeypatch.setattr(gpu_check, "cuda_device", lambda: "Fake GPU")
    monkeypatch.setattr(gpu_check, "repo_root", lambda: tmp_path)
    envs = []

    def fake_timed(cmd, env=None):
        envs.append(env)
        outcome = "held" if env["UMM_SEED_OFFSET"] == "0" else "failed"
        rows = [{"notebook": "03.ipynb", "text": "a beats b", "outcome": outcome},
                {"notebook": "03.ipynb", "text": "c beats d", "outcome": "held"}]
        with open(env["UMM_CLAIMS_LOG"], "w") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
        return 0, 1.0, "ok"

    monkeypatch.setattr(gpu_check, "_timed", fake_timed)
    (tmp_path / "build").mkdir()
    assert gpu_check.run_gpu_check(jobs=1, parts=("course", "course-offset")) == 0
    assert [e["UMM_SEED_OFFSET"] for e in envs] == ["0", "100"]
    assert envs[0]["UMM_RUNS_DIR"] == envs[1]["UMM_RUNS_DIR"]
    assert envs[0]["UMM_CLAIMS_LOG"] != envs[1]["UMM_CLAIMS_LOG"]
    from umm_helpers.course.claim_log import read_log

    logs = [read_log(tmp_path / "build" / f"claims-offset-{k}.jsonl") for k in (0, 100)]
    lines = gpu_check.claims_lines(*logs)
    assert lines == ["claims, seed offset 0: 2 held, 0 not distinguishable, 0 failed",
                     "claims, seed offset 100: 1 held, 0 not distinguishable, 1 failed",
                     "claims whose outcome changed between the two: 1",
                     "  03.ipynb: a beats b: held -> failed"]


def test_parts_are_checked_before_any_work():
    assert gpu_check.parse_parts(None) == gpu_check.PARTS
    assert gpu_check.parse_parts("unit, course") == ("course", "unit")
    with pytest.raises(ValueError, match=r"unknown part\(s\) \['gpu'\].*e.g. --parts course"):
        gpu_check.parse_parts("gpu,unit")
