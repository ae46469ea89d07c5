"""Every method, described as data: architecture, stage function, MMA default, options, colour.

Adding a method is one :class:`Method` entry in :data:`METHODS` plus, if none of the stage
functions of :mod:`umm_helpers.methods.recipes` fits, a new one. The command line, ``compare``,
the explorer, the plots' colours and the run cache all read this registry (notebooks 02-06).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from umm_helpers.engine.config import TrainConfig, is_int, is_number
from umm_helpers.methods import recipes

UNIMODAL = "unimodal"


@dataclass(frozen=True)
class Option:
    """A method option: its default, a check, and what the check expects (for the error)."""

    default: Any
    valid: Callable[[Any], bool]
    expected: str


@dataclass(frozen=True)
class Method:
    """One method. ``mma_default`` is None for methods that never drop modalities while
    training; ``uses_unimodal`` marks methods built from the ``unimodal:<m>`` runs."""

    name: str
    summary: str
    architecture: str
    train: Callable[[recipes.Recipe], nn.Module]
    color: str
    notebook: str
    mma_default: float | None = None
    uses_unimodal: bool = False
    options: Mapping[str, Option] = field(default_factory=dict)

    @property
    def uses_mma(self) -> bool:
        return self.mma_default is not None


MMA_DEFAULT = 0.5
# How MMA drops modalities (option ``mma``): "drop-one" removes one present modality,
# "subsets" a non-empty proper subset of them, so that with three or more modalities the
# single-modality patterns are trained too (notebook 07 measures both).
_MMA_RULE = {"mma": Option(recipes.MMA_RULES[0], lambda v: v in recipes.MMA_RULES,
                           f"one of {list(recipes.MMA_RULES)}")}
# The fine-tuning schedule of the methods that start from the uni-modal models.
_FINETUNE = {"finetune_lr_scale": Option(0.3, lambda v: is_number(v) and v > 0, "a number > 0"),
             "finetune_epochs": Option(None, lambda v: v is None or (is_int(v) and v >= 1),
                                       "None (= epochs) or an integer >= 1")}

METHODS: dict[str, Method] = {m.name: m for m in [
    Method(UNIMODAL, "encoder + linear head trained on modality m alone (unimodal:<m>)", "late",
           recipes.train_unimodal, "#7f7f7f", "02"),
    Method("early", "inputs flattened and concatenated -> MLP", "early",
           recipes.train_from_scratch, "#8c564b", "03"),
    Method("concat", "encoders -> concatenated features -> MLP head", "concat",
           recipes.train_from_scratch, "#9467bd", "03"),
    Method("joint", "late fusion (sum of per-modality logits) trained end to end", "late",
           recipes.train_from_scratch, "#d62728", "03"),
    Method("joint-mma", "joint late fusion trained with MMA from scratch", "late",
           recipes.train_from_scratch, "#ff7f0e", "04", mma_default=MMA_DEFAULT,
           options=_MMA_RULE),
    Method("ume", "independently trained uni-modal models, logits summed", "late",
           recipes.ensemble_unimodal, "#1f77b4", "03", uses_unimodal=True),
    Method("umt", "joint late fusion + distillation from frozen uni-modal encoders", "late",
           recipes.distill_from_unimodal, "#17becf", "03", uses_unimodal=True,
           options={"distill_weight": Option(1.0, lambda v: is_number(v) and v >= 0,
                                             "a number >= 0")}),
    Method("ume-mma", "late fusion from the uni-modal models, fine-tuned with MMA", "late",
           recipes.finetune_from_unimodal, "#2ca02c", "04", mma_default=MMA_DEFAULT,
           uses_unimodal=True, options={**_FINETUNE, **_MMA_RULE}),
    Method("pattern-heads", "uni-modal encoders, a head per presence pattern, fine-tuned with "
           "MMA over any proper subset", "patterns", recipes.heads_from_unimodal, "#393b79", "08",
           mma_default=MMA_DEFAULT, uses_unimodal=True, options=_FINETUNE),
]}


def all_methods(modalities: Sequence[str]) -> list[str]:
    """``unimodal:<m>`` for each modality, then every other registered method."""
    return ([f"{UNIMODAL}:{m}" for m in sorted(modalities)]
            + [name for name in METHODS if name != UNIMODAL])


def get_method(name: str, modalities: Sequence[str]) -> tuple[Method, list[str]]:
    """The registry entry of ``name`` and the modalities its model reads."""
    family, _, modality = name.partition(":")
    if family == UNIMODAL and modality in modalities:
        return METHODS[UNIMODAL], [modality]
    if name in METHODS and name != UNIMODAL:
        return METHODS[name], list(modalities)
    raise ValueError(f"unknown method {name!r}; available: {all_methods(modalities)}.")


def method_config(name: str, config: TrainConfig) -> TrainConfig:
    """The config a method actually uses: ``p_missing`` is the method's MMA default when None,
    and None for methods without MMA, so equal effective configs share a cache key."""
    method = METHODS[name.partition(":")[0]]
    if not method.uses_mma:
        return config.replace(p_missing=None)
    return config.replace(p_missing=method.mma_default if config.p_missing is None
                          else config.p_missing)


def method_options(name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options of ``name``, defaults filled in; an unknown or bad option is refused."""
    method = METHODS[name.partition(":")[0]]
    given = dict(options or {})
    unknown = sorted(set(given) - set(method.options))
    if unknown:
        accepted = sorted(method.options) or "none"
        raise ValueError(f"method {name!r} has no option {unknown[0]!r}; its options: "
                         f"{accepted}.")
    out = {}
    for key, option in method.options.items():
        value = given.get(key, option.default)
        if not option.valid(value):
            raise ValueError(f"option {key} = {value!r} of method {name!r} is invalid: "
                             f"expected {option.expected}.")
        out[key] = value
    return out


# The uni-modal runs share the registry's grey family, one shade per modality, so that their
# curves can be told apart.
UNIMODAL_SHADES = ("#7f7f7f", "#bcbd22", "#e377c2", "#525252")


def method_colors(names: Sequence[str]) -> dict[str, str]:
    """The registry colour of each method name; ``unimodal:<m>`` get one shade each."""
    out, shades = {}, itertools.cycle(UNIMODAL_SHADES)
    for n in names:
        family = n.partition(":")[0]
        out[n] = (next(shades) if family == UNIMODAL
                  else METHODS[family].color if family in METHODS else "#000000")
    return out
