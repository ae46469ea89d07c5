"""Accuracy per group of samples (e.g. per voice) and how wide an estimate from a few groups is
(notebook 02: why the audio model scores higher on validation than on test).

AV-Digits splits its voices between train, validation and test, so a split's accuracy is an
average over its voices, and voices differ a lot in difficulty. :func:`per_group` gives the
accuracy of each group; :func:`subset_accuracies` the accuracies a split made of ``k`` of the
given groups could have shown; :func:`group_strip` draws the groups of several splits side by side.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure


def _check(correct: np.ndarray, groups: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(correct, dtype=np.float64)
    if c.ndim == 2:  # [seeds, N]: each sample's accuracy averaged over the seeds
        c = c.mean(axis=0)
    g = np.asarray(groups).astype(str)
    if c.ndim != 1 or g.ndim != 1 or len(c) != len(g):
        raise ValueError(f"correct must be [N] or [seeds, N] and groups [N]; got "
                         f"{np.shape(correct)} and {np.shape(groups)}.")
    if len(c) == 0:
        raise ValueError("no samples.")
    if ((c < 0) | (c > 1)).any():
        raise ValueError("correct holds 0/1 (or per-sample accuracies in [0, 1]).")
    return c, g


def per_group(correct: np.ndarray, groups: Sequence[str]) -> dict[str, tuple[float, int]]:
    """``{group: (accuracy, number of samples)}``, groups in sorted order.

    ``correct`` is ``[N]`` (1 for a correct prediction, 0 otherwise) or ``[seeds, N]`` (then
    each sample counts with its mean over the seeds).
    """
    c, g = _check(correct, groups)
    return {name: (float(c[g == name].mean()), int((g == name).sum())) for name in np.unique(g)}


def subset_accuracies(correct: np.ndarray, groups: Sequence[str], k: int, draws: int = 2000,
                      seed: int = 0) -> np.ndarray:
    """Accuracy over the samples of ``k`` distinct groups, for many choices of the ``k`` groups.

    Every ``k``-subset when there are at most ``draws`` of them (exact, in a fixed order);
    otherwise ``draws`` subsets drawn without replacement within each draw, by a generator
    seeded with ``seed``. Samples weigh equally, as in a split's accuracy. The spread of the
    result is how far a split of ``k`` such groups can land from another by the choice of
    groups alone.
    """
    c, g = _check(correct, groups)
    names = np.unique(g)
    if not 1 <= k <= len(names):
        raise ValueError(f"k must be between 1 and the number of groups ({len(names)}), got {k}.")
    if draws < 1:
        raise ValueError(f"draws must be positive, got {draws}.")
    hits = np.array([c[g == n].sum() for n in names])
    counts = np.array([(g == n).sum() for n in names], dtype=np.float64)
    if math.comb(len(names), k) <= draws:
        subsets = np.array(list(itertools.combinations(range(len(names)), k)))
    else:
        rng = np.random.default_rng(seed)
        subsets = np.array([rng.choice(len(names), size=k, replace=False) for _ in range(draws)])
    return hits[subsets].sum(axis=1) / counts[subsets].sum(axis=1)


def group_strip(splits: Mapping[str, Mapping[str, tuple[float, int]]], title: str = "",
                ylabel: str = "accuracy per group", group_name: str = "groups",
                label_gap: float = 0.1) -> Figure:
    """One column per split, one dot per group (area ~ its number of samples), and the split's
    sample-weighted accuracy as a black bar. Groups more than ``label_gap`` from their split's
    accuracy are labelled with their name (``label_gap=0`` labels every group).

    ``splits[split][group] = (accuracy, count)``, as :func:`per_group` returns.
    """
    if not splits:
        raise ValueError("give at least one split.")
    fig = Figure(figsize=(2.3 * len(splits) + 1.5, 3.6), layout="constrained")
    ax = fig.subplots()
    for i, (name, groups) in enumerate(splits.items()):
        if not groups:
            raise ValueError(f"split {name!r} has no groups.")
        acc = np.array([a for a, _ in groups.values()])
        n = np.array([m for _, m in groups.values()], dtype=np.float64)
        ax.scatter(np.full(len(acc), i), acc, s=4 * n, alpha=0.6, color=f"C{i % 10}")
        overall = float((acc * n).sum() / n.sum())
        for label, a in zip(groups, acc):
            if abs(float(a) - overall) > label_gap or label_gap <= 0:
                ax.annotate(str(label), (i, float(a)), xytext=(9, 0), textcoords="offset points",
                            fontsize=7, va="center")
        ax.hlines(overall, i - 0.3, i + 0.3, color="black", zorder=3)
        ax.annotate(f"{overall:.3f}", (i - 0.3, overall), xytext=(-4, 0),
                    textcoords="offset points", ha="right", va="center", fontsize=8)
    ax.set_xticks(range(len(splits)), [f"{s}\n({len(g)} {group_name})" for s, g in splits.items()])
    ax.set_xlim(-0.8, len(splits) - 0.2)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    return fig
