"""Many runs at once: independent (method, seed) runs in worker processes (``--jobs N``).

``run_seeds`` (notebooks 06 and 08) and ``umm compare`` train every (method, seed) run of a
table. With ``jobs > 1`` the runs go to ``jobs`` worker processes in two waves: first the
uni-modal runs and every method trained from scratch, then the methods built from the uni-modal
runs (``ume``, ``umt``, ``ume-mma``, ``pattern-heads``), which find those in the run cache, so
no run is trained twice. Runs already in the cache are left out (no process starts when all
are); workers write to the same run cache, and the caller then reads every result from it.

Each worker trains with ``threads`` intra-op threads (on a CPU the caller's threads divided
among the workers: CPU kernels sum in an order that depends on the thread count) and, on CUDA,
on one GPU (round robin when there are several; several workers share a GPU). A run trained in
a worker is bit-identical to the same run trained alone with the same number of threads
(tested with 2 processes on a CPU).
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, ProcessPoolExecutor, wait
from typing import Any

import torch

from umm_helpers.data import MultiModalDataset, load_from_path, loader_path
from umm_helpers.engine import distributed
from umm_helpers.engine.batches import split_bytes
from umm_helpers.engine.config import TrainConfig, is_int
from umm_helpers.methods.cache import MANIFEST, RunCache
from umm_helpers.methods.registry import METHODS, UNIMODAL, get_method, method_options
from umm_helpers.methods.run import Run, resolve, run_method
from umm_helpers.settings import progress, runs_dir

# Worker processes per GPU by default: these small models leave a GPU idle between kernels.
JOBS_PER_GPU = 4

Job = tuple[str, int]  # (method, seed)


def default_jobs() -> int:
    """``JOBS_PER_GPU`` per visible GPU; 1 on a CPU (two processes on two cores gain little
    over one process with two threads, and change the thread count of every run)."""
    if torch.cuda.is_available():
        return JOBS_PER_GPU * torch.cuda.device_count()
    return 1


def check_jobs(jobs: int | None) -> int:
    """``jobs`` or the default, refused before any work when it cannot be used."""
    if jobs is None:
        return default_jobs()
    if not is_int(jobs) or jobs < 1:
        raise ValueError(f"jobs = {jobs!r} is invalid: expected an integer >= 1 (the number of "
                         "runs trained at once), or None for the default.")
    if jobs > 1 and distributed.world_size() > 1:
        raise ValueError("jobs > 1 cannot be combined with torchrun (every process already "
                         "trains the same run data-parallel): pass jobs=1.")
    return jobs


def waves(names: Sequence[str], seeds: Sequence[int], modalities: Sequence[str]
          ) -> list[list[Job]]:
    """The runs in dependency order: uni-modal and from-scratch runs, then those built from
    the uni-modal runs (adding the uni-modal runs they need to the first wave)."""
    methods = {n: get_method(n, modalities)[0] for n in names}
    needed = ([f"{UNIMODAL}:{m}" for m in sorted(modalities)]
              if any(m.uses_unimodal for m in methods.values()) else [])
    first = list(dict.fromkeys([n for n in names if not methods[n].uses_unimodal] + needed))
    second = [n for n in names if methods[n].uses_unimodal]
    return [[(n, s) for n in wave for s in seeds] for wave in (first, second) if wave]


def run_seeds(names: Sequence[str], dataset: MultiModalDataset, seeds: Sequence[int],
              config: TrainConfig | None = None, options: Mapping[str, Any] | None = None,
              jobs: int | None = None, loader: str | None = None) -> dict[str, list[Run]]:
    """``{method: [run per seed]}``: every method for every seed, ``jobs`` runs at a time.

    ``config`` is the base (its seed is replaced by each seed); ``options`` apply to every
    method that has them. ``jobs=None`` is :func:`default_jobs`. Workers receive ``dataset``
    through shared memory when it is small; a large one they load themselves, with ``loader``
    (the ``"module:function"`` that loads it) or the loader registered under its name, and
    check that the checksum matches.
    """
    base = (config or TrainConfig()).validate()
    jobs = check_jobs(jobs)
    seed_list = list(seeds)
    for name in names:  # a bad name or option fails here, before any process starts
        get_method(name, dataset.modalities)
        method_options(name, _options_for(name, options))
    if jobs > 1:
        todo = [[job for job in wave if not _cached(job, dataset, base, options)]
                for wave in waves(names, seed_list, dataset.modalities)]
        if any(todo):  # no worker process starts for a table that is already in the cache
            train_in_workers(worker_source(dataset, loader), [w for w in todo if w], base,
                             options, jobs)
    return {n: [run_method(n, dataset, config=base.replace(seed=s),
                           options=_options_for(n, options)) for s in seed_list]
            for n in names}


def _cached(job: Job, dataset: MultiModalDataset, config: TrainConfig,
            options: Mapping[str, Any] | None) -> bool:
    """Whether the run cache holds a finished run for ``job`` (its manifest is written last)."""
    name, seed = job
    spec = resolve(name, dataset, config=config.replace(seed=seed),
                   options=_options_for(name, options))
    return (RunCache().folder(dataset.name, name, spec.key) / MANIFEST).exists()


# Data sets above this size are loaded by each worker rather than sent through shared memory
# (containers often limit /dev/shm to 64 MB-1 GB).
SHARE_LIMIT_BYTES = 256 * 2**20

Source = MultiModalDataset | tuple[str, str]  # the data set, or (loader, checksum)


def worker_source(dataset: MultiModalDataset, loader: str | None = None) -> Source:
    """What workers get: ``(loader, checksum)`` to load it themselves, or the data set itself."""
    path = loader or loader_path(dataset.name)
    size = split_bytes(*dataset.splits().values())
    if loader is not None or (path is not None and size > SHARE_LIMIT_BYTES):
        assert path is not None
        return path, dataset.checksum
    return dataset


def _options_for(name: str, options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The given options this method has (a table mixes methods with different options)."""
    own = METHODS[name.partition(":")[0]].options
    return {k: v for k, v in (options or {}).items() if k in own} or None


