"""Gap to a ceiling measured independently of the models being judged (notebook 06).

With modality ``m`` missing, the ceiling is what the remaining modalities support. Estimating it
with the very uni-modal models that ``ume`` sums would give ``ume`` a gap of zero by
construction; instead the ceiling comes from uni-modal runs with **held-out seeds** (seeds no
judged method uses). :func:`held_out_ceilings` summarises those runs per modality,
:func:`gaps_per_seed` gives every method's per-seed gap with ``miss:<m>``, and :func:`gap_bars`
draws them with the held-out seeds' own spread as a band.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from umm_helpers.core.scoring import gap_to_ceiling


def held_out_ceilings(accuracies: Mapping[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """Per modality, from the held-out uni-modal runs' test accuracies: ``best`` (the ceiling),
    ``worst``, ``mean`` and ``std`` (``ddof=1``; 0 for one run)."""
    out = {}
    for m, values in accuracies.items():
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1 or v.size == 0:
            raise ValueError(f"{m}: give a non-empty list of accuracies, got {values!r}.")
        out[m] = {"best": float(v.max()), "worst": float(v.min()), "mean": float(v.mean()),
                  "std": float(v.std(ddof=1)) if v.size > 1 else 0.0}
    return out


def gaps_per_seed(scores: Mapping[str, Sequence[Mapping[str, float]]],
                  ceilings: Mapping[str, float]) -> dict[str, dict[str, np.ndarray]]:
    """``{method: {"miss:<m>": per-seed gaps}}``: each seed's ``miss:<m>`` score minus the
    ceiling of the remaining modalities (the best of ``ceilings`` among them; with two
    modalities, the other one's). Negative: below the ceiling."""
    if not ceilings:
        raise ValueError("give the ceiling of at least one modality.")
    out: dict[str, dict[str, np.ndarray]] = {}
    for method, runs in scores.items():
        if not runs:
            raise ValueError(f"{method}: no runs.")
        per_run = [gap_to_ceiling(r, ceilings) for r in runs]
        out[method] = {c: np.array([g[c] for g in per_run]) for c in per_run[0]}
    return out


def gap_bars(gaps: Mapping[str, Mapping[str, Sequence[float]]],
             band: Mapping[str, float] | None = None, title: str = "") -> Figure:
    """Grouped bars of the mean gap in points per method (x axis) and condition (colour), ± std
    over seeds when there are several, one dot per seed; 0 is the ceiling.

    ``band[condition]`` (points, negative) shades ``[band, 0]`` in that condition's colour: how
    far the held-out uni-modal seeds themselves spread below their best, i.e. a gap a method can
    show by seed luck alone. The legend sits outside the axes.
    """
    methods = list(gaps)
    if not methods:
        raise ValueError("give the gaps of at least one method.")
    conditions = list(dict.fromkeys(c for m in methods for c in gaps[m]))
    fig = Figure(figsize=(max(6.5, 0.9 * len(methods) + 2.5), 3.6), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(conditions)
    x = np.arange(len(methods))
    for k, c in enumerate(conditions):
        values = [100 * np.atleast_1d(np.asarray(gaps[m].get(c, [np.nan]), dtype=float))
                  for m in methods]
        means = [float(v.mean()) for v in values]
        stds = [float(v.std(ddof=1)) if v.size > 1 else 0.0 for v in values]
        pos = x - 0.4 + (k + 0.5) * width
        spread: dict[str, Any] = {"yerr": stds, "capsize": 2} if any(stds) else {}
        ax.bar(pos, means, width, label=c, color=f"C{k % 10}", **spread)
        for p, v in zip(pos, values):
            if v.size > 1:
                ax.scatter(np.full(v.size, p), v, color="black", s=6, zorder=3)
        if band is not None and c in band:
            ax.axhspan(100 * min(0.0, band[c]), 0.0, color=f"C{k % 10}", alpha=0.15,
                       label=f"{c}: spread of the held-out uni-modal seeds")
    ax.axhline(0.0, color="black", linewidth=1, label="ceiling (best held-out uni-modal seed)")
    ax.set_xticks(x, methods, rotation=20)
    ax.set_ylabel("gap to the ceiling (points)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig
