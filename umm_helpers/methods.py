"""The methods, by name: recipes of stages of the one engine (:func:`umm_helpers.train.fit`).

``unimodal:<m>`` and the uni-modal pretraining behind ``ume``/``umt``/``ume-mma``: notebook 02;
``early``, ``concat``, ``joint``: notebook 03; ``joint-mma``, ``ume-mma``: notebook 04;
``ume``, ``umt`` and the comparison of everything: notebook 06.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from umm_helpers.config import set_seed
from umm_helpers.data import MultiModalDataset, Split
from umm_helpers.encoders import default_encoders, feature_dim, freeze
from umm_helpers.evaluate import PatternLogits, aurc, metric_name, sweep
from umm_helpers.fusion import ConcatFusionModel, EarlyFusionModel, LateFusionModel
from umm_helpers.missing import DEFAULT_RATES, MaskTable, standard_conditions, training_presence
from umm_helpers.runs import (cache_dir, clear_checkpoints, encoder_identity, load_result,
                              load_weights, package_version, run_key, save_run)
from umm_helpers.train import TrainConfig, classification_loss, fit, resolve_device

UNIMODAL = "unimodal"
METHODS = ["early", "concat", "joint", "joint-mma", "ume", "umt", "ume-mma"]
MMA_DEFAULT = 0.5
EVAL_SEED = 0

EncoderSpec = Mapping[str, Callable[[], nn.Module] | nn.Module]


@dataclass
class Run:
    """A trained (or cached) method: the model, its training history and its result dict."""

    model: nn.Module
    history: list[dict[str, Any]]
    result: dict[str, Any]
    cached: bool = False
    path: Path | None = None


def all_methods(modalities: list[str] | tuple[str, ...]) -> list[str]:
    """``unimodal:<m>`` for each modality, then :data:`METHODS`."""
    return [f"{UNIMODAL}:{m}" for m in sorted(modalities)] + list(METHODS)


def check_method(name: str, modalities: list[str]) -> None:
    if name in METHODS:
        return
    if name.startswith(f"{UNIMODAL}:") and name.split(":", 1)[1] in modalities:
        return
    raise ValueError(f"unknown method {name!r}; available: {all_methods(modalities)}.")


def _factories(dataset: MultiModalDataset, encoders: EncoderSpec | None
               ) -> dict[str, Callable[[], nn.Module]]:
    out: dict[str, Callable[[], nn.Module]] = dict(default_encoders(dataset))
    for m, spec in (encoders or {}).items():
        if m not in out:
            raise ValueError(f"encoders has modality {m!r}; the data set has "
                             f"{dataset.modalities}.")
        out[m] = (lambda module=spec: copy.deepcopy(module)) if isinstance(spec, nn.Module) \
            else spec
    return out


def _identities(dataset: MultiModalDataset, encoders: EncoderSpec | None) -> dict[str, str]:
    given = dict(encoders or {})
    defaults = default_encoders(dataset)
    return {m: encoder_identity(given.get(m, defaults[m])) for m in dataset.modalities}


def _modalities_of(name: str, dataset: MultiModalDataset) -> list[str]:
    return [name.split(":", 1)[1]] if name.startswith(f"{UNIMODAL}:") else dataset.modalities


def method_config(name: str, config: TrainConfig) -> TrainConfig:
    """The config a method actually uses: fields it ignores reset to their defaults.

    Only ``joint-mma`` and ``ume-mma`` use MMA (``p_missing``, default 0.5), only ``umt`` uses
    ``distill_weight`` and only ``ume-mma`` fine-tunes. Equal effective configs share a cache key.
    """
    d = TrainConfig()
    changes: dict[str, Any] = {}
    if name in ("joint-mma", "ume-mma"):
        changes["p_missing"] = MMA_DEFAULT if config.p_missing is None else config.p_missing
    else:
        changes["p_missing"] = d.p_missing
    if name != "umt":
        changes["distill_weight"] = d.distill_weight
    if name != "ume-mma":
        changes["finetune_lr_scale"] = d.finetune_lr_scale
        changes["finetune_epochs"] = d.finetune_epochs
    return config.replace(**changes)


def _dims(encoders: Mapping[str, nn.Module], dataset: MultiModalDataset) -> dict[str, int]:
    return {m: feature_dim(e, tuple(dataset.train.inputs[m].shape[1:]))
            for m, e in encoders.items()}


def build_model(name: str, dataset: MultiModalDataset,
                factories: Mapping[str, Callable[[], nn.Module]]) -> nn.Module:
    """A freshly initialised model of the architecture method ``name`` trains."""
    if name == "early":
        shapes = {m: tuple(dataset.train.inputs[m].shape[1:]) for m in dataset.modalities}
        return EarlyFusionModel(shapes, dataset.num_classes)
    mods = _modalities_of(name, dataset)
    encoders = {m: factories[m]() for m in mods}
    dims = _dims(encoders, dataset)
    if name == "concat":
        return ConcatFusionModel(encoders, dataset.num_classes, dims)
    return LateFusionModel(encoders, dataset.num_classes, dims)


def _only(split: Split, modalities: list[str]) -> Split:
    return Split({m: split.inputs[m] for m in modalities}, split.labels, list(split.classes),
                 split.name, dict(split.meta))


def _tag(history: list[dict[str, Any]], stage: str) -> list[dict[str, Any]]:
    return [{**h, "stage": stage} for h in history]


class _Recipe:
    """Shared state of one ``run_method`` call: data, encoders, config, cache."""

    def __init__(self, name: str, dataset: MultiModalDataset, encoders: EncoderSpec | None,
                 config: TrainConfig, cache: bool, folder: Path | None) -> None:
        self.name, self.dataset, self.encoders = name, dataset, encoders
        self.factories = _factories(dataset, encoders)
        self.config, self.cache, self.folder = config, cache, folder
        self.device = resolve_device(config)
        self.history: list[dict[str, Any]] = []
        self.reused_seconds = 0.0
        self.nested_wall = 0.0
        self.unimodal_scores: dict[str, float] = {}

    def fresh(self, name: str) -> nn.Module:
        set_seed(self.config.seed)
        return build_model(name, self.dataset, self.factories)

    def fit(self, model: nn.Module, stage: str, data: Any, config: TrainConfig,
            **kwargs: Any) -> None:
        ckpt = self.folder / f"ckpt-{stage.replace(':', '_')}" if self.folder else None
        hist = fit(model, data, config, checkpoint_dir=ckpt, resume=ckpt is not None,
                   desc=f"{self.name} {stage}", **kwargs)
        self.history += _tag(hist, stage)

    def unimodal(self, m: str) -> nn.Module:
        """The uni-modal model of ``m``: from the run cache or trained now."""
        start = time.perf_counter()
        run = run_method(f"{UNIMODAL}:{m}", self.dataset, self.encoders, self.config,
                         cache=self.cache)
        self.nested_wall += time.perf_counter() - start
        self.history += [{**h, "reused": run.cached} for h in run.history]
        self.reused_seconds += float(run.result["train_seconds"])
        self.unimodal_scores[m] = float(run.result["scores"]["full"])
        return run.model

    def from_unimodal(self) -> LateFusionModel:
        """A late-fusion model whose encoder and head per modality come from uni-modal models."""
        model = self.fresh("joint")
        assert isinstance(model, LateFusionModel)
        for m in self.dataset.modalities:
            uni = self.unimodal(m)
            model.encoders[m].load_state_dict(uni.encoders[m].state_dict())
            model.heads[m].load_state_dict(uni.heads[m].state_dict())
        model.set_prior(self.dataset.train.labels)
        return model.to(self.device)


def _train_unimodal(r: _Recipe, m: str) -> nn.Module:
    cfg = r.config
    mask = training_presence(len(r.dataset.train), r.dataset.modalities, cfg.keep, cfg.seed)[m]
    idx = torch.nonzero(mask).squeeze(1)
    if len(idx) < 2:
        raise ValueError(f"unimodal:{m}: only {len(idx)} training samples have modality {m!r} "
                         f"(keep={cfg.keep}); a uni-modal model needs at least 2.")
    train = _only(r.dataset.train.subset(idx), [m])
    val = _only(r.dataset.validation, [m])
    model = r.fresh(f"{UNIMODAL}:{m}")
    r.fit(model, f"{UNIMODAL}:{m}", (train, val), cfg.replace(keep={}, p_missing=None))
    return model


def distillation_loss(teachers: Mapping[str, nn.Module], weight: float
                      ) -> Callable[[nn.Module, dict[str, Tensor], dict[str, Tensor], Tensor],
                                    Tensor]:
    """Task loss plus ``weight`` x MSE between student and frozen teacher features (UMT).

    The MSE of modality m averages over the samples where m is present. Notebook 06.
    """
    def loss(model: nn.Module, inputs: dict[str, Tensor], present: dict[str, Tensor],
             labels: Tensor) -> Tensor:
        logits, feats = model.forward_with_features(inputs, present)
        total = classification_loss(logits, labels)
        for m, teacher in teachers.items():
            with torch.no_grad():
                target = teacher(inputs[m]).float()
            per_sample = (feats[m].float() - target).pow(2).mean(dim=1)
            mask = present[m].to(per_sample.dtype)
            total = total + weight * (per_sample * mask).sum() / mask.sum().clamp(min=1.0)
        return total

    return loss


def _frozen_teacher(encoder: nn.Module, device: torch.device) -> nn.Module:
    return freeze(copy.deepcopy(encoder).to(device))


def _train(r: _Recipe) -> nn.Module:
    """Run the stages of method ``r.name``; return the trained model."""
    name, cfg, ds = r.name, r.config, r.dataset
    if name.startswith(f"{UNIMODAL}:"):
        return _train_unimodal(r, name.split(":", 1)[1])
    if name in ("early", "concat", "joint", "joint-mma"):
        model = r.fresh(name)
        r.fit(model, name, ds, cfg)
        return model
    if name == "ume":
        return r.from_unimodal()
    if name == "umt":
        teachers = r.from_unimodal()
        frozen = {m: _frozen_teacher(teachers.encoders[m], r.device) for m in ds.modalities}
        student = r.fresh("joint")
        r.fit(student, "distill", ds, cfg, loss=distillation_loss(frozen, cfg.distill_weight))
        return student
    if name == "ume-mma":
        model = r.from_unimodal()
        tune = cfg.replace(lr=cfg.lr * cfg.finetune_lr_scale,
                           epochs=cfg.finetune_epochs or cfg.epochs)
        r.fit(model, "finetune", ds, tune)
        return model
    raise ValueError(f"unknown method {name!r}")


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


def _resolve(name: str, dataset: MultiModalDataset, encoders: EncoderSpec | None,
             config: TrainConfig | None) -> tuple[TrainConfig, dict[str, str], str]:
    """The effective config, encoder identities and cache key of a run (nothing is loaded)."""
    check_method(name, dataset.modalities)
    cfg = method_config(name, (config or TrainConfig()).validate())
    unknown = sorted(set(cfg.keep) - set(dataset.modalities))
    if unknown:
        raise ValueError(f"TrainConfig.keep names modalities {unknown}; the data set has "
                         f"{dataset.modalities}.")
    ids = {m: i for m, i in _identities(dataset, encoders).items()
           if m in _modalities_of(name, dataset) and name != "early"}
    return cfg, ids, run_key(dataset.checksum, name, cfg.to_dict(), ids)


def _load_cached(name: str, dataset: MultiModalDataset, encoders: EncoderSpec | None,
                 folder: Path, device: torch.device) -> Run | None:
    cached = load_result(folder)
    if cached is None:
        return None
    model = build_model(name, dataset, _factories(dataset, encoders))
    load_weights(folder, model)
    return Run(model.to(device).eval(), cached["history"], cached, True, folder)


def cached_run(name: str, dataset: MultiModalDataset, encoders: EncoderSpec | None = None,
               config: TrainConfig | None = None) -> Run | None:
    """The run ``run_method`` would return from the run cache, or None; never trains."""
    cfg, _, key = _resolve(name, dataset, encoders, config)
    return _load_cached(name, dataset, encoders, cache_dir(dataset.name, name, key),
                        resolve_device(cfg))


def run_method(name: str, dataset: MultiModalDataset, encoders: EncoderSpec | None = None,
               config: TrainConfig | None = None, cache: bool = True) -> Run:
    """Train method ``name`` on ``dataset`` (or load it from the run cache) and score it.

    ``encoders`` maps modality -> factory (a zero-argument callable returning a module) or a
    module (deep-copied); missing modalities get :func:`default_encoders`. ``ume``, ``umt`` and
    ``ume-mma`` reuse the cached uni-modal runs. ``result`` holds the test scores under
    ``full`` and ``miss:<m>``, the missing-rate sweeps, AURC per sweep and ``train_seconds``.
    """
    cfg, ids, key = _resolve(name, dataset, encoders, config)
    folder = cache_dir(dataset.name, name, key) if cache else None
    device = resolve_device(cfg)
    if folder is not None:
        found = _load_cached(name, dataset, encoders, folder, device)
        if found is not None:
            return found

    recipe = _Recipe(name, dataset, encoders, cfg, cache, folder)
    start = time.perf_counter()
    model = _train(recipe).to(device).eval()
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "method": name, "dataset": dataset.name, "checksum": dataset.checksum, "key": key,
        "version": package_version(), "config": cfg.to_dict(), "encoders": ids,
        "train_seconds": seconds - recipe.nested_wall + recipe.reused_seconds,
        "history": recipe.history, "unimodal_scores": recipe.unimodal_scores,
        **summarize_model(model, dataset)}
    if folder is not None:
        save_run(folder, model, result)
        clear_checkpoints(folder)
    return Run(model, recipe.history, result, False, folder)
