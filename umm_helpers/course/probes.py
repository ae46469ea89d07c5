"""Linear probes on frozen encoder features (notebook 02: modality laziness).

A linear probe measures how much label information an encoder's features carry *linearly*:
freeze the encoder, compute its features on the training split, fit a logistic regression on
them and score it on the test split. Comparing the probe accuracy of an encoder trained alone
(``unimodal:<m>``) with the same modality's encoder taken from a jointly trained multi-modal
model (``joint``) shows whether joint training under-learned that modality.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from torch import nn

from umm_helpers.core.encoders import module_device
from umm_helpers.data import MultiModalDataset, Split
from umm_helpers.methods.feature_cache import encode

PROBE_BATCH = 1024


def _encoder_of(model: nn.Module, modality: str) -> nn.Module:
    encoders = getattr(model, "encoders", None)
    if not isinstance(encoders, Mapping) and not isinstance(encoders, nn.ModuleDict):
        raise TypeError(f"{type(model).__name__} has no `encoders` dict; pass a model with "
                        "per-modality encoders (LateFusionModel, ConcatFusionModel) or the "
                        "encoder module itself.")
    if modality not in encoders:
        raise ValueError(f"model has no encoder for modality {modality!r}; it has "
                         f"{sorted(encoders)}.")
    return encoders[modality]


def encoder_features(encoder: nn.Module, split: Split, modality: str,
                     batch_size: int = PROBE_BATCH) -> np.ndarray:
    """Features ``[N, F]`` (float64 NumPy) of a frozen encoder in eval mode on one modality.

    ``encoder`` is an encoder module or a model with an ``encoders`` dict. The module's
    train/eval state is restored afterwards; no parameter changes.
    """
    if not isinstance(encoder, nn.Module):
        raise TypeError(f"encoder must be an nn.Module, got {type(encoder).__name__}.")
    if hasattr(encoder, "encoders"):
        encoder = _encoder_of(encoder, modality)
    if modality not in split.inputs:
        raise ValueError(f"split has no modality {modality!r}; it has {split.modalities}.")
    x = split.inputs[modality]
    return encode(encoder, x, batch_size, device=module_device(encoder)).double().numpy()


def linear_probe(train_features: np.ndarray, train_labels: np.ndarray,
                 test_features: np.ndarray, test_labels: np.ndarray, c: float = 1.0,
                 max_iter: int = 2000) -> float:
    """Test accuracy of a logistic regression fitted on standardised training features.

    Standardisation uses training statistics only. The fit is deterministic (lbfgs).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, xte = np.asarray(train_features), np.asarray(test_features)
    ytr, yte = np.asarray(train_labels), np.asarray(test_labels)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"features must be [N, F] with the same F, got {xtr.shape} and "
                         f"{xte.shape}.")
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError("features and labels must have the same number of rows.")
    if ytr.ndim != 1:
        raise ValueError("linear_probe supports single-label data (labels [N]).")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    clf.fit(xtr, ytr)
    return float((clf.predict(xte) == yte).mean())


def probe_accuracy(model: nn.Module, dataset: MultiModalDataset, modality: str,
                   c: float = 1.0) -> float:
    """Linear-probe test accuracy of ``model``'s encoder of ``modality`` (fit on train)."""
    feats = {name: encoder_features(model, split, modality)
             for name, split in (("train", dataset.train), ("test", dataset.test))}
    return linear_probe(feats["train"], dataset.train.labels.cpu().numpy(),
                        feats["test"], dataset.test.labels.cpu().numpy(), c=c)
