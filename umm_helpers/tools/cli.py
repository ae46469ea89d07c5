"""The ``umm`` command (also ``python -m umm_helpers``).

  umm data build av-digits [--out DIR]     rebuild the embedded data set (needs espeak-ng)
  umm data build avmnist --root DIR [--download] [--noise]   build AV-MNIST (MultiBench format)
  umm data build avmnist-smil --root DIR [--download]        build the SMIL variant
  umm data verify av-digits                check data files against data/SHA256SUMS
  umm data verify avmnist --root DIR       check every AV-MNIST file (shape, dtype, labels, counts)
  umm data info av-digits                  print sizes and shapes
  umm data verify|info food101|mmimdb --root DIR   check / load a vision-language data set
  umm run --dataset D --method M --seed K  train one method, write runs/D/M/seedK/result.json
  torchrun --nproc_per_node=2 -m umm_helpers run|compare ... [--sync-batchnorm]
                                           the same, data-parallel (notebook 07)
  umm compare --dataset D --methods all --seeds 0,1,2 [--jobs N]
                                           every method over seeds; N runs at once
  umm bench --dataset D [--widgets]
  umm bench --dataset avmnist-shapes --methods all   wall time per method at AV-MNIST size
  umm course [--inplace]                   execute every notebook (used by make course/notebooks)
  umm lab [--port N] [--dry-run]           JupyterLab on the course, opened on the first notebook
  umm gpu-check                            on a CUDA machine: tests, notebooks, bench, one report
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

VISION_LANGUAGE = ("food101", "mmimdb")
EMBEDDED = ("av-digits", "digit-halves")
DATA_NAMES = (*EMBEDDED, "avmnist", "avmnist-smil", *VISION_LANGUAGE)


def _data(args: argparse.Namespace) -> int:
    """``umm data build|verify|info NAME``: ``info`` loads any of them and prints its summary."""
    from umm_helpers.data import load_dataset

    if args.name not in DATA_NAMES or (args.action == "build" and args.name in VISION_LANGUAGE):
        raise SystemExit(f"umm data: only 'av-digits', 'digit-halves', 'avmnist' and "
                         f"'avmnist-smil' are built by "
                         f"this command ('food101' and 'mmimdb' can be verified and shown: "
                         f"umm data verify|info NAME --root DIR), got {args.action} {args.name!r}.")
    root = args.root or args.out
    if args.action == "info":
        print(json.dumps(load_dataset(args.name, root=root).summary(), indent=2))
        return 0
    if args.name in VISION_LANGUAGE:
        return _verify_vision_language(args.name, root)
    if args.name not in EMBEDDED:
        return _data_avmnist(args, root)
    from importlib import import_module

    module = import_module(f"umm_helpers.data.{args.name.replace('-', '_')}")
    if args.action == "build":
        for path in module.build(args.out):
            print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
        return 0
    from umm_helpers.data.checksums import verify
    from umm_helpers.settings import data_dir

    verify(Path(root) if root else data_dir(), module.FILES, module.REBUILD)
    print("all data files match SHA256SUMS")
    return 0


def _data_avmnist(args: argparse.Namespace, root: str | None) -> int:
    """``umm data build|verify avmnist|avmnist-smil --root DIR [--source DIR]``."""
    from umm_helpers.data import avmnist, avmnist_build

    if args.action == "build":
        if args.name == "avmnist":
            cfg = avmnist_build.BuildConfig(noise=args.noise)
            paths = avmnist_build.build(root, args.source, cfg, download=args.download)
        else:
            paths = avmnist_build.build_smil(root, args.source, download=args.download)
        for path in paths:
            print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
        return 0
    rows = avmnist.check_files(root, args.name)
    sums = avmnist.resolve_root(root, args.name) / "SHA256SUMS"
    if sums.exists():
        from umm_helpers.data.checksums import verify

        files = avmnist.MULTIBENCH_FILES if args.name == "avmnist" else avmnist.SMIL_FILES
        verify(sums.parent, files, f"umm data build {args.name} --root DIR")
    print(f"{args.name}: every file has the expected shape, dtype and labels "
          f"(rows: {rows}){'; all match SHA256SUMS' if sums.exists() else ''}")
    return 0


def _verify_vision_language(name: str, root: str | None) -> int:
    """``umm data verify food101|mmimdb --root DIR``: every row's text and image file."""
    from importlib import import_module

    read = getattr(import_module(f"umm_helpers.data.{name}"), f"read_{name}")
    sizes = {split: len(table) for split, table in read(root).items()}
    print(f"{name}: every row's text is read and its image file is present; rows "
          f"per split: {sizes} (`umm data info` also decodes every image)")
    return 0


