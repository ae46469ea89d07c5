"""The run cache, result files and method comparisons (notebooks 03-06 and the ``umm`` CLI).

A trained run lives in ``runs_dir()/cache/<dataset>/<method>/<key>/`` as ``model.safetensors``
plus ``result.json`` (written last, atomically: a run without it does not exist). The key hashes
the data checksum, the method, the config fields that shape training, the encoder identity and
the package version, so notebooks reuse what an earlier notebook trained and never read stale
results.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import re
import shutil
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from torch import nn

from umm_helpers import distributed
from umm_helpers.atomic import write_text as atomic_write_text
from umm_helpers.checkpoint import CheckpointError, load_tensors, save_tensors
from umm_helpers.config import runs_dir

WEIGHTS = "model.safetensors"
RESULT = "result.json"
# Config fields that never change what a single-process run learns, left out of the cache key.
KEY_FREE_FIELDS = ("device", "stream", "num_workers", "checkpoint_every", "sync_batchnorm")


def package_version() -> str:
    from umm_helpers import __version__

    return __version__


def _code_digest(code: types.CodeType) -> str:
    """Digest of a code object: bytecode, constants (nested code included) and names."""
    h = hashlib.sha256(code.co_code)
    for const in code.co_consts:
        h.update(_code_digest(const).encode() if isinstance(const, types.CodeType)
                 else repr(const).encode())
    h.update(repr(code.co_names).encode())
    return h.hexdigest()[:12]


def _stable_repr(value: Any) -> str:
    """``repr`` without memory addresses (an address makes the key unique, never stale)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value)) if not callable(value) \
        else encoder_identity(value)


def _function_digest(func: types.FunctionType) -> str:
    """What a plain function or lambda computes: its code, defaults and captured values."""
    parts = [_code_digest(func.__code__), repr(func.__defaults__)]
    for cell in func.__closure__ or ():
        try:
            parts.append(_stable_repr(cell.cell_contents))
        except ValueError:  # an empty cell
            parts.append("<empty>")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def encoder_identity(factory: Callable[[], nn.Module] | nn.Module) -> str:
    """A stable name for an encoder factory, part of the run-cache key.

    Package classes are named by their qualified name (the package version is in the key too);
    functions, lambdas and classes defined elsewhere (a notebook, a script) also carry a digest
    of their code and captured values, so two different lambdas never share a cached run.
    """
    if isinstance(factory, nn.Module):
        digest = hashlib.sha256()
        for k, v in sorted(factory.state_dict().items()):
            digest.update(k.encode())
            digest.update(v.detach().cpu().contiguous().numpy().tobytes())
        extra = getattr(factory, "cache_identity", None)  # e.g. a frozen model's files + options
        if extra is not None:
            digest.update(str(extra).encode())
        return f"{type(factory).__module__}.{type(factory).__qualname__}@{digest.hexdigest()[:12]}"
    if isinstance(factory, functools.partial):
        args = ", ".join([_stable_repr(a) for a in factory.args]
                         + [f"{k}={_stable_repr(v)}" for k, v in sorted(factory.keywords.items())])
        return f"{encoder_identity(factory.func)}({args})"
    module = getattr(factory, "__module__", "?") or "?"
    name = getattr(factory, "__qualname__", type(factory).__qualname__)
    packaged = module.startswith("umm_helpers")
    if isinstance(factory, types.FunctionType) and not (packaged and factory.__closure__ is None
                                                       and "<lambda>" not in name):
        return f"{module}.{name}#{_function_digest(factory)}"
    if isinstance(factory, type) and not packaged:
        funcs = sorted((k, v) for k, v in vars(factory).items()
                       if isinstance(v, types.FunctionType))
        digest = hashlib.sha256("|".join(f"{k}:{_function_digest(v)}" for k, v in funcs)
                                .encode()).hexdigest()[:12]
        return f"{module}.{name}#{digest}"
    return f"{module}.{name}"


def run_key(checksum: str, method: str, config: Mapping[str, Any],
            encoders: Mapping[str, str]) -> str:
    """Hash of everything that determines a run (16 hex digits).

    Under ``torchrun`` the number of processes and ``sync_batchnorm`` are part of the key
    (BatchNorm sees per-process shards unless synced, so a data-parallel run is not the
    single-process run; notebook 07); in one process ``sync_batchnorm`` changes nothing.
    """
    payload: dict[str, Any] = {
        "checksum": checksum, "method": method, "version": package_version(),
        "config": {k: v for k, v in sorted(config.items()) if k not in KEY_FREE_FIELDS},
        "encoders": dict(sorted(encoders.items()))}
    if distributed.world_size() > 1:  # only then do these change what a run learns
        payload["world_size"] = distributed.world_size()
        payload["sync_batchnorm"] = bool(config.get("sync_batchnorm", False))
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def safe_name(method: str) -> str:
    """A method name usable as a folder name (``unimodal:image`` -> ``unimodal_image``)."""
    return method.replace(":", "_")


def cache_dir(dataset_name: str, method: str, key: str) -> Path:
    return runs_dir() / "cache" / dataset_name / safe_name(method) / key


def save_run(directory: Path, model: nn.Module, result: Mapping[str, Any]) -> Path:
    """Write weights, then ``result.json`` (the commit marker), both atomically.

    Under ``torchrun`` every rank calls it: rank 0 writes, the others wait at a barrier, so
    afterwards every rank sees the cached run (notebook 07).
    """
    if distributed.is_main():
        directory.mkdir(parents=True, exist_ok=True)
        save_tensors(directory / WEIGHTS, model.state_dict(), {"method": result.get("method")})
        atomic_write_text(directory / RESULT, json.dumps(result, indent=1, sort_keys=True))
    distributed.barrier()
    return directory


