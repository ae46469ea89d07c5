"""Scores under missing-modality conditions, sweeps, AURC and ``PatternLogits``.

Taught in notebook 03 (conditions), 04 (sweeps, AURC), 05 (``PatternLogits`` behind the
sliders) and 06 (gap to ceiling). Accuracy for single-label data, macro-F1 for multi-label.
Masks come from a seeded :class:`~umm_helpers.missing.MaskTable`, so every method is scored on
the same samples.
"""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from umm_helpers.data import Split
from umm_helpers.encoders import module_device
from umm_helpers.missing import (DEFAULT_RATES, MaskTable, apply_presence, array_to_presence,
                                 full_presence, standard_conditions, sweep_conditions)

EVAL_BATCH = 1024


@torch.no_grad()
def predict_logits(model: nn.Module, split: Split, present: Mapping[str, Tensor] | None = None,
                   batch_size: int = EVAL_BATCH) -> Tensor:
    """Logits ``[N, C]`` (float32, CPU) of ``model`` in eval mode, absent inputs zero-filled."""
    device = module_device(model)
    n = len(split)
    present = present if present is not None else full_presence(n, split.modalities)
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            x = {m: split.inputs[m][sl].to(device, non_blocking=True) for m in split.modalities}
            p = {m: present[m][sl].to(device) for m in split.modalities}
            x, p = apply_presence(x, p)
            out.append(model(x, p).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


def macro_f1(pred: Tensor, labels: Tensor) -> float:
    """Macro-averaged F1 of boolean predictions ``[N, C]`` against 0/1 labels."""
    pred, y = pred.bool(), labels.bool()
    tp = (pred & y).sum(0).double()
    fp = (pred & ~y).sum(0).double()
    fn = (~pred & y).sum(0).double()
    denom = 2 * tp + fp + fn
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.ones_like(denom))
    return float(f1.mean())


def score_logits(logits: Tensor, labels: Tensor) -> float:
    """Accuracy (labels ``[N]``) or macro-F1 (labels ``[N, C]``, threshold logit 0)."""
    labels = labels.to(logits.device)
    if labels.ndim == 2:
        return macro_f1(logits > 0, labels)
    return float((logits.argmax(dim=1) == labels).double().mean())


def metric_name(split: Split) -> str:
    return "macro_f1" if split.multilabel else "accuracy"


def evaluate(model: nn.Module, split: Split, conditions: Sequence[str] | None = None,
             seed: int = 0, batch_size: int = EVAL_BATCH) -> dict[str, float]:
    """``{condition: score}`` on ``split`` (default: ``full`` and ``miss:<m>``). Notebook 03."""
    conditions = list(conditions) if conditions is not None else standard_conditions(
        split.modalities)
    table = MaskTable.create(len(split), split.modalities, seed)
    return {c: score_logits(predict_logits(model, split, table.presence(c), batch_size),
                            split.labels)
            for c in conditions}


def aurc(rates: Sequence[float], scores: Sequence[float]) -> float:
    """Area under the score-vs-missing-rate curve over r in [0, 1] (trapezoid). Notebook 04."""
    r = np.asarray(rates, dtype=float)
    s = np.asarray(scores, dtype=float)
    if r.shape != s.shape or r.ndim != 1 or len(r) < 2:
        raise ValueError(f"aurc needs matching 1-D rates and scores with >= 2 points, got "
                         f"{r.shape} and {s.shape}.")
    if np.any(np.diff(r) <= 0) or not (np.isclose(r[0], 0.0) and np.isclose(r[-1], 1.0)):
        raise ValueError(f"aurc needs increasing rates from 0 to 1, got {r.tolist()}.")
    return float(np.sum((s[1:] + s[:-1]) / 2 * np.diff(r)))


def gap_to_ceiling(scores: Mapping[str, float], unimodal_scores: Mapping[str, float]
                   ) -> dict[str, float]:
    """``miss:<m>`` score minus the ceiling set by the remaining modalities. Notebook 06.

    ``unimodal_scores`` maps modality -> the uni-modal model's full-data score. The ceiling of
    ``miss:<m>`` is the best uni-modal score among the other modalities (with two modalities:
    exactly the uni-modal model of the remaining one).
    """
    out = {}
    for m in sorted(unimodal_scores):
        others = [unimodal_scores[o] for o in unimodal_scores if o != m]
        key = f"miss:{m}"
        if others and key in scores:
            out[key] = float(scores[key]) - max(others)
    return out


