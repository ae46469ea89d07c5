"""How fast is the engine? Epoch time against a common DataLoader loop (notebook 09, ``umm bench``).

``speedup`` = reference epoch time / engine epoch time, where the reference is written the
common way (a ``Dataset`` with per-sample ``__getitem__``, a ``DataLoader``, ``.to(device)`` per
batch). ``overhead`` = engine epoch time / the pure forward-backward-step time of the same
batches already on the device. All three see the same samples per epoch (the same batch
size; only a one-sample tail batch is dropped). The loops are interleaved, one epoch each per
round after a warm-up round, and rounds go on until every median settles: a slow spell of a noisy
machine hits all loops alike, and each figure comes with its 25th-75th percentile range.

All three loops use the engine's default precision (float32); on CUDA ``engine_bf16_epoch_s``
adds the engine in bf16 autocast (``TrainConfig(amp=True)``) and ``engine_eager_epoch_s`` the
engine without its captured step (``TrainConfig(capture=False)``), so both defaults stay
measured. ``steps_per_s`` is the engine's optimizer steps per second.

``umm bench --methods all`` times every method (:func:`method_times`), e.g. on
``avmnist-shapes`` for AV-MNIST-sized wall times. ``umm bench --widgets`` times the notebook-05
explorer instead (:func:`widget_bench`): the latency of each slider or picker change, figure
redraw included (target: median <= 50 ms).
"""
from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from umm_helpers.core.missing import full_presence
from umm_helpers.course import explorer_model as ex
from umm_helpers.data import MultiModalDataset, Split
from umm_helpers.engine.batches import batch_bounds
from umm_helpers.engine.config import TrainConfig, resolve_device
from umm_helpers.engine.trainer import Trainer, classification_loss
from umm_helpers.methods.run import new_model
from umm_helpers.settings import set_seed


class _PerSample(torch.utils.data.Dataset):
    """The common way: one sample at a time."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return {m: x[i] for m, x in self.split.inputs.items()}, self.split.labels[i]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(model: nn.Module, opt: torch.optim.Optimizer, x: dict, y: torch.Tensor,
          amp: bool = False) -> None:
    present = full_presence(y.shape[0], list(x), y.device)
    with torch.autocast(device_type=y.device.type, dtype=torch.bfloat16, enabled=amp):
        loss = classification_loss(model(x, present), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _reference_epoch(model: nn.Module, split: Split, batch_size: int, device: torch.device,
                     opt: torch.optim.Optimizer, amp: bool = False) -> float:
    loader = torch.utils.data.DataLoader(_PerSample(split), batch_size=batch_size, shuffle=True,
                                         drop_last=len(split) % batch_size == 1)
    _sync(device)
    start = time.perf_counter()
    model.train()
    for x, y in loader:
        x = {m: v.to(device) for m, v in x.items()}
        _step(model, opt, x, y.to(device), amp)
    _sync(device)
    return time.perf_counter() - start


def _pure_epoch(model: nn.Module, staged: list[tuple[dict, torch.Tensor]],
                device: torch.device, opt: torch.optim.Optimizer, amp: bool = False) -> float:
    _sync(device)
    start = time.perf_counter()
    model.train()
    for x, y in staged:
        _step(model, opt, x, y, amp)
    _sync(device)
    return time.perf_counter() - start


def _joint_model(dataset: MultiModalDataset) -> nn.Module:
    return new_model("joint", dataset)


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and the 25th-75th percentile range of ``values`` (pure)."""
    lo, mid, hi = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return {"median": float(mid), "p25": float(lo), "p75": float(hi)}


def settled(history: Sequence[Sequence[float]], tolerance: float) -> bool:
    """True when adding the last round moved the median of every loop by less than
    ``tolerance`` (relative). ``history[i]`` holds the times of loop ``i``, one per round."""
    for times in history:
        if len(times) < 3:
            return False
        before, now = statistics.median(times[:-1]), statistics.median(times)
        if abs(now - before) > tolerance * before:
            return False
    return True


def interleaved(loops: dict[str, Callable[[], float]], min_rounds: int, max_rounds: int,
                tolerance: float) -> dict[str, list[float]]:
    """Time the loops in turn, one epoch each per round, after one warm-up round.

    Interleaving puts a slow spell of a noisy machine on every loop alike; rounds go on until
    every loop's median settles (:func:`settled`), at least ``min_rounds``, at most
    ``max_rounds``.
    """
    for run in loops.values():  # warm-up: allocator, kernels, caches
        run()
    times: dict[str, list[float]] = {name: [] for name in loops}
    while True:
        for name, run in loops.items():
            times[name].append(run())
        rounds = len(next(iter(times.values())))
        if rounds >= max_rounds or (rounds >= min_rounds
                                    and settled(list(times.values()), tolerance)):
            return times


