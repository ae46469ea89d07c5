"""2-D projections of encoder features, coloured by class (notebook 02).

Notebook 02 compares what an encoder trained on one modality alone (``unimodal:<m>``) and the
same modality's encoder inside a jointly trained late-fusion model (``joint``) make of their
input. :func:`project` is a deterministic principal-component projection of a feature matrix to
two dimensions plus two numbers that say how much of the picture is trustworthy and how well the
classes separate in it; :func:`projection_grid` draws a grid of such projections.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure


@dataclass(frozen=True)
class Projection:
    """``points`` ``[N, 2]``: the features on their first two principal axes;
    ``explained``: the fraction of the feature variance each axis holds (``[2]``);
    ``separation``: between-class over total sum of squares of ``points`` (0: classes
    indistinguishable in the picture, 1: each class collapsed onto its own point)."""

    points: np.ndarray
    explained: np.ndarray
    separation: float


def pca_2d(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project ``features`` ``[N, F]`` onto their first two principal axes.

    Returns ``(points [N, 2], explained [2])``. The features are centred (not scaled); the axes
    come from an SVD of the centred matrix, and each axis's sign is fixed so that its largest
    loading (in absolute value) is positive, so the result is deterministic. ``F == 1`` gives a
    zero second axis.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be [N, F], got shape {x.shape}.")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 samples to find principal axes, got {x.shape[0]}.")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values.")
    centred = x - x.mean(axis=0, keepdims=True)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2]
    rows = np.arange(axes.shape[0])
    signs = np.sign(axes[rows, np.abs(axes).argmax(axis=1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
    points = centred @ axes.T
    total = float((sv**2).sum())
    explained = (sv[:2] ** 2) / total if total > 0 else np.zeros(len(sv[:2]))
    if points.shape[1] == 1:
        points = np.concatenate([points, np.zeros_like(points)], axis=1)
        explained = np.concatenate([explained, [0.0]])
    return points, explained


def class_separation(points: np.ndarray, labels: np.ndarray) -> float:
    """Between-class sum of squares over the total sum of squares of ``points`` ``[N, D]``.

    The share of the spread in the picture that the class means explain (the R² of predicting
    each point by its class mean): 0 when every class has the same mean, 1 when every point sits
    on its class mean. Returns 0 for points with no spread at all.
    """
    p = np.asarray(points, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or y.ndim != 1 or len(p) != len(y):
        raise ValueError(f"points must be [N, D] and labels [N], got {p.shape} and {y.shape}.")
    centred = p - p.mean(axis=0, keepdims=True)
    total = float((centred**2).sum())
    if total == 0.0:
        return 0.0
    between = sum(float((y == k).sum()) * float((centred[y == k].mean(axis=0) ** 2).sum())
                  for k in np.unique(y))
    return between / total


def project(features: np.ndarray, labels: np.ndarray) -> Projection:
    """:func:`pca_2d` of ``features`` with the :func:`class_separation` of the result."""
    points, explained = pca_2d(features)
    return Projection(points, explained, class_separation(points, labels))


def projection_grid(projections: Mapping[str, Mapping[str, Projection]], labels: np.ndarray,
                    classes: Sequence[str], title: str = "") -> Figure:
    """A grid of 2-D projections: one row per key of ``projections`` (e.g. a modality), one
    column per inner key (e.g. ``"unimodal"``, ``"joint"``), points coloured by class.

    Each panel's title gives the variance its two axes hold and the class separation. The class
    legend sits outside the grid, so that it never covers points.
    """
    rows = list(projections)
    if not rows:
        raise ValueError("give at least one row of projections.")
    cols = list(dict.fromkeys(c for r in rows for c in projections[r]))
    y = np.asarray(labels)
    fig = Figure(figsize=(3.1 * len(cols) + 1.3, 2.9 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), len(cols), squeeze=False)
    colours = [f"C{k % 10}" for k in range(len(classes))]
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ax = axes[i][j]
            proj = projections[r].get(c)
            if proj is None:
                ax.set_axis_off()
                continue
            if len(proj.points) != len(y):
                raise ValueError(f"{r}/{c}: {len(proj.points)} points but {len(y)} labels.")
            for k, name in enumerate(classes):
                pts = proj.points[y == k]
                ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.6, color=colours[k],
                           label=str(name))
            ax.set_title(f"{r}, {c}\naxes hold {100 * proj.explained.sum():.0f}% of variance; "
                         f"separation {proj.separation:.2f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel("PC 2")
            if i == len(rows) - 1:
                ax.set_xlabel("PC 1")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, title="class", fontsize=7, markerscale=3, loc="outside right upper")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