def result_path(dataset_name: str, method: str, seed: int, out: str | Path | None = None
                ) -> Path:
    """``<out or runs_dir()>/<dataset>/<method>/seed<k>/result.json``."""
    from umm_helpers.methods.cache import RESULT
    from umm_helpers.settings import folder_name, name_folder, runs_dir

    base = Path(out) if out is not None else runs_dir()
    return (name_folder(base, dataset_name, what="data set name")
            / folder_name(method, "method name") / f"seed{int(seed)}" / RESULT)


def _config(args: argparse.Namespace, seed: int) -> Any:
    from umm_helpers.engine.config import TrainConfig

    config = TrainConfig(seed=seed, sync_batchnorm=bool(getattr(args, "sync_batchnorm", False)))
    return config if args.epochs is None else config.replace(epochs=args.epochs)


def _run(args: argparse.Namespace) -> int:
    """``umm run``: train (or reuse) one method and write its ``result.json``.

    Under ``torchrun`` it trains data-parallel on every process (notebook 07)::

        torchrun --nproc_per_node=2 -m umm_helpers run --dataset av-digits --method joint --seed 0

    Rank 0 writes the files and prints; the other ranks wait at a barrier.
    """
    from umm_helpers.atomic import check_writable, write_text
    from umm_helpers.data import load_dataset
    from umm_helpers.engine import distributed
    from umm_helpers.methods.run import run_method
    from umm_helpers.settings import runs_dir

    config = _config(args, args.seed).validate()  # a bad value fails before the data loads
    # and so does an output folder that cannot be written (each rank probes it: harmless)
    check_writable(Path(args.out) if args.out else runs_dir(), "the output folder",
                   "pass --out DIR with a writable folder or set UMM_RUNS_DIR.")
    with distributed.session():
        dataset = load_dataset(args.dataset)
        run = run_method(args.method, dataset, config=config)
        path = result_path(dataset.name, args.method, args.seed, args.out)
        if distributed.is_main():
            write_text(path, json.dumps(run.result, indent=1, sort_keys=True))
            scores = ", ".join(f"{k} {v:.3f}" for k, v in run.result["scores"].items())
            print(f"{args.method} seed {args.seed}: {scores} -> {path}")
        distributed.barrier()
    return 0


def _compare(args: argparse.Namespace) -> int:
    """``umm compare``: print the Markdown table and where the files went.

    Under ``torchrun`` every method trains data-parallel; rank 0 writes and prints.
    """
    from umm_helpers.engine import distributed
    from umm_helpers.methods.compare import compare, parse_seeds

    seeds = parse_seeds(args.seeds)
    config = _config(args, seeds[0]).validate()
    with distributed.session():
        table = compare(args.dataset, args.methods, seeds, None, args.out, config=config,
                        jobs=args.jobs)
        if distributed.is_main():
            print(table.to_markdown(), end="")
            print(f"written: {table.csv_path} {table.markdown_path}")
        distributed.barrier()
    return 0


def _bench(args: argparse.Namespace) -> int:
    from umm_helpers.tools import bench

    return bench.bench_cli(args) or 0


def _course(args: argparse.Namespace) -> int:
    from umm_helpers.tools import notebooks

    build = None if args.build is None else Path(args.build).expanduser().resolve()
    return notebooks.run_course(inplace=args.inplace, only=args.only, build=build)