def load_result(directory: Path) -> dict[str, Any] | None:
    """The cached result, or None when the run is not (completely) there."""
    path = directory / RESULT
    if not path.exists() or not (directory / WEIGHTS).exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"cached result {path} is corrupt ({exc}); delete its folder "
                              "to retrain.") from exc


def load_weights(directory: Path, model: nn.Module) -> nn.Module:
    """Load cached weights into a model of the same architecture."""
    path = directory / WEIGHTS
    tensors, _ = load_tensors(path)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"cached weights {path} do not fit this model ({exc}); delete "
                              "its folder to retrain.") from exc
    return model


def clear_checkpoints(directory: Path) -> None:
    """Remove the stage checkpoints of a finished run (rank 0 only under ``torchrun``)."""
    if not distributed.is_main():
        return
    for sub in directory.glob("ckpt-*"):
        shutil.rmtree(sub, ignore_errors=True)


# --- CLI helpers --------------------------------------------------------------------------------

def result_path(dataset_name: str, method: str, seed: int, out: str | Path | None = None
                ) -> Path:
    """``<out or runs_dir()>/<dataset>/<method>/seed<k>/result.json``."""
    base = Path(out) if out is not None else runs_dir()
    return base / dataset_name / safe_name(method) / f"seed{seed}" / RESULT


def _config_from_args(args: Any, seed: int) -> Any:
    from umm_helpers.train import TrainConfig

    config = TrainConfig(seed=int(seed),
                         sync_batchnorm=bool(getattr(args, "sync_batchnorm", False)))
    epochs = getattr(args, "epochs", None)
    return config.replace(epochs=int(epochs)) if epochs else config


def run_cli(args: Any) -> int:
    """``umm run``: train (or reuse) one method and write its ``result.json``.

    Under ``torchrun`` it trains data-parallel on every process (notebook 07)::

        torchrun --nproc_per_node=2 -m umm_helpers run --dataset av-digits --method joint --seed 0

    Rank 0 writes the files and prints; the other ranks wait at a barrier.
    """
    from umm_helpers.data import load_dataset
    from umm_helpers.methods import run_method

    with distributed.session():
        dataset = load_dataset(args.dataset)
        run = run_method(args.method, dataset, config=_config_from_args(args, args.seed))
        path = result_path(dataset.name, args.method, args.seed, getattr(args, "out", None))
        if distributed.is_main():
            atomic_write_text(path, json.dumps(run.result, indent=1, sort_keys=True))
            scores = ", ".join(f"{k} {v:.3f}" for k, v in run.result["scores"].items())
            print(f"{args.method} seed {args.seed}: {scores} -> {path}")
        distributed.barrier()
    return 0


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
    if isinstance(seeds, str):
        try:
            return [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise ValueError(f"seeds must be a comma list of integers such as '0,1,2', got "
                             f"{seeds!r}.") from None
    return [int(s) for s in seeds]


def parse_methods(methods: str | Sequence[str], modalities: Sequence[str]) -> list[str]:
    from umm_helpers.methods import all_methods

    if isinstance(methods, str):
        if methods.strip() == "all":
            return all_methods(modalities)
        return [m.strip() for m in methods.split(",") if m.strip()]
    return list(methods)


def compare(dataset_name: str, methods: str | Sequence[str] = "all",
            seeds: str | Sequence[int] = (0, 1, 2), epochs: int | None = None,
            out: str | Path | None = None, dataset: Any = None, config: Any = None
            ) -> CompareTable:
    """Train (or reuse) every method for every seed; write ``compare.csv`` and ``compare.md``.

    Files go to ``<out or runs_dir()/<dataset>>/``. Notebook 06 prints the Markdown table.
    """
    from umm_helpers.data import load_dataset
    from umm_helpers.methods import run_method
    from umm_helpers.train import TrainConfig

    data = dataset if dataset is not None else load_dataset(dataset_name)
    base = config if config is not None else TrainConfig()
    if epochs:
        base = base.replace(epochs=int(epochs))
    seed_list = parse_seeds(seeds)
    results: dict[str, list[dict[str, Any]]] = {}
    for method in parse_methods(methods, data.modalities):
        results[method] = [run_method(method, data, config=base.replace(seed=s)).result
                           for s in seed_list]
    table = summarize(results)
    folder = Path(out) if out is not None else runs_dir() / data.name
    csv_path, md_path = folder / "compare.csv", folder / "compare.md"
    if distributed.is_main():
        atomic_write_text(csv_path, table.to_csv())
        atomic_write_text(md_path, table.to_markdown())
    distributed.barrier()
    table.csv_path, table.markdown_path = csv_path, md_path
    return table


def compare_cli(args: Any) -> int:
    """``umm compare``: print the Markdown table and where the files went.

    Under ``torchrun`` every method trains data-parallel; rank 0 writes and prints.
    """
    with distributed.session():
        config = _config_from_args(args, 0)
        table = compare(args.dataset, getattr(args, "methods", "all"),
                        getattr(args, "seeds", "0"), None, getattr(args, "out", None),
                        config=config)
        if distributed.is_main():
            print(table.to_markdown(), end="")
            print(f"written: {table.csv_path} {table.markdown_path}")
        distributed.barrier()
    return 0
