"""The stages methods are made of: each a few lines over the one engine (notebooks 02-06).

A stage function takes the :class:`Recipe` of one ``run_method`` call and returns the trained
model. The registry (:mod:`umm_helpers.methods.registry`) names which stage function each
method runs, so adding a method is one registry entry plus, if it needs one, a stage function.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from umm_helpers.core.encoders import default_encoders, feature_dim, freeze
from umm_helpers.core.fusion import (
    ConcatFusionModel,
    EarlyFusionModel,
    LateFusionModel,
    PatternHeadsModel,
    pattern_key,
)
from umm_helpers.core.missing import mma_presence, training_presence
from umm_helpers.data import MultiModalDataset, Split
from umm_helpers.engine.config import TrainConfig, resolve_device
from umm_helpers.engine.trainer import LossFn, PresenceFn, classification_loss, fit
from umm_helpers.settings import set_seed

EncoderSpec = Mapping[str, Callable[[], nn.Module] | nn.Module]
ARCHITECTURES = ("late", "concat", "early", "patterns")
MMA_RULES = ("drop-one", "subsets")


def encoder_factories(dataset: MultiModalDataset, encoders: EncoderSpec | None
                      ) -> dict[str, Callable[[], nn.Module]]:
    """Modality -> zero-argument factory: the given ones (a module is deep-copied), else the
    default encoders."""
    out: dict[str, Callable[[], nn.Module]] = dict(default_encoders(dataset))
    for m, spec in (encoders or {}).items():
        if m not in out:
            raise ValueError(f"encoders has modality {m!r}; the data set has "
                             f"{dataset.modalities}.")
        out[m] = _copies_of(spec) if isinstance(spec, nn.Module) else _modules_from(m, spec)
    return out


def _modules_from(m: str, factory: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """``factory``, refusing (``TypeError`` naming modality ``m``) anything but a module."""
    def make() -> nn.Module:
        module = factory()
        if not isinstance(module, nn.Module):
            raise TypeError(f"encoders[{m!r}] returned {type(module).__name__}; an encoder "
                            "factory must return an nn.Module (e.g. a class whose instances "
                            "map [B, ...] inputs to [B, F] features).")
        return module
    return make


def _copies_of(module: nn.Module) -> Callable[[], nn.Module]:
    """A factory of fresh deep copies of ``module`` (every run trains its own copy)."""
    return lambda: copy.deepcopy(module)


def build_model(architecture: str, modalities: Sequence[str], dataset: MultiModalDataset,
                factories: Mapping[str, Callable[[], nn.Module]]) -> nn.Module:
    """A freshly initialised model: ``late`` (sum of per-modality logits), ``concat``,
    ``early`` fusion, or ``patterns`` (a head per presence pattern) over ``modalities``."""
    if architecture == "early":
        shapes = {m: tuple(dataset.train.inputs[m].shape[1:]) for m in dataset.modalities}
        return EarlyFusionModel(shapes, dataset.num_classes)
    encoders = {m: factories[m]() for m in modalities}
    dims = {m: feature_dim(e, tuple(dataset.train.inputs[m].shape[1:]))
            for m, e in encoders.items()}
    if architecture == "concat":
        return ConcatFusionModel(encoders, dataset.num_classes, dims)
    if architecture == "late":
        return LateFusionModel(encoders, dataset.num_classes, dims)
    if architecture == "patterns":
        return PatternHeadsModel(encoders, dataset.num_classes, dims)
    raise ValueError(f"unknown architecture {architecture!r}; expected one of {ARCHITECTURES}.")


def only(split: Split, modalities: list[str]) -> Split:
    """``split`` restricted to ``modalities``."""
    return Split({m: split.inputs[m] for m in modalities}, split.labels, list(split.classes),
                 split.name, dict(split.meta))


class Recipe:
    """Shared state of one ``run_method`` call: data, encoders, config, options, history.

    ``unimodal_run(m)`` returns the cached-or-trained run of ``unimodal:<m>`` (given by
    ``run_method``, which owns the run cache).
    """

    def __init__(self, name: str, architecture: str, modalities: list[str],
                 dataset: MultiModalDataset, encoders: EncoderSpec | None, config: TrainConfig,
                 options: Mapping[str, Any], folder: Any,
                 unimodal_run: Callable[[str], Any]) -> None:
        self.name, self.architecture, self.modalities = name, architecture, modalities
        self.dataset, self.config, self.options = dataset, config, dict(options)
        self.factories = encoder_factories(dataset, encoders)
        self.folder, self.unimodal_run = folder, unimodal_run
        self.device = resolve_device(config)
        self.history: list[dict[str, Any]] = []
        self.reused_seconds = 0.0
        self.nested_wall = 0.0
        self.unimodal_scores: dict[str, float] = {}

    def fresh(self, architecture: str | None = None, modalities: list[str] | None = None
              ) -> nn.Module:
        """A new model, initialised from ``config.seed``."""
        set_seed(self.config.seed)
        return build_model(architecture or self.architecture, modalities or self.modalities,
                           self.dataset, self.factories)

    def fit(self, model: nn.Module, stage: str, data: Any, config: TrainConfig,
            loss: LossFn | None = None, presence_fn: PresenceFn | None = None) -> None:
        """Train one stage (checkpointed in the run's folder, resumable)."""
        ckpt = self.folder / f"ckpt-{stage.replace(':', '_')}" if self.folder else None
        hist = fit(model, data, config, loss=loss, presence_fn=presence_fn, checkpoint_dir=ckpt,
                   resume=ckpt is not None, desc=f"{self.name} {stage}")
        self.history += [{**h, "stage": stage} for h in hist]

    def unimodal(self, m: str) -> nn.Module:
        """The uni-modal model of ``m``: from the run cache or trained now."""
        start = time.perf_counter()
        run = self.unimodal_run(m)
        self.nested_wall += time.perf_counter() - start
        self.history += [{**h, "reused": run.cached} for h in run.history]
        self.reused_seconds += float(run.result["train_seconds"])
        self.unimodal_scores[m] = float(run.result["scores"]["full"])
        return run.model

    def from_unimodal(self) -> LateFusionModel:
        """A late-fusion model whose encoder and head per modality come from uni-modal models."""
        model = self.fresh("late", self.dataset.modalities)
        assert isinstance(model, LateFusionModel)
        for m in self.dataset.modalities:
            uni = self.unimodal(m)
            assert isinstance(uni, LateFusionModel)
            model.encoders[m].load_state_dict(uni.encoders[m].state_dict())
            model.heads[m].load_state_dict(uni.heads[m].state_dict())
        model.set_prior(self.dataset.train.labels)
        return model.to(self.device)


# --- stage functions ---------------------------------------------------------------------------

def train_unimodal(r: Recipe) -> nn.Module:
    """``unimodal:<m>``: encoder + linear head on the training samples that have m."""
    (m,) = r.modalities
    cfg = r.config
    mask = training_presence(len(r.dataset.train), r.dataset.modalities, cfg.keep, cfg.seed)[m]
    idx = torch.nonzero(mask).squeeze(1)
    if len(idx) < 2:
        raise ValueError(f"unimodal:{m}: only {len(idx)} training samples have modality {m!r} "
                         f"(keep={cfg.keep}); a uni-modal model needs at least 2.")
    train = only(r.dataset.train.subset(idx), [m])
    val = only(r.dataset.validation, [m])
    model = r.fresh()
    r.fit(model, r.name, (train, val), cfg.replace(keep={}, p_missing=None))
    return model


def subset_mma(p_missing: float) -> PresenceFn:
    """MMA that drops a uniformly chosen non-empty proper subset of the present modalities
    (with probability ``p_missing`` per sample), as a ``presence_fn`` for the engine."""
    def any_subset(present: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
        return mma_presence(present, p_missing, generator, subsets=True)

    return any_subset


def mma_rule(r: Recipe) -> PresenceFn | None:
    """The ``presence_fn`` of the run's MMA rule (option ``mma``): None for ``"drop-one"`` (the
    engine's own MMA at ``p_missing``), :func:`subset_mma` for ``"subsets"``. Notebook 07."""
    rule = r.options.get("mma", MMA_RULES[0])
    if rule not in MMA_RULES:
        raise ValueError(f"option mma = {rule!r} of method {r.name!r} is invalid: expected one "
                         f"of {list(MMA_RULES)}.")
    return subset_mma(float(r.config.p_missing or 0.0)) if rule == "subsets" else None


def train_from_scratch(r: Recipe) -> nn.Module:
    """``early``, ``concat``, ``joint``, ``joint-mma`` (MMA rule: option ``mma``): one stage on
    every modality."""
    model = r.fresh()
    r.fit(model, r.name, r.dataset, r.config, presence_fn=mma_rule(r))
    return model


def ensemble_unimodal(r: Recipe) -> nn.Module:
    """``ume``: the uni-modal models, logits summed over the present modalities."""
    return r.from_unimodal()


def distillation_loss(teachers: Mapping[str, nn.Module], weight: float) -> LossFn:
    """Task loss plus ``weight`` x MSE between student and frozen teacher features (UMT).

    The MSE of modality m averages over the samples where m is present. Notebook 06.
    """
    def loss(model: nn.Module, inputs: dict[str, Tensor], present: dict[str, Tensor],
             labels: Tensor) -> Tensor:
        logits, feats = model(inputs, present, with_features=True)
        total = classification_loss(logits, labels)
        for m, teacher in teachers.items():
            with torch.no_grad():
                target = teacher(inputs[m]).float()
            per_sample = (feats[m].float() - target).pow(2).mean(dim=1)
            mask = present[m].to(per_sample.dtype)
            total = total + weight * (per_sample * mask).sum() / mask.sum().clamp(min=1.0)
        return total

    return loss


def distill_from_unimodal(r: Recipe) -> nn.Module:
    """``umt``: joint late fusion trained with feature distillation from frozen uni-modal
    encoders (option ``distill_weight``)."""
    teachers = r.from_unimodal()
    frozen = {m: freeze(copy.deepcopy(teachers.encoders[m]).to(r.device))
              for m in r.dataset.modalities}
    student = r.fresh()
    r.fit(student, "distill", r.dataset, r.config,
          loss=distillation_loss(frozen, r.options["distill_weight"]))
    return student


def finetune_from_unimodal(r: Recipe) -> nn.Module:
    """``ume-mma``: late fusion initialised from the uni-modal models, fine-tuned with MMA (rule:
    option ``mma``) at ``finetune_lr_scale`` x lr for ``finetune_epochs`` (None: ``epochs``)."""
    model = r.from_unimodal()
    r.fit(model, "finetune", r.dataset, _finetune_config(r), presence_fn=mma_rule(r))
    return model


def _finetune_config(r: Recipe) -> TrainConfig:
    """The fine-tuning stage's config: ``finetune_lr_scale`` x lr for ``finetune_epochs``."""
    return r.config.replace(lr=r.config.lr * r.options["finetune_lr_scale"],
                            epochs=r.options["finetune_epochs"] or r.config.epochs)


def _linear(module: nn.Module) -> nn.Linear:
    assert isinstance(module, nn.Linear)
    return module


def heads_from_unimodal(r: Recipe) -> nn.Module:
    """``pattern-heads``: encoders from the uni-modal models and a head per presence pattern,
    fine-tuned with MMA that drops any non-empty proper subset of the present modalities.

    A single-modality pattern starts from that modality's uni-modal head; a multi-modality
    pattern's head starts as the concatenation of its modalities' heads (biases summed), so
    before fine-tuning the model is exactly ``ume``. Notebook 08.
    """
    late = r.from_unimodal()
    model = r.fresh()
    assert isinstance(model, PatternHeadsModel)
    with torch.no_grad():
        for m in model.modalities:
            model.encoders[m].load_state_dict(late.encoders[m].state_dict())
        for pattern in model.patterns:
            parts = [_linear(late.heads[m]) for m in pattern]
            head = _linear(model.heads[pattern_key(pattern)])
            head.weight.copy_(torch.cat([h.weight for h in parts], dim=1))
            head.bias.copy_(torch.stack([h.bias for h in parts]).sum(dim=0))
    model.set_prior(r.dataset.train.labels)
    r.fit(model.to(r.device), "finetune", r.dataset, _finetune_config(r),
          presence_fn=subset_mma(float(r.config.p_missing or 0.0)))
    return model
