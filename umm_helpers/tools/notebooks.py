"""Execute the course notebooks headless (``make course`` and ``make notebooks``).

``make course`` writes executed copies and HTML under ``build/`` and prints a one-screen summary;
``make notebooks`` refreshes the committed outputs in ``notebooks/`` in the mode CI tests.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from umm_helpers.atomic import write_text
from umm_helpers.course.claim_log import counts_text, read_log
from umm_helpers.settings import repo_root, seed_offset

CELL_TIMEOUT_S = 1800


def notebook_paths(only: str | None = None) -> list[Path]:
    """The course notebooks, in order (``NN_name.ipynb``)."""
    paths = sorted((repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [p for p in paths if only is None or only in p.name]


def kernel_config(socket_dir: str | None) -> Any:
    """Kernel-manager settings: with ``socket_dir``, IPC transport (Unix sockets in that private
    folder) instead of TCP, so the kernel's messages never cross a network socket and the kernel
    prints no warning about unencrypted TCP."""
    from traitlets.config import Config

    config = Config()
    if socket_dir is not None:
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = os.path.join(socket_dir, "kernel")
    return config


def execute(path: Path) -> tuple[Any, float]:
    """Run one notebook top to bottom in its folder; return (notebook, seconds).

    The kernel talks over IPC sockets in a private temporary folder (TCP on Windows, which has
    no Unix sockets).
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("UMM_PROGRESS", "0")
    with tempfile.TemporaryDirectory(prefix="umm-kernel-") as sockets:
        client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                config=kernel_config(sockets if os.name == "posix" else None),
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    return nb, seconds


def run_notebooks(paths: list[Path], inplace: bool, build: Path) -> list[dict[str, Any]]:
    """Execute notebooks one after the other; save each; one summary row per notebook.

    Each kernel inherits ``UMM_NOTEBOOK`` (the notebook's name), so the claims it reports are
    logged under it (:mod:`umm_helpers.course.claims`).
    """
    rows: list[dict[str, Any]] = []
    for path in paths:
        print(f"running {path.name} ...", flush=True)
        os.environ["UMM_NOTEBOOK"] = path.name
        try:
            nb, seconds = execute(path)
        except Exception as exc:  # report every notebook, then fail
            reason = failure_reason(exc)
            rows.append({"notebook": path.name, "seconds": None, "status": f"FAILED: {reason}"})
            print(f"  {path.name} FAILED: {shorten(reason)}", flush=True)
            continue
        save(nb, path, inplace, build)
        rows.append({"notebook": path.name, "seconds": round(seconds, 1), "status": "ok"})
        print(f"  {path.name} ok in {seconds:.1f} s", flush=True)
    return rows


def save(nb: Any, path: Path, inplace: bool, build: Path) -> None:
    """The executed notebook in place, or an executed copy and its HTML under ``build``."""
    import nbformat
    from nbconvert import HTMLExporter

    text = nbformat.writes(nb) + "\n"
    if inplace:
        write_text(path, text)
    else:
        write_text(build / "notebooks" / path.name, text)
        html, _ = HTMLExporter().from_notebook_node(nb)
        write_text(build / "html" / path.with_suffix(".html").name, html)


def run_course(inplace: bool = False, only: str | None = None, build: Path | None = None) -> int:
    """Execute every notebook in order; print a summary; return a process exit code.

    In order, one at a time: later notebooks reuse the runs of earlier ones, and on a 2-core CPU
    two notebooks side by side were several times slower than one after the other (their
    thread pools compete for the cores). ``build``: where executed copies, HTML, the summary and
    the claims log go (default ``<repo>/build``).
    """
    build = build or repo_root() / "build"
    paths = notebook_paths(only)
    if not paths:  # checked before anything runs or is written
        names = [p.name for p in notebook_paths()]
        raise ValueError(f"--only {only!r} matches no notebook; the course notebooks are "
                         f"{names}. Pass part of one of these names, e.g. --only 00_.")
    offset = seed_offset()  # an invalid UMM_SEED_OFFSET stops here, before any kernel starts
    log = claims_log(build)
    start = time.perf_counter()
    rows = run_notebooks(paths, inplace, build)
    print("\n" + summary_table(rows, time.perf_counter() - start, inplace, build))
    logged = read_log(log)
    print(f"seed offset {offset}; claims: {counts_text(logged)} (each with its interval, in "
          f"{log})")
    if not inplace:
        write_text(build / "course_summary.json", json.dumps(rows, indent=2))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def claims_log(build: Path) -> Path:
    """The file the notebooks' claims go to: ``$UMM_CLAIMS_LOG``, else ``build/claims.jsonl``;
    emptied now, so it holds this run's claims only."""
    log = Path(os.environ.get("UMM_CLAIMS_LOG") or build / "claims.jsonl").resolve()
    log.parent.mkdir(parents=True, exist_ok=True)
    write_text(log, "")
    os.environ["UMM_CLAIMS_LOG"] = str(log)
    return log


def failure_reason(exc: BaseException) -> str:
    """Name the exception even when its message is empty (a dead kernel raises one with no text),
    so a failed notebook never reports a blank reason."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # no terminal colour codes
    return f"{type(exc).__name__}: {text}" if text else f"{type(exc).__name__} (no message)"


def shorten(text: str, head: int = 800, tail: int = 1500) -> str:
    """The start (which cell failed) and the end (the exception itself) of a long report."""
    if len(text) <= head + tail:
        return text
    return f"{text[:head]}\n  [... {len(text) - head - tail} characters ...]\n{text[-tail:]}"


def summary_table(rows: list[dict[str, Any]], total: float, inplace: bool,
                  build: Path | None = None) -> str:
    """The one-screen summary printed at the end of ``make course``."""
    width = max([len(str(r["notebook"])) for r in rows] + [8])
    lines = [f"{'notebook':<{width}}  {'wall s':>7}  status", "-" * (width + 20)]
    for r in rows:
        secs = "-" if r["seconds"] is None else f"{r['seconds']:.1f}"
        lines.append(f"{r['notebook']!s:<{width}}  {secs:>7}  {str(r['status'])[:60]}")
    lines.append("-" * (width + 20))
    lines.append(f"{'total':<{width}}  {total:>7.1f}  ({total / 60:.1f} min wall time)")
    out = "build" if build is None else str(build)
    where = "notebooks/ (outputs refreshed in place)" if inplace else \
        f"{out}/notebooks (executed copies) and {out}/html (HTML)"
    lines.append(f"results: {where}")
    return "\n".join(lines)
