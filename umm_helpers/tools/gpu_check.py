"""``make gpu-check``: the whole project on a CUDA machine, with one compact report.

Runs ``umm bench`` at AV-Digits and AV-MNIST size (``avmnist-shapes``), times every method
there, runs ``umm compare`` of every method over three seeds, every course notebook (into
``build/``, from an empty run cache) with the default seeds and with ``UMM_SEED_OFFSET=100``, and
the unit tests (those marked ``cuda`` included), then prints one report: the bench figures
(speedup, overhead, steps per second, peak GPU memory), the comparison's wall time, notebooks
00-06 in all, each notebook's wall time, and the claims whose outcome changed between the two
seed offsets. ``--parts`` runs some parts only (each ``make gpu-check`` call must fit a lease).
Notebook 07 and the README give the figures of one run. Refuses to run without CUDA, because
the point is to measure the GPU path.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

from umm_helpers.atomic import write_text
from umm_helpers.settings import repo_root


def cuda_device() -> str:
    """The CUDA device's name, or raise with what to do instead."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("make gpu-check needs a CUDA GPU, and torch.cuda.is_available() is "
                           "False here. On a CPU machine run `make test` and `make course`; on a "
                           "GPU machine check that the installed torch build matches the driver "
                           "(python -c 'import torch; print(torch.version.cuda)').")
    return torch.cuda.get_device_name(0)


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[int, float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=repo_root(), capture_output=True, text=True,
                          env=None if env is None else {**os.environ, **env})
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
    return proc.returncode, time.perf_counter() - start, tail[0]


# The notebooks whose total the README quotes (the course up to the capstone).
CORE_NOTEBOOKS = tuple(f"{k:02d}_" for k in range(7))


def notebooks_line(notebooks: list[dict[str, Any]]) -> str:
    """``notebooks 00-06: <s> s from an empty run cache`` (pure)."""
    rows = [r for r in notebooks if str(r.get("notebook", "")).startswith(CORE_NOTEBOOKS)]
    if not rows or any(r.get("seconds") is None for r in rows):
        return "notebooks 00-06: not measured (a notebook failed or did not run)"
    return (f"notebooks 00-06: {sum(r['seconds'] for r in rows):.1f} s in all, from an empty "
            "run cache")


def report(device: str, steps: dict[str, dict[str, Any]], bench_line: dict[str, Any] | None,
           notebooks: list[dict[str, Any]], methods: dict[str, Any] | None = None,
           bench_large: dict[str, Any] | None = None) -> str:
    """The compact, printable report (pure; tested without a GPU)."""
    lines = [f"device: {device}", notebooks_line(notebooks)]
    for name, s in steps.items():
        if "seeds_measured" in s:
            lines.append(compare_line(s))
            continue
        lines.append(f"{name:<10} exit {s['exit']}  {s['seconds']:7.1f} s  {s['last_line']}")
    for line in (bench_line, bench_large):
        if line is not None and "spread" in line:  # median and quartiles per figure
            from umm_helpers.tools.bench import summary_lines

            lines.append("bench: " + summary_lines(line))
        elif line is not None:
            lines.append("bench: " + json.dumps(line, sort_keys=True))
    if methods is not None:
        lines.append(f"methods on {methods['dataset']} ({methods['samples']['train']} training "
                     f"pairs, {methods['epochs']} epochs measured, estimate at "
                     f"{_estimate_epochs(methods)}):")
        for name, row in methods["methods"].items():
            lines.append(f"  {name:<16} {row['wall_s']:8.1f} s measured  "
                         f"~{row['estimate_s']:7.0f} s estimated")
    lines.append("notebooks:")
    for row in notebooks:
        secs = "-" if row.get("seconds") is None else f"{row['seconds']:.1f} s"
        lines.append(f"  {row['notebook']:<42} {secs:>9}  {row['status']}")
    return "\n".join(lines)


def _estimate_epochs(methods: dict[str, Any]) -> str:
    rows = list(methods["methods"].values())
    return f"{rows[0]['estimate_epochs']} epochs" if rows else "-"


def pytest_command(jobs: int) -> list[str]:
    """The unit-test command; spread over ``jobs`` processes when pytest-xdist is installed."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           "--ignore=tests/browser", "tests"]
    if jobs > 1 and importlib.util.find_spec("xdist") is not None:
        cmd[3:3] = ["-n", str(jobs), "--dist", "loadscope"]
    return cmd


# The comparison the README quotes: every method, three seeds, at AV-MNIST size.
COMPARE_SEEDS = (0, 1, 2)


def compare_command(quick: bool) -> tuple[list[str], int]:
    """``umm compare`` at AV-MNIST size, every method: all three seeds, or (``quick``) seed 0
    only; returns the command and the number of seeds it trains."""
    seeds = COMPARE_SEEDS[:1] if quick else COMPARE_SEEDS
    return ([sys.executable, "-m", "umm_helpers", "compare", "--dataset", "avmnist-shapes",
             "--methods", "all", "--seeds", ",".join(map(str, seeds))], len(seeds))


def compare_line(step: dict[str, Any]) -> str:
    """The report's line for the comparison: measured, or extrapolated and saying so (pure)."""
    seeds, wanted = step["seeds_measured"], len(COMPARE_SEEDS)
    head = f"compare   exit {step['exit']}  avmnist-shapes, all methods: "
    if seeds == wanted:
        return head + f"{step['seconds']:.1f} s for seeds 0,1,2 (measured)"
    return head + (f"{step['seconds']:.1f} s for seed 0; ~{step['seconds'] * wanted / seeds:.0f} s "
                   f"for {wanted} seeds (extrapolated from {seeds}, --quick)")


