"""Execute the course notebooks headless (``make course`` and ``make notebooks``).

``make course`` writes executed copies and HTML under ``build/`` and prints a one-screen summary;
``make notebooks`` refreshes the committed outputs in ``notebooks/`` in the mode CI tests.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from umm_helpers.atomic import write_text
from umm_helpers.settings import repo_root

CELL_TIMEOUT_S = 1800


def notebook_paths(only: str | None = None) -> list[Path]:
    """The course notebooks, in order (``NN_name.ipynb``)."""
    paths = sorted((repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [p for p in paths if only is None or only in p.name]


def execute(path: Path) -> tuple[Any, float]:
    """Run one notebook top to bottom in its folder; return (notebook, seconds)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("UMM_PROGRESS", "0")
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - start


def run_course(inplace: bool = False, only: str | None = None) -> int:
    """Execute every notebook; print a summary; return a process exit code."""
    import nbformat
    from nbconvert import HTMLExporter

    build = repo_root() / "build"
    rows: list[dict[str, Any]] = []
    status = 0
    for path in notebook_paths(only):
        print(f"running {path.name} ...", flush=True)
        try:
            nb, seconds = execute(path)
        except Exception as exc:  # report every notebook, then fail
            rows.append({"notebook": path.name, "seconds": None, "status": f"FAILED: {exc}"})
            print(f"  FAILED: {str(exc)[:2000]}", flush=True)
            status = 1
            continue
        text = nbformat.writes(nb) + "\n"
        if inplace:
            write_text(path, text)
        else:
            write_text(build / "notebooks" / path.name, text)
            html, _ = HTMLExporter().from_notebook_node(nb)
            write_text(build / "html" / path.with_suffix(".html").name, html)
        rows.append({"notebook": path.name, "seconds": round(seconds, 1), "status": "ok"})
        print(f"  ok in {seconds:.1f} s", flush=True)
    total = sum(float(r["seconds"] or 0) for r in rows)
    print("\n" + summary_table(rows, total, inplace))
    if not inplace:
        write_text(build / "course_summary.json", json.dumps(rows, indent=2))
    return status


def summary_table(rows: list[dict[str, Any]], total: float, inplace: bool) -> str:
    """The one-screen summary printed at the end of ``make course``."""
    width = max([len(str(r["notebook"])) for r in rows] + [8])
    lines = [f"{'notebook':<{width}}  {'wall s':>7}  status", "-" * (width + 20)]
    for r in rows:
        secs = "-" if r["seconds"] is None else f"{r['seconds']:.1f}"
        lines.append(f"{r['notebook']!s:<{width}}  {secs:>7}  {str(r['status'])[:60]}")
    lines.append("-" * (width + 20))
    lines.append(f"{'total':<{width}}  {total:>7.1f}  ({total / 60:.1f} min)")
    where = "notebooks/ (outputs refreshed in place)" if inplace else \
        "build/notebooks (executed copies) and build/html (HTML)"
    lines.append(f"results: {where}")
    return "\n".join(lines)