def lab_command(port: int, token: str, first: str = "00_setup_and_data.ipynb"
                ) -> tuple[list[str], str]:
    """The JupyterLab command line for the course and the URL that opens the first notebook."""
    import os

    from umm_helpers.settings import repo_root

    exe = str(Path(sys.executable).parent / "jupyter-lab")
    cmd = [exe, f"--ServerApp.root_dir={repo_root() / 'notebooks'}", "--ip=127.0.0.1",
           f"--port={port}", f"--IdentityProvider.token={token}", "--no-browser"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd, f"http://127.0.0.1:{port}/lab/tree/{first}?token={token}"


def _lab(args: argparse.Namespace) -> int:
    import secrets
    import subprocess

    cmd, url = lab_command(args.port, secrets.token_hex(16))
    print(f"The course opens at:\n\n    {url}\n\n(Ctrl-C twice stops JupyterLab.)", flush=True)
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    if not args.no_browser:
        import threading
        import webbrowser

        threading.Timer(3.0, webbrowser.open, args=(url,)).start()
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0


def _gpu_check(args: argparse.Namespace) -> int:
    from umm_helpers.tools import gpu_check

    parts = gpu_check.parse_parts(args.parts)  # refused before any work
    return gpu_check.run_gpu_check(jobs=args.jobs, method_epochs=args.method_epochs,
                                   quick=args.quick, parts=parts)


def _training_arguments(p: argparse.ArgumentParser, func: Any) -> None:
    """The options ``umm run`` and ``umm compare`` share."""
    p.add_argument("--dataset", default="av-digits")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--sync-batchnorm", action="store_true",
                   help="under torchrun: BatchNorm statistics over the global batch")
    p.add_argument("--out", default=None, help="runs folder (default: runs/)")
    p.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="umm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="build, verify or describe a data set")
    p.add_argument("action", choices=["build", "verify", "info"])
    p.add_argument("name", help="data set name, e.g. av-digits")
    p.add_argument("--out", default=None, help="data folder (default: the repo's data/)")
    p.add_argument("--root", default=None,
                   help="avmnist, avmnist-smil, food101, mmimdb: the data set folder "
                        "(default: $UMM_DATA_ROOT)")
    p.add_argument("--source", default=None,
                   help="avmnist build: folder of MNIST / FSDD / ESC-50 (default: ROOT/sources)")
    p.add_argument("--download", action="store_true",
                   help="avmnist build: download missing sources (needs internet)")
    p.add_argument("--noise", action="store_true",
                   help="avmnist build: mix ESC-50 noise into the audio")
    p.set_defaults(func=_data)

    from umm_helpers.methods.registry import METHODS

    names = ", ".join(["unimodal:<m>"] + [n for n in METHODS if n != "unimodal"])
    p = sub.add_parser("run", help="train one method on one seed and write result.json")
    p.add_argument("--method", required=True, help=f"one of {names}")
    p.add_argument("--seed", type=int, default=0)
    _training_arguments(p, _run)

    p = sub.add_parser("compare", help="mean ± std table of methods over seeds")
    p.add_argument("--methods", default="all", help=f"all, or a comma list of {names}")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs trained at once in worker processes (default: 1 on a CPU, "
                        "4 per GPU); each run equals the run trained alone")
    _training_arguments(p, _compare)

    p = sub.add_parser("bench", help="engine speed (or widget latency with --widgets)")
    p.add_argument("--dataset", default="av-digits")
    p.add_argument("--widgets", action="store_true")
    p.add_argument("--methods", default=None,
                   help="time these methods (e.g. all) instead of the engine benchmark")
    p.add_argument("--epochs", type=int, default=2, help="with --methods: epochs per stage")
    p.add_argument("--estimate-epochs", type=int, default=20,
                   help="with --methods: extrapolate wall times to this many epochs")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--scale", type=float, default=None,
                   help="with --dataset avmnist-shapes: fraction of AV-MNIST's size")
    p.add_argument("--out", default=None)
    p.set_defaults(func=_bench)

    p = sub.add_parser("course", help="execute every notebook headless")
    p.add_argument("--inplace", action="store_true",
                   help="refresh the committed outputs in notebooks/ instead of writing build/")
    p.add_argument("--only", default=None, help="run only notebooks whose name contains this")
    p.add_argument("--build", default=None,
                   help="folder for executed copies, HTML and build/claims.jsonl (default: build/)")
    p.set_defaults(func=_course)

    p = sub.add_parser("lab", help="JupyterLab on the course, opened on the first notebook")
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("--no-browser", action="store_true", help="only print the URL")
    p.add_argument("--dry-run", action="store_true",
                   help="print the URL and command, start nothing")
    p.set_defaults(func=_lab)

    p = sub.add_parser("gpu-check",
                       help="unit tests, notebooks and bench on a CUDA GPU, one report")
    p.add_argument("--jobs", type=int, default=None,
                   help="test processes (default: min(8, CPU count))")
    p.add_argument("--method-epochs", type=int, default=2,
                   help="epochs per stage when timing every method on avmnist-shapes")
    p.add_argument("--quick", action="store_true",
                   help="compare at AV-MNIST size with seed 0 only; the report extrapolates "
                        "to three seeds and says so")
    p.add_argument("--parts", default=None,
                   help="comma-separated parts to run, in this order: bench, methods, compare, "
                        "course, course-offset, unit (default: all)")
    p.set_defaults(func=_gpu_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError) as exc:
        print(f"umm {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
