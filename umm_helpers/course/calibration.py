"""Calibration of a classifier's posteriors: reliability bins, ECE, temperature (notebook 03).

Summing per-modality logits is the Bayes rule for modalities that are independent given the
label only if each branch's softmax is a calibrated posterior. A branch is *calibrated* when,
among the samples it predicts with confidence c, a fraction c is right. The reliability
diagram bins samples by confidence (the top-class probability) and plots accuracy against mean
confidence per bin; the expected calibration error (ECE) is the sample-weighted mean gap
between them (Guo, Pleiss, Sun, Weinberger, ICML 2017, arXiv 1706.04599). Temperature scaling
divides logits by one number T fitted on held-out data; it changes confidences, never the
argmax of a single branch, but it does change how much each branch weighs in a sum.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["Reliability", "reliability", "expected_calibration_error", "softmax", "nll",
           "fit_temperature", "reliability_diagram"]


def _as_numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch Tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{name} must be an array or a tensor, got {type(x).__name__}.")
    return arr


def _check(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    z = _as_numpy(logits, "logits").astype(np.float64)
    y = _as_numpy(labels, "labels")
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"logits must have shape [N, C] with C >= 2, got {z.shape}.")
    if y.ndim != 1 or len(y) != len(z):
        raise ValueError(f"labels must have shape [N] = [{len(z)}] (single-label), got "
                         f"{y.shape}.")
    if len(z) == 0:
        raise ValueError("calibration needs at least one sample.")
    if not np.isfinite(z).all():
        raise ValueError("logits contain NaN or inf.")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must be integers in [0, {z.shape[1] - 1}].")
    return z, y.astype(np.int64)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed stably."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Reliability:
    """Per-bin counts, mean confidence and accuracy (NaN where a bin is empty)."""

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def n(self) -> int:
        return int(self.count.sum())

    @property
    def ece(self) -> float:
        """Sum over bins of (bin size / N) * |accuracy - confidence|."""
        used = self.count > 0
        gap = np.abs(self.accuracy[used] - self.confidence[used])
        return float((self.count[used] * gap).sum() / self.n)


def reliability(logits: Any, labels: Any, n_bins: int = 10) -> Reliability:
    """Reliability bins of softmax(logits): bin b holds the samples whose top-class probability
    lies in ``(b/n_bins, (b+1)/n_bins]`` (the first bin also takes 0)."""
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}.")
    z, y = _check(logits, labels)
    p = softmax(z)
    conf = p.max(axis=1)
    right = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin b: edges[b] < conf <= edges[b + 1]
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, weights=conf, minlength=n_bins) / count
        accuracy = np.bincount(which, weights=right, minlength=n_bins) / count
    return Reliability(edges, count, confidence, accuracy)


def expected_calibration_error(logits: Any, labels: Any, n_bins: int = 10) -> float:
    """ECE of softmax(logits) with ``n_bins`` equal-width confidence bins."""
    return reliability(logits, labels, n_bins).ece


def nll(logits: Any, labels: Any, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of softmax(logits / temperature)."""
    z, y = _check(logits, labels)
    s = z / float(temperature)
    s = s - s.max(axis=1, keepdims=True)
    log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


def fit_temperature(logits: Any, labels: Any, bounds: tuple[float, float] = (0.05, 20.0)
                    ) -> float:
    """The temperature T in ``bounds`` minimising the NLL of softmax(logits / T) (fit it on
    held-out data, e.g. the validation split). Deterministic: a bounded 1-D search in log T."""
    from scipy.optimize import minimize_scalar

    lo, hi = bounds
    if not 0 < lo < hi:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}.")
    z, y = _check(logits, labels)
    res = minimize_scalar(lambda t: nll(z, y, float(np.exp(t))),
                          bounds=(np.log(lo), np.log(hi)), method="bounded",
                          options={"xatol": 1e-6})
    return float(np.exp(res.x))


def reliability_diagram(panels: Mapping[str, Mapping[str, Reliability]], title: str = ""
                        ) -> Figure:
    """One panel per model: accuracy against mean confidence per bin, one line per branch
    (label with its ECE), the diagonal = perfect calibration. Points below the diagonal are
    over-confident; a marker's area grows with its bin's share of the samples.
    ``panels[model][branch]`` is a :class:`Reliability`. The legend sits below each panel, outside
    the axes. Notebook 03."""
    if not panels or not all(panels.values()):
        raise ValueError("reliability_diagram needs at least one panel with one curve.")
    fig = Figure(figsize=(3.6 * len(panels), 3.9), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, curves) in zip(axes, panels.items()):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
        for label, rel in curves.items():
            used = rel.count > 0
            line, = ax.plot(rel.confidence[used], rel.accuracy[used],
                            label=f"{label} (ECE {rel.ece:.3f})")
            # marker area grows with the bin's share of samples: sparse bins are noisy
            ax.scatter(rel.confidence[used], rel.accuracy[used], color=line.get_color(),
                       s=6 + 120 * rel.count[used] / rel.n, zorder=3)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("mean confidence in bin")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    axes[0].set_ylabel("accuracy in bin")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