def bench(dataset: MultiModalDataset, batch_size: int = 64, repeats: int = 5,
          device: str | None = None, widgets: bool = False,
          model_fn: Callable[[MultiModalDataset], nn.Module] | None = None,
          verbose: bool = True, max_rounds: int = 40, tolerance: float = 0.02
          ) -> dict[str, Any]:
    """Epoch times of the engine, the common loop and the pure step loop, interleaved
    (:func:`interleaved`: at least ``repeats`` rounds, until the medians settle); prints one
    JSON line and returns it. ``speedup`` and ``overhead`` are medians of per-round ratios, each
    with its 25th-75th percentile range."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    if max_rounds < repeats:
        raise ValueError(f"max_rounds ({max_rounds}) must be at least repeats ({repeats}).")
    config = TrainConfig(epochs=max_rounds + 1, batch_size=batch_size, device=device, seed=0)
    dev = resolve_device(config)
    make = model_fn or _joint_model
    split = dataset.train
    amp = config.amp and dev.type == "cuda"  # the engine's default precision; all loops share it

    def engine(cfg: TrainConfig) -> tuple[Trainer, Callable[[], float]]:
        set_seed(0)
        trainer = Trainer(cfg, desc="bench")
        trainer.setup(make(dataset), split, None)

        def epoch() -> float:
            _sync(dev)
            start = time.perf_counter()
            trainer.fit_epoch()
            _sync(dev)
            return time.perf_counter() - start
        return trainer, epoch

    trainers, loops = [], {}
    trainer, loops["engine"] = engine(config)
    trainers.append(trainer)
    set_seed(0)
    model = make(dataset).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    loops["reference"] = lambda: _reference_epoch(model, split, batch_size, dev, opt, amp)
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(split), generator=gen)
    staged = [({m: x[perm[s:e]].to(dev) for m, x in split.inputs.items()},
               split.labels[perm[s:e]].to(dev)) for s, e in batch_bounds(len(split), batch_size)]
    loops["pure"] = lambda: _pure_epoch(model, staged, dev, opt, amp)
    if dev.type == "cuda":  # the other precision and the eager step: both defaults measured
        trainer, loops["engine_bf16" if not amp else "engine_fp32"] = engine(
            config.replace(amp=not amp))
        trainers.append(trainer)
        trainer, loops["engine_eager"] = engine(config.replace(capture=False))
        trainers.append(trainer)
        torch.cuda.reset_peak_memory_stats(dev)
    try:
        times = interleaved(loops, repeats, max_rounds, tolerance)
    finally:
        for trainer in trainers:
            trainer.teardown()
    speedups = [r / e for r, e in zip(times["reference"], times["engine"])]
    overheads = [e / p for e, p in zip(times["engine"], times["pure"])]
    out: dict[str, Any] = {
        "dataset": dataset.name, "device": str(dev), "samples": len(split),
        "batch_size": batch_size, "rounds": len(times["engine"]), "amp_bf16": amp,
        **{f"{name}_epoch_s": statistics.median(t) for name, t in times.items()},
        "spread": {name: spread(t) for name, t in times.items()},
        "speedup": statistics.median(speedups), "speedup_spread": spread(speedups),
        "overhead": statistics.median(overheads), "overhead_spread": spread(overheads),
        "steps_per_s": len(trainers[0].bounds) / statistics.median(times["engine"]),
    }
    if dev.type == "cuda":
        out["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
    if widgets:
        out.update(_widget_timing(model, dataset))
    if verbose:
        print(json.dumps(out, sort_keys=True))
    return out


def _widget_timing(model: nn.Module, dataset: MultiModalDataset) -> dict[str, float]:
    """Time of one slider update: ``PatternLogits.accuracy_for_rates`` (microseconds)."""
    from umm_helpers.core.missing import MaskTable
    from umm_helpers.core.patterns import PatternLogits

    patterns = PatternLogits.compute(model, dataset.test)
    table = MaskTable.create(len(dataset.test), dataset.modalities, 0)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(200):
        rates = {m: float(rng.random()) for m in dataset.modalities}
        start = time.perf_counter()
        patterns.accuracy_for_rates(rates, table)
        times.append(time.perf_counter() - start)
    return {"slider_update_us": statistics.median(times) * 1e6}


WIDGET_TARGET_MS = 50.0


def untrained_models(dataset: MultiModalDataset, keys: Sequence[ex.RunKey], seed: int = 0
                     ) -> dict[ex.RunKey, nn.Module]:
    """Freshly initialised models of each run's architecture, for :func:`widget_bench`.

    The explorer's latency does not depend on the weights, so the bench (and its tests) can
    time the notebook-05 explorer without training; the accuracies are meaningless.
    """
    out = {}
    for k in keys:
        set_seed(seed)
        model = new_model(k[0], dataset)
        set_prior = getattr(model, "set_prior", None)
        if callable(set_prior):
            set_prior(dataset.train.labels)
        out[k] = model.eval()
    return out


def widget_bench(dataset: MultiModalDataset, values_per_slider: int = 21, methods: int = 2,
                 verbose: bool = True) -> dict[str, Any]:
    """Latency of the notebook-05 explorer: every control change, redraw and PNG included.

    Builds the explorer (``widgets.missing_modality_explorer``) on the runs of notebook 05:
    cached runs where the run cache has them, freshly initialised models of the same
    architecture otherwise (latency does not depend on the weights; ``runs_cached`` says how
    many were real). Then moves the sliders and pickers through ``explorer_moves`` and
    prints one JSON line: median and p95 update latency in ms, and the number of model calls
    made by the updates (always 0: sliders recombine precomputed logits).
    """
    from umm_helpers.course import widgets  # ipywidgets and matplotlib: only when timed

    keys = ex.run_keys(ex.explorer_methods(dataset.modalities))
    cached = {k: ex.cached_run(k[0], dataset, ex.run_config(k)) for k in keys}
    fresh = untrained_models(dataset, [k for k, r in cached.items() if r is None])
    counter = ex.CallCounter()
    models = {k: counter.wrap(r.model if r is not None else fresh[k]) for k, r in cached.items()}
    start = time.perf_counter()
    data = ex.ExplorerData.from_models(models, dataset.test)
    precompute = time.perf_counter() - start
    calls = counter.calls
    start = time.perf_counter()
    ui = widgets.missing_modality_explorer(data)
    build = time.perf_counter() - start
    times = widgets.explorer_latency(ui, widgets.explorer_moves(ui, values_per_slider, methods))
    out: dict[str, Any] = {
        "bench": "widgets", "dataset": dataset.name, "test_samples": len(dataset.test),
        "runs": len(keys), "runs_cached": sum(r is not None for r in cached.values()),
        "updates": len(times), "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "max_ms": round(max(times), 2), "target_median_ms": WIDGET_TARGET_MS,
        "precompute_s": round(precompute, 3), "build_s": round(build, 3),
        "image_kb": round(len(ui.image.value) / 1024, 1),
        "model_calls_during_updates": counter.calls - calls,
    }
    if verbose:
        print(json.dumps(out, sort_keys=True))
    return out


@contextlib.contextmanager
def _scratch_runs_dir() -> Iterator[Path]:
    """A fresh, temporary run cache (``UMM_RUNS_DIR``) for the duration of the block."""
    old = os.environ.get("UMM_RUNS_DIR")
    with tempfile.TemporaryDirectory(prefix="umm-bench-runs-") as tmp:
        os.environ["UMM_RUNS_DIR"] = tmp
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("UMM_RUNS_DIR", None)
            else:
                os.environ["UMM_RUNS_DIR"] = old


def method_timing(history: list[dict[str, Any]], wall_s: float, estimate_epochs: int
                  ) -> dict[str, Any]:
    """Per-method figures from one run's ``history`` (pure; tested without training).

    ``epoch_s``: the median epoch time of each training stage (stages reused from the run
    cache keep the time they took when trained). ``overhead_s``: the wall time not spent in
    this run's own epochs (model set-up, final evaluation, sweeps). ``estimate_s``: the time
    of the method from an empty run cache at ``estimate_epochs`` epochs per stage =
    ``overhead_s + estimate_epochs * sum(epoch_s)``; ``own_estimate_s`` counts only the
    stages this method trains itself (what it adds when its uni-modal runs are cached).
    """
    stages: dict[str, list[float]] = {}
    own: dict[str, bool] = {}
    own_seconds = 0.0
    for h in history:
        stage = str(h.get("stage", "train"))
        stages.setdefault(stage, []).append(float(h["seconds"]))
        own[stage] = "reused" not in h  # a stage of this method, not of a uni-modal run
        if h.get("reused") is not True:  # trained during this call: inside wall_s
            own_seconds += float(h["seconds"])
    epoch_s = {k: statistics.median(v) for k, v in stages.items()}
    overhead = max(0.0, wall_s - own_seconds)
    return {"wall_s": round(wall_s, 2), "overhead_s": round(overhead, 2),
            "epoch_s": {k: round(v, 3) for k, v in epoch_s.items()},
            "estimate_epochs": estimate_epochs,
            "estimate_s": round(overhead + estimate_epochs * sum(epoch_s.values()), 1),
            "own_estimate_s": round(overhead + estimate_epochs * sum(
                v for k, v in epoch_s.items() if own[k]), 1)}


def method_times(dataset: MultiModalDataset, methods: str | Sequence[str] = "all",
                 epochs: int = 2, estimate_epochs: int = 20, batch_size: int = 64,
                 device: str | None = None, verbose: bool = True) -> dict[str, Any]:
    """Wall time of every method on ``dataset`` (``umm bench --methods``; README, notebook 07).

    Trains each method for ``epochs`` epochs per stage in a fresh temporary run cache, in the
    order given (``ume``, ``umt`` and ``ume-mma`` reuse the uni-modal runs trained before them,
    as in ``umm compare``), and reports :func:`method_timing` for each plus the total for the
    whole list at ``estimate_epochs`` epochs. Prints one JSON line.
    """
    from umm_helpers.methods.compare import parse_methods
    from umm_helpers.methods.run import run_method

    names = parse_methods(methods, dataset.modalities)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, device=device, seed=0)
    dev = resolve_device(config)
    rows: dict[str, Any] = {}
    with _scratch_runs_dir():
        for name in names:
            _sync(dev)
            start = time.perf_counter()
            run = run_method(name, dataset, config=config)
            _sync(dev)
            rows[name] = method_timing(run.history, time.perf_counter() - start, estimate_epochs)
            if verbose:
                print(f"  {name:<16} {rows[name]['wall_s']:8.1f} s at {epochs} epochs "
                      f"-> ~{rows[name]['estimate_s']:.0f} s at {estimate_epochs}", flush=True)
    out: dict[str, Any] = {
        "bench": "methods", "dataset": dataset.name, "device": str(dev),
        "samples": {s: len(split) for s, split in dataset.splits().items()},
        "batch_size": batch_size, "epochs": epochs, "methods": rows,
        "measured_total_s": round(sum(r["wall_s"] for r in rows.values()), 1),
        "estimate_total_s": round(sum(r["own_estimate_s"] for r in rows.values()), 1)}
    if torch.cuda.is_available() and dev.type == "cuda":
        out["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
    if verbose:
        print(json.dumps(out, sort_keys=True))
    return out


def bench_cli(args: Any) -> int:
    """``umm bench``: engine benchmark, or with ``--widgets`` the explorer's latency."""
    from umm_helpers.data import load_dataset

    options = {"scale": args.scale} if getattr(args, "scale", None) is not None else {}
    dataset = load_dataset(args.dataset, **options)
    if getattr(args, "widgets", False):
        widget_bench(dataset)
    elif getattr(args, "methods", None):
        method_times(dataset, args.methods, epochs=args.epochs,
                     estimate_epochs=args.estimate_epochs, batch_size=args.batch_size)
    else:
        print(summary_lines(bench(dataset)), flush=True)
    return 0


def summary_lines(out: dict[str, Any]) -> str:
    """One line per figure of :func:`bench`: median and 25th-75th percentile range."""
    lines = [f"{out['dataset']} on {out['device']}, {out['rounds']} interleaved rounds:"]
    for name, q in out["spread"].items():
        label = f"{name} epoch"
        lines.append(f"  {label:<18} {q['median']:.4f} s  ({q['p25']:.4f}-{q['p75']:.4f})")
    for name in ("speedup", "overhead"):
        q = out[f"{name}_spread"]
        lines.append(f"  {name:<18} {out[name]:.3f}     ({q['p25']:.3f}-{q['p75']:.3f})")
    if "steps_per_s" in out:
        lines.append(f"  {'steps per second':<18} {out['steps_per_s']:.0f}")
    if "peak_gpu_memory_gb" in out:
        lines.append(f"  {'peak GPU memory':<18} {out['peak_gpu_memory_gb']:.2f} GB")
    return "\n".join(lines)