@dataclass
class PatternLogits:
    """Logits of a model for every presence pattern, so any mask scores instantly.

    ``patterns[p, j]`` tells whether modality j (sorted order) is present in pattern p; pattern
    p has bit j set iff modality j is present, so pattern 0 (all absent) gives the prior.
    ``logits`` has shape ``[P, N, C]``. Notebook 05 drives its sliders with this.
    """

    modalities: tuple[str, ...]
    patterns: np.ndarray
    logits: Tensor
    labels: Tensor
    _correct: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _pred: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def compute(cls, model: nn.Module, split: Split, batch_size: int = EVAL_BATCH
                ) -> "PatternLogits":
        mods = tuple(split.modalities)
        n, m = len(split), len(mods)
        patterns = np.array([[(p >> j) & 1 == 1 for j in range(m)] for p in range(2 ** m)],
                            dtype=bool)
        logits = []
        for pat in patterns:
            pres = array_to_presence(np.broadcast_to(pat, (n, m)), mods)
            logits.append(predict_logits(model, split, pres, batch_size))
        return cls(mods, patterns, torch.stack(logits), split.labels.detach().cpu())

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    def _cache(self) -> None:
        if self._pred is not None:
            return
        if self.multilabel:
            self._pred = (self.logits > 0).numpy()
        else:
            self._pred = self.logits.argmax(dim=2).numpy()
            self._correct = self._pred == self.labels.numpy()[None, :]

    def pattern_index(self, presence: np.ndarray) -> np.ndarray:
        """Pattern number ``[N]`` of a boolean presence array ``[N, M]``."""
        pres = np.asarray(presence, dtype=bool)
        if pres.shape != (self.logits.shape[1], len(self.modalities)):
            raise ValueError(f"presence array has shape {pres.shape}, expected "
                             f"{(self.logits.shape[1], len(self.modalities))} (samples, "
                             f"modalities {list(self.modalities)}).")
        return (pres.astype(np.int64) << np.arange(pres.shape[1])).sum(axis=1)

    def predict(self, presence: np.ndarray) -> Tensor:
        """Logits ``[N, C]`` for a presence array ``[N, M]``."""
        idx = torch.as_tensor(self.pattern_index(presence))
        return self.logits[idx, torch.arange(self.logits.shape[1])]

    def score(self, presence: np.ndarray) -> float:
        """Accuracy (or macro-F1) under a presence array ``[N, M]``."""
        self._cache()
        idx = self.pattern_index(presence)
        rows = np.arange(len(idx))
        if self.multilabel:
            assert self._pred is not None
            return macro_f1(torch.as_tensor(self._pred[idx, rows]), self.labels)
        assert self._correct is not None
        return float(self._correct[idx, rows].mean())

    def condition_score(self, condition: str, table: MaskTable) -> float:
        """Score under a condition string, masks from ``table``."""
        return self.score(table.presence_array(condition))

    def accuracy_for_rates(self, rates: Mapping[str, float], table: MaskTable) -> float:
        """Score when each modality m is lost independently at rate ``rates[m]``."""
        return self.score(table.rates_presence(rates))


def sweep(model: nn.Module | PatternLogits, split: Split, rates: Sequence[float] = DEFAULT_RATES,
          seed: int = 0) -> dict[str, list[float]]:
    """Scores along ``rate:<m>:<r>`` per modality and ``rate:any:<r>``. Notebook 04."""
    pats = model if isinstance(model, PatternLogits) else PatternLogits.compute(model, split)
    table = MaskTable.create(len(split), split.modalities, seed)
    return {key: [pats.condition_score(c, table) for c in conds]
            for key, conds in sweep_conditions(split.modalities, rates).items()}


class _CallableModule(types.ModuleType):
    """Lets ``umm.evaluate(model, split, ...)`` work although this module is also named
    ``evaluate``: importing a submodule binds it on the package, hiding a function of the same
    name, so the module itself forwards calls to :func:`evaluate`."""

    def __call__(self, model: nn.Module, split: Split, conditions: Sequence[str] | None = None,
                 seed: int = 0, batch_size: int = EVAL_BATCH) -> dict[str, float]:
        return evaluate(model, split, conditions, seed, batch_size)


sys.modules[__name__].__class__ = _CallableModule
