"""Comparison tables: every method over seeds, mean and spread (notebook 06, ``umm compare``)."""
from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from umm_helpers.atomic import check_writable
from umm_helpers.atomic import write_text as atomic_write_text
from umm_helpers.data import MultiModalDataset, load_dataset, loader_path
from umm_helpers.engine import distributed
from umm_helpers.engine.config import TrainConfig
from umm_helpers.methods.parallel import check_jobs, run_seeds
from umm_helpers.methods.registry import all_methods, get_method
from umm_helpers.settings import name_folder, runs_dir


@dataclass
class CompareTable:
    """Mean and standard deviation over seeds, one row per method."""

    columns: list[str]
    rows: list[dict[str, Any]]
    csv_path: Path | None = None
    markdown_path: Path | None = None

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        header = ["method", "seeds"]
        for c in self.columns:
            header += [f"{c}_mean", f"{c}_std"]
        writer.writerow(header)
        for row in self.rows:
            line = [row["method"], row["seeds"]]
            for c in self.columns:
                line += [f"{row[c][0]:.4f}", f"{row[c][1]:.4f}"]
            writer.writerow(line)
        return buf.getvalue()

    def to_markdown(self) -> str:
        lines = ["| method | " + " | ".join(self.columns) + " |",
                 "|---|" + "---|" * len(self.columns)]
        for row in self.rows:
            cells = [f"{row[c][0]:.3f} ± {row[c][1]:.3f}" for c in self.columns]
            lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def summarize(results: Mapping[str, Sequence[Mapping[str, Any]]]) -> CompareTable:
    """Rows of mean ± std (full, each ``miss:<m>``, AURC of the ``any`` sweep) per method."""
    columns: list[str] = []
    rows = []
    for method, runs in results.items():
        cols = list(runs[0]["scores"]) + ["aurc:any"]
        columns = columns or cols
        row: dict[str, Any] = {"method": method, "seeds": len(runs)}
        for c in columns:
            vals = np.array([r["aurc"]["any"] if c == "aurc:any" else r["scores"][c]
                             for r in runs], dtype=float)
            row[c] = (float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0)
        rows.append(row)
    return CompareTable(columns, rows)


def parse_seeds(seeds: str | Sequence[int]) -> list[int]:
    """``"0,1,2"`` or a list of integers -> a non-empty list of seeds."""
    try:
        out = ([int(s) for s in seeds.split(",") if s.strip()] if isinstance(seeds, str)
               else [int(s) for s in seeds])
    except (TypeError, ValueError):
        out = []
    if not out:
        raise ValueError(f"seeds must be a comma list of integers such as '0,1,2', got "
                         f"{seeds!r}.")
    return out


def parse_methods(methods: str | Sequence[str], modalities: Sequence[str]) -> list[str]:
    """``"all"``, a comma list, or a list of method names, each checked against the registry."""
    if isinstance(methods, str):
        names = (all_methods(modalities) if methods.strip() == "all"
                 else [m.strip() for m in methods.split(",") if m.strip()])
    else:
        names = list(methods)
    if not names:
        raise ValueError(f"methods must be 'all' or a comma list such as 'ume,ume-mma', got "
                         f"{methods!r}.")
    for name in names:
        get_method(name, modalities)  # an unknown name fails before anything trains
    return names


def compare(dataset_name: str, methods: str | Sequence[str] = "all",
            seeds: str | Sequence[int] = (0, 1, 2), epochs: int | None = None,
            out: str | Path | None = None, dataset: MultiModalDataset | None = None,
            config: TrainConfig | None = None, jobs: int | None = None) -> CompareTable:
    """Train (or reuse) every method for every seed; write ``compare.csv`` and ``compare.md``.

    Files go to ``<out or runs_dir()/<dataset>>/`` (the data set name mapped to one folder by
    :func:`umm_helpers.settings.folder_name`). Notebook 06 prints the Markdown table. Seeds,
    method names, the config, ``jobs`` and the output folder are checked before anything
    trains. ``jobs`` runs train at once in worker processes (default: 1 on a CPU, several per
    GPU; :mod:`umm_helpers.methods.parallel`), each bit-identical to the run trained alone.
    """
    seed_list = parse_seeds(seeds)
    jobs = check_jobs(jobs)
    data = dataset if dataset is not None else load_dataset(dataset_name)
    base = config if config is not None else TrainConfig()
    if epochs is not None:
        base = base.replace(epochs=epochs)
    base.validate()
    names = parse_methods(methods, data.modalities)
    folder = (Path(out) if out is not None
              else name_folder(runs_dir(), data.name, what="data set name"))
    if distributed.is_main():
        check_writable(folder, "the compare output folder",
                       "pass out='/a/writable/folder' (umm compare --out DIR) or point "
                       "UMM_RUNS_DIR at a writable folder.")
    runs = run_seeds(names, data, seed_list, base, jobs=jobs,
                     loader=None if dataset is not None else loader_path(dataset_name))
    table = summarize({m: [r.result for r in rs] for m, rs in runs.items()})
    csv_path, md_path = folder / "compare.csv", folder / "compare.md"
    if distributed.is_main():
        atomic_write_text(csv_path, table.to_csv())
        atomic_write_text(md_path, table.to_markdown())
    distributed.barrier()
    table.csv_path, table.markdown_path = csv_path, md_path
    return table
