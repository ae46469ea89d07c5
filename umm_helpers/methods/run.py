"""``run_method``: train a method by name (or load it from the run cache) and score it.

``unimodal:<m>`` and the uni-modal pretraining behind ``ume``/``umt``/``ume-mma``: notebook 02;
``early``, ``concat``, ``joint``: notebook 03; ``joint-mma``, ``ume-mma``: notebook 04;
the comparison of everything: notebook 06. What each method does is in
:mod:`umm_helpers.methods.registry`.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from umm_helpers.core.encoders import default_encoders
from umm_helpers.core.fusion import MAX_PATTERN_MODALITIES
from umm_helpers.core.missing import DEFAULT_RATES, MaskTable, standard_conditions
from umm_helpers.core.patterns import PatternLogits, sweep
from umm_helpers.core.scoring import aurc, metric_name
from umm_helpers.data import MultiModalDataset
from umm_helpers.engine.checkpoint import CheckpointError, nonfinite_entries
from umm_helpers.engine.config import TrainConfig, resolve_device
from umm_helpers.engine.trainer import TrainingDiverged
from umm_helpers.methods.cache import RunCache
from umm_helpers.methods.identity import (
    encoder_identity,
    package_version,
    run_key,
    source_digest,
)
from umm_helpers.methods.recipes import (
    EncoderSpec,
    Recipe,
    build_model,
    encoder_factories,
)
from umm_helpers.methods.registry import (
    UNIMODAL,
    Method,
    get_method,
    method_config,
    method_options,
)

EVAL_SEED = 0


@dataclass
class Run:
    """A trained (or cached) method: the model, its training history and its result dict."""

    model: nn.Module
    history: list[dict[str, Any]]
    result: dict[str, Any]
    cached: bool = False
    path: Path | None = None


@dataclass
class RunSpec:
    """Everything that identifies a run, resolved and checked before any work is done."""

    name: str
    method: Method
    modalities: list[str]
    config: TrainConfig
    options: dict[str, Any]
    encoders: dict[str, str]
    key: str


def resolve(name: str, dataset: MultiModalDataset, encoders: EncoderSpec | None = None,
            config: TrainConfig | None = None, options: Mapping[str, Any] | None = None
            ) -> RunSpec:
    """The effective config, options, encoder identities and cache key of a run."""
    method, modalities = get_method(name, dataset.modalities)
    if len(dataset.modalities) > MAX_PATTERN_MODALITIES:
        raise ValueError(f"run_method scores every presence pattern of the data set's "
                         f"{len(dataset.modalities)} modalities (2^M patterns), and at most "
                         f"{MAX_PATTERN_MODALITIES} modalities are supported "
                         "(umm_helpers.core.fusion.MAX_PATTERN_MODALITIES); group modalities "
                         "(concatenate their features) or score with umm.evaluate per condition.")
    cfg = method_config(name, (config or TrainConfig()).validate())
    resolve_device(cfg)  # an unavailable device fails here, before any work
    opts = method_options(name, options)
    unknown = sorted(set(cfg.keep) - set(dataset.modalities))
    if unknown:
        raise ValueError(f"TrainConfig.keep names modalities {unknown}; the data set has "
                         f"{dataset.modalities}.")
    if encoders is not None and not isinstance(encoders, Mapping):
        raise TypeError(f"encoders must be a dict {{modality: factory or module}}, got "
                        f"{type(encoders).__name__}.")
    given, defaults = dict(encoders or {}), default_encoders(dataset)
    for m, spec in given.items():
        if not (isinstance(spec, nn.Module) or callable(spec)):
            raise TypeError(f"encoders[{m!r}] is {type(spec).__name__}: expected an nn.Module "
                            "or a zero-argument factory (a class, function or lambda) returning "
                            "one.")
    ids = {m: encoder_identity(given.get(m, defaults[m])) for m in modalities
           if method.architecture != "early"}
    key = run_key(dataset.checksum, name, cfg.to_dict(), ids, opts)
    return RunSpec(name, method, modalities, cfg, opts, ids, key)


def new_model(name: str, dataset: MultiModalDataset, encoders: EncoderSpec | None = None
              ) -> nn.Module:
    """A freshly initialised model of the architecture method ``name`` trains."""
    method, modalities = get_method(name, dataset.modalities)
    return build_model(method.architecture, modalities, dataset,
                       encoder_factories(dataset, encoders))


def summarize_model(model: nn.Module, dataset: MultiModalDataset) -> dict[str, Any]:
    """Test scores under the standard conditions, sweeps and their AURC.

    The logits of every presence pattern are computed once (:class:`PatternLogits`: the
    encoders of the package's fusion models run once per batch); every score is read from
    those logits, equal to ``evaluate(model, test)`` (tested).
    """
    test = dataset.test
    patterns = PatternLogits.compute(model, test)
    sweeps = sweep(patterns, test, DEFAULT_RATES, seed=EVAL_SEED)
    table = MaskTable.create(len(test), test.modalities, EVAL_SEED)
    return {"metric": metric_name(test),
            "scores": {c: patterns.condition_score(c, table)
                       for c in standard_conditions(test.modalities)},
            "rates": list(DEFAULT_RATES), "sweeps": sweeps,
            "aurc": {k: aurc(DEFAULT_RATES, v) for k, v in sweeps.items()}}


RESULT_KEYS = ("method", "key", "history", "metric", "scores", "sweeps", "aurc")


def _check_result(result: dict[str, Any], spec: RunSpec, folder: Path) -> None:
    absent = [k for k in RESULT_KEYS if k not in result]
    if absent:
        raise CheckpointError(f"cached result {folder / 'result.json'} lacks {absent}")
    if result["key"] != spec.key or result["method"] != spec.name:
        raise CheckpointError(f"cached result {folder / 'result.json'} belongs to run "
                              f"{result['method']!r} {result['key']!r}, not {spec.name!r} "
                              f"{spec.key!r}")


def _load_cached(spec: RunSpec, dataset: MultiModalDataset, encoders: EncoderSpec | None,
                 cache: RunCache, folder: Path) -> Run | None:
    """The cached run, or None when there is none or it is damaged (a warning names the folder:
    a damaged run is never used, and ``run_method`` trains it again)."""
    try:
        cached = cache.load_result(folder)
        if cached is None:
            return None
        _check_result(cached, spec, folder)
        model = build_model(spec.method.architecture, spec.modalities, dataset,
                            encoder_factories(dataset, encoders))
        cache.load_weights(folder, model)
    except CheckpointError as exc:
        warnings.warn(f"cached run {folder} is damaged and is not used ({exc}); run_method "
                      "trains it again and replaces it.", stacklevel=3)
        return None
    device = resolve_device(spec.config)
    return Run(model.to(device).eval(), cached["history"], cached, True, folder)


def check_finite_model(model: nn.Module, name: str, config: TrainConfig) -> None:
    """Refuse (``TrainingDiverged``) a trained model whose weights or buffers hold NaN or inf:
    such a run is never cached."""
    bad = nonfinite_entries(model.state_dict())
    if bad:
        raise TrainingDiverged(f"{name}: training diverged: the trained weights hold NaN or inf "
                               f"values (in {bad[:3]}); nothing was cached. Lower "
                               f"TrainConfig.lr (now {config.lr:g}), e.g. to "
                               f"{config.lr / 10:g}.")


def _as_cache(cache: bool | RunCache) -> RunCache | None:
    return cache if isinstance(cache, RunCache) else (RunCache() if cache else None)


def cached_run(name: str, dataset: MultiModalDataset, encoders: EncoderSpec | None = None,
               config: TrainConfig | None = None, options: Mapping[str, Any] | None = None,
               cache: RunCache | None = None) -> Run | None:
    """The run ``run_method`` would return from the run cache, or None; never trains (a
    damaged cached run is reported with a warning and gives None)."""
    spec = resolve(name, dataset, encoders, config, options)
    store = cache or RunCache()
    return _load_cached(spec, dataset, encoders, store,
                        store.folder(dataset.name, name, spec.key))


def run_method(name: str, dataset: MultiModalDataset, encoders: EncoderSpec | None = None,
               config: TrainConfig | None = None, cache: bool | RunCache = True,
               options: Mapping[str, Any] | None = None) -> Run:
    """Train method ``name`` on ``dataset`` (or load it from the run cache) and score it.

    ``encoders`` maps modality -> factory (a zero-argument callable returning a module) or a
    module (deep-copied); missing modalities get :func:`default_encoders`. ``options`` are the
    method's own settings (``umm.METHODS[name].options``, e.g. ``{"distill_weight": 2.0}`` for
    ``umt``). ``ume``, ``umt`` and ``ume-mma`` reuse the cached uni-modal runs. ``result``
    holds the test scores under ``full`` and ``miss:<m>``, the missing-rate sweeps, AURC per
    sweep and ``train_seconds``. ``cache`` is True (the default ``RunCache()``), False, or a
    :class:`RunCache`.
    """
    spec = resolve(name, dataset, encoders, config, options)
    store = _as_cache(cache)
    folder = store.folder(dataset.name, name, spec.key) if store is not None else None
    if store is not None and folder is not None:
        found = _load_cached(spec, dataset, encoders, store, folder)
        if found is not None:
            return found
        store.check_writable()  # a read-only cache fails now, not after training

    def unimodal_run(m: str) -> Run:
        return run_method(f"{UNIMODAL}:{m}", dataset, encoders, spec.config,
                          cache=store if store is not None else False)

    recipe = Recipe(name, spec.method.architecture, spec.modalities, dataset,
                    encoders, spec.config, spec.options, folder, unimodal_run)
    start = time.perf_counter()
    model = spec.method.train(recipe).to(recipe.device).eval()
    seconds = time.perf_counter() - start
    check_finite_model(model, name, spec.config)  # finite or nothing: never cached otherwise
    result: dict[str, Any] = {
        "method": name, "dataset": dataset.name, "checksum": dataset.checksum, "key": spec.key,
        "version": package_version(), "source": source_digest(),
        "config": spec.config.to_dict(), "options": spec.options, "encoders": spec.encoders,
        "train_seconds": seconds - recipe.nested_wall + recipe.reused_seconds,
        "history": recipe.history, "unimodal_scores": recipe.unimodal_scores,
        **summarize_model(model, dataset)}
    if store is not None and folder is not None:
        store.save(folder, model, result)
        store.clear_checkpoints(folder)
    return Run(model, recipe.history, result, False, folder)