def train_in_workers(source: Source, job_waves: list[list[Job]],
                     config: TrainConfig, options: Mapping[str, Any] | None, jobs: int) -> None:
    """Train every job of each wave in ``jobs`` worker processes; one progress bar over all."""
    threads = max(1, torch.get_num_threads() // jobs)
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                             initargs=(threads, str(runs_dir()))) as pool:
        finished = _finished(pool, source, job_waves, config, options)
        for _ in progress(finished, total=sum(len(w) for w in job_waves),
                          desc=f"runs, {jobs} at once", unit="run"):
            pass


def _finished(pool: Executor, source: Source,
              job_waves: list[list[Job]], config: TrainConfig,
              options: Mapping[str, Any] | None) -> Iterator[Job]:
    """Submit wave after wave; yield each job as it finishes; re-raise the first failure with
    the run it belongs to (the runs still queued are cancelled)."""
    gpus = torch.cuda.device_count() if config.device is None else 0
    count = 0
    for wave in job_waves:
        futures: dict[Future[None], Job] = {}
        for name, seed in wave:
            cfg = config.replace(seed=seed)
            if gpus:  # round robin over the GPUs (the device is not part of the run's key)
                cfg = cfg.replace(device=f"cuda:{count % gpus}")
            count += 1
            futures[pool.submit(_train_one, source, name, cfg,
                                _options_for(name, options))] = (name, seed)
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                exc = future.exception()
                if exc is not None:
                    for other in pending:
                        other.cancel()
                    name, seed = futures[future]
                    exc.add_note(f"while training {name!r} with seed {seed} in a worker "
                                 "process (jobs > 1)")
                    raise exc
                yield futures[future]


_DATA: dict[str, MultiModalDataset] = {}  # each worker loads a data set once


def _start_worker(threads: int, runs: str) -> None:
    torch.set_num_threads(threads)
    os.environ["UMM_RUNS_DIR"] = runs
    os.environ["UMM_PROGRESS"] = "0"  # the caller's bar counts finished runs


def _train_one(source: Source, name: str, config: TrainConfig,
               options: Mapping[str, Any] | None) -> None:
    if isinstance(source, tuple):
        path, checksum = source
        if path not in _DATA:
            _DATA[path] = load_from_path(path)
        dataset = _DATA[path]
        if dataset.checksum != checksum:
            raise ValueError(f"a worker loaded the data set with {path} and got checksum "
                             f"{dataset.checksum}, not the caller's {checksum} (it was loaded "
                             "with other arguments): pass loader= naming a function that loads "
                             "exactly this data set, or jobs=1.")
    else:
        dataset = source
    run_method(name, dataset, config=config, options=options)
