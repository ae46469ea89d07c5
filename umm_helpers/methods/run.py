"""``run_method``: train a method by name (or load it from the run cache) and score it.

``unimodal:<m>`` and the uni-modal pretraining behind ``ume``/``umt``/``ume-mma``: notebook 02;
``early``, ``concat``, ``joint``: notebook 03; ``joint-mma``, ``ume-mma``: notebook 04;
the comparison of everything: notebook 06. What each method does is in
:mod:`umm_helpers.methods.registry`.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from umm_helpers.core.encoders import default_encoders
from umm_helpers.core.missing import DEFAULT_RATES, MaskTable, standard_conditions
from umm_helpers.core.patterns import PatternLogits, sweep
from umm_helpers.core.scoring import aurc, metric_name
from umm_helpers.data import MultiModalDataset
from umm_helpers.engine.config import TrainConfig, resolve_device
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
    cfg = method_config(name, (config or TrainConfig()).validate())
    opts = method_options(name, options)
    unknown = sorted(set(cfg.keep) - set(dataset.modalities))
    if unknown:
        raise ValueError(f"TrainConfig.keep names modalities {unknown}; the data set has "
                         f"{dataset.modalities}.")
    given, defaults = dict(encoders or {}), default_encoders(dataset)
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

    The model runs once per presence pattern (:class:`PatternLogits`); every score is read from
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


def _load_cached(spec: RunSpec, dataset: MultiModalDataset, encoders: EncoderSpec | None,
                 cache: RunCache, folder: Path) -> Run | None:
    cached = cache.load_result(folder)
    if cached is None:
        return None
    model = build_model(spec.method.architecture, spec.modalities, dataset,
                        encoder_factories(dataset, encoders))
    cache.load_weights(folder, model)
    device = resolve_device(spec.config)
    return Run(model.to(device).eval(), cached["history"], cached, True, folder)


def _as_cache(cache: bool | RunCache) -> RunCache | None:
    return cache if isinstance(cache, RunCache) else (RunCache() if cache else None)


def cached_run(name: str, dataset: MultiModalDataset, encoders: EncoderSpec | None = None,
               config: TrainConfig | None = None, options: Mapping[str, Any] | None = None,
               cache: RunCache | None = None) -> Run | None:
    """The run ``run_method`` would return from the run cache, or None; never trains."""
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

    def unimodal_run(m: str) -> Run:
        return run_method(f"{UNIMODAL}:{m}", dataset, encoders, spec.config,
                          cache=store if store is not None else False)

    recipe = Recipe(name, spec.method.architecture, spec.modalities, dataset, encoders, spec.config,
                    spec.options, folder, unimodal_run)
    start = time.perf_counter()
    model = spec.method.train(recipe).to(recipe.device).eval()
    seconds = time.perf_counter() - start
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