# Every part of the check, in order; ``--parts`` picks some (e.g. ``course,course-offset``).
PARTS = ("bench", "methods", "compare", "course", "course-offset", "unit")
OFFSET = 100  # the second course pass: fresh training randomness, same data


def parse_parts(text: str | None) -> tuple[str, ...]:
    """``--parts a,b`` as a tuple in the check's order; every part when ``text`` is empty."""
    if not text:
        return PARTS
    wanted = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in PARTS]
    if unknown or not wanted:
        raise ValueError(f"--parts {text!r}: unknown part(s) {unknown}; choose from "
                         f"{', '.join(PARTS)} (comma-separated), e.g. --parts "
                         "course,course-offset.")
    return tuple(p for p in PARTS if p in wanted)


def claims_lines(default: list[dict[str, Any]], offset: list[dict[str, Any]]) -> list[str]:
    """The report's claims section: outcome counts per seed offset, then every claim whose
    outcome changed between the two (pure)."""
    from umm_helpers.course.claim_log import changed_outcomes, counts_text

    lines = []
    for name, rows in (("seed offset 0", default), (f"seed offset {OFFSET}", offset)):
        lines.append(f"claims, {name}: {counts_text(rows)}")
    changed = changed_outcomes(default, offset)
    lines.append(f"claims whose outcome changed between the two: {len(changed)}")
    lines += [f"  {nb}: {text}: {a} -> {b}" for nb, text, a, b in changed]
    return lines


def course_env(runs: str, offset: int, log: str) -> dict[str, str]:
    return {"UMM_RUNS_DIR": runs, "UMM_PROGRESS": "0", "UMM_SEED_OFFSET": str(offset),
            "UMM_CLAIMS_LOG": log}


def run_gpu_check(jobs: int | None = None, method_epochs: int = 2, quick: bool = False,
                  parts: tuple[str, ...] = PARTS) -> int:
    """Run the ``parts`` in order; print each as it ends; keep ``build/gpu_check.json`` up to date.

    Order: the engine bench on AV-Digits, every method timed on ``avmnist-shapes`` (AV-MNIST
    sizes, ``method_epochs`` epochs per stage, extrapolated to 20), ``umm compare`` of every
    method over seeds 0,1,2 at that size (``quick``: seed 0, the others extrapolated), the course
    notebooks from an empty run cache (``build/gpu-check-runs``) with the default seeds and again
    with ``UMM_SEED_OFFSET=100`` (the report lists the claims whose outcome changed), then the
    unit tests (those marked ``cuda`` run here). Returns an exit code.
    """
    import torch

    from umm_helpers.course.claim_log import read_log
    from umm_helpers.data import load_dataset
    from umm_helpers.tools.bench import bench, method_times

    device = cuda_device()
    jobs = jobs or min(8, os.cpu_count() or 1)
    build = repo_root() / "build"
    state: dict[str, Any] = {"device": device, "torch": torch.__version__, "steps": {},
                             "bench": None, "bench_avmnist": None, "methods": None,
                             "notebooks": [], "claims": {}}

    def save() -> None:
        write_text(build / "gpu_check.json", json.dumps(state, indent=2))

    print(f"device: {device} (torch {torch.__version__})", flush=True)
    if "bench" in parts:
        state["bench"] = bench(load_dataset("av-digits"), verbose=True)
        save()
        # AV-MNIST size: epochs of seconds, so fewer rounds settle the medians
        state["bench_avmnist"] = bench(load_dataset("avmnist-shapes"), repeats=3, max_rounds=8,
                                       verbose=True)
        save()
    if "methods" in parts:
        state["methods"] = method_times(load_dataset("avmnist-shapes"), "all",
                                        epochs=method_epochs)
        save()
    runs = build / "gpu-check-runs"
    compare_runs = build / "gpu-check-compare-runs"
    for folder in (runs, compare_runs):
        shutil.rmtree(folder, ignore_errors=True)
    compare, seeds = compare_command(quick)
    course = [sys.executable, "-m", "umm_helpers", "course"]
    logs = {0: build / "claims-offset-0.jsonl", OFFSET: build / f"claims-offset-{OFFSET}.jsonl"}
    steps = [
        ("compare", compare, {"UMM_RUNS_DIR": str(compare_runs), "UMM_PROGRESS": "0"}),
        ("course", course, course_env(str(runs), 0, str(logs[0]))),
        ("course-offset", course, course_env(str(runs), OFFSET, str(logs[OFFSET]))),
        ("unit", pytest_command(jobs), None)]
    for name, cmd, env in steps:
        if name not in parts:
            continue
        code, seconds, last = _timed(cmd, env)
        state["steps"][name] = {"exit": code, "seconds": round(seconds, 1), "last_line": last}
        if name == "compare":
            state["steps"][name]["seeds_measured"] = seeds
        print(f"{name}: exit {code} in {seconds:.1f} s: {last}", flush=True)
        if name == "course":
            summary = build / "course_summary.json"
            state["notebooks"] = json.loads(summary.read_text()) if summary.exists() else []
        if name.startswith("course"):
            state["claims"] = {str(k): read_log(v) for k, v in logs.items()}
        save()
    text = report(device, state["steps"], state["bench"], state["notebooks"], state["methods"],
                  state["bench_avmnist"])
    if "course" in parts and "course-offset" in parts:
        text += "\n" + "\n".join(claims_lines(state["claims"]["0"], state["claims"][str(OFFSET)]))
    print(text)
    return max([s["exit"] for s in state["steps"].values()] or [0])
