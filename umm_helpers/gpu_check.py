"""``make gpu-check``: the whole project on a CUDA machine, with one compact report.

Runs the unit tests, every course notebook (into ``build/``) and ``umm bench`` on the GPU, then
prints the device, the bench JSON line and per-notebook wall times. Notebook 07 explains when
to run it. Refuses to run without CUDA, because the point is to measure the GPU path.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from umm_helpers.atomic import write_text
from umm_helpers.config import repo_root


def cuda_device() -> str:
    """The CUDA device's name, or raise with what to do instead."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("make gpu-check needs a CUDA GPU, and torch.cuda.is_available() is "
                           "False here. On a CPU machine run `make test` and `make course`; on a "
                           "GPU machine check that the installed torch build matches the driver "
                           "(python -c 'import torch; print(torch.version.cuda)').")
    return torch.cuda.get_device_name(0)


def _timed(cmd: list[str]) -> tuple[int, float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=repo_root(), capture_output=True, text=True)
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
    return proc.returncode, time.perf_counter() - start, tail[0]


def report(device: str, steps: dict[str, dict[str, Any]], bench_line: dict[str, Any],
           notebooks: list[dict[str, Any]]) -> str:
    """The compact, printable report (pure; tested without a GPU)."""
    lines = [f"device: {device}"]
    for name, s in steps.items():
        lines.append(f"{name:<10} exit {s['exit']}  {s['seconds']:7.1f} s  {s['last_line']}")
    lines.append("bench: " + json.dumps(bench_line, sort_keys=True))
    lines.append("notebooks:")
    for row in notebooks:
        secs = "-" if row.get("seconds") is None else f"{row['seconds']:.1f} s"
        lines.append(f"  {row['notebook']:<42} {secs:>9}  {row['status']}")
    return "\n".join(lines)


def run_gpu_check() -> int:
    """Run everything; print and save ``build/gpu_check.json``; return an exit code."""
    device = cuda_device()
    py = sys.executable
    steps: dict[str, dict[str, Any]] = {}
    for name, cmd in [("unit", [py, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                "--ignore=tests/browser", "tests"]),
                      ("course", [py, "-m", "umm_helpers", "course"])]:
        code, seconds, last = _timed(cmd)
        steps[name] = {"exit": code, "seconds": round(seconds, 1), "last_line": last}
    from umm_helpers.bench import bench
    from umm_helpers.data import load_dataset

    bench_line = bench(load_dataset("av-digits"), verbose=False)
    summary = repo_root() / "build" / "course_summary.json"
    notebooks = json.loads(summary.read_text()) if summary.exists() else []
    text = report(device, steps, bench_line, notebooks)
    print(text)
    write_text(Path(repo_root() / "build" / "gpu_check.json"), json.dumps(
        {"device": device, "steps": steps, "bench": bench_line, "notebooks": notebooks},
        indent=2))
    return max(s["exit"] for s in steps.values())
