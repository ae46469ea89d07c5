"""Scores under missing-modality conditions, AURC and the gap to the ceiling.

Taught in notebook 03 (conditions), 04 (AURC) and 06 (gap to ceiling); the sweeps and
``PatternLogits`` behind the sliders are in :mod:`umm_helpers.core.patterns`. Accuracy for
single-label data, macro-F1 for multi-label. Masks come from a seeded
:class:`~umm_helpers.core.missing.MaskTable`, so every method is scored on the same samples.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from umm_helpers.core.encoders import module_device
from umm_helpers.core.missing import (
    MaskTable,
    apply_presence,
    full_presence,
    standard_conditions,
)
from umm_helpers.data import Split

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
