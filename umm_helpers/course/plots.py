"""Pure plotting functions: each returns a matplotlib ``Figure`` (no pyplot state).

Show one in a notebook with ``display(fig)``. Notebook 00 uses the data-set figures.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from umm_helpers.data.dataset import Split


def image_grid(split: Split, n: int = 20, modality: str = "image", cols: int = 10,
               present: np.ndarray | None = None) -> Figure:
    """The first ``n`` samples of an image-like modality with their labels.

    ``present`` (bool ``[n]``) greys out samples whose modality is missing.
    """
    n = min(n, len(split))
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(1.1 * cols, 1.25 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i >= n:
            continue
        x = split.inputs[modality][i].detach().cpu().numpy()
        img = x[0] if x.ndim == 3 else x.reshape(1, -1)
        missing = present is not None and not bool(present[i])
        ax.imshow(np.zeros_like(img) if missing else img, cmap="gray" if not missing else "Greys",
                  vmin=0, vmax=1, aspect="auto")
        label = split.classes[int(split.labels[i])]
        ax.set_title(f"{label}{' (missing)' if missing else ''}", fontsize=8)
    return fig


def spectrograms(split: Split, index: Sequence[int], modality: str = "audio") -> Figure:
    """Spectrograms of the samples at ``index`` (frequency up, time right)."""
    fig = Figure(figsize=(2.2 * len(index), 2.3), layout="constrained")
    axes = fig.subplots(1, len(index), squeeze=False)[0]
    for ax, i in zip(axes, index):
        spec = split.inputs[modality][i, 0].detach().cpu().numpy()
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1)
        speaker = split.meta.get("speaker")
        who = f"\n{speaker[i]}" if speaker is not None else ""
        ax.set_title(f"'{split.classes[int(split.labels[i])]}'{who}", fontsize=8)
        ax.set_xlabel("frame")
    axes[0].set_ylabel("mel band")
    return fig


def class_balance(splits: Mapping[str, Split]) -> Figure:
    """Samples per class in each split, as grouped bars."""
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax = fig.subplots()
    names = list(splits)
    classes = next(iter(splits.values())).classes
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        counts = np.bincount(splits[name].labels.cpu().numpy(), minlength=len(classes))
        ax.bar(np.arange(len(classes)) + k * width, counts, width, label=f"{name} ({counts.sum()})")
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes, rotation=30)
    ax.set_ylabel("samples")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def mask_tables(tables: Mapping[str, np.ndarray], modalities: Sequence[str],
                n: int = 60) -> Figure:
    """Presence tables side by side: a column per modality, a row per sample (dark = missing)."""
    fig = Figure(figsize=(2.0 * len(tables), 4.0), layout="constrained")
    axes = fig.subplots(1, len(tables), squeeze=False)[0]
    for ax, (title, pres) in zip(axes, tables.items()):
        ax.imshow(pres[:n].astype(float), cmap="Greys_r", vmin=0, vmax=1, aspect="auto",
                  interpolation="nearest")
        ax.set_xticks(range(len(modalities)), list(modalities))
        missing = 1.0 - pres.mean(axis=0)
        lost = ", ".join(f"{m} {v:.2f}" for m, v in zip(modalities, missing))
        ax.set_title(f"{title}\nmissing: {lost}", fontsize=8)
    axes[0].set_ylabel(f"test sample (first {n})")
    return fig


def score_bars(rows: Sequence[Mapping[str, object]], columns: Sequence[str],
               title: str = "", ylabel: str = "test accuracy", chance: float | None = None,
               ceilings: Mapping[str, float] | None = None,
               ceiling_label: str = "ceiling") -> Figure:
    """Grouped bars of the mean per method (rows) and condition (columns), ± std as error bars
    only when some std is non-zero (a single seed has no spread to show).

    ``rows`` are dicts with ``"method"`` and, per column, a ``(mean, std)`` pair, as in
    ``umm_helpers.methods.compare.summarize(...).rows``. ``chance`` draws a dotted line at chance
    level; ``ceilings[column]`` draws a black tick over that column's bars (labelled
    ``ceiling_label``, which should say how the ceiling was measured). The legend sits outside
    the axes so that it never covers a bar. Notebooks 03, 04 and 06.
    """
    fig = Figure(figsize=(max(6.5, 1.1 * len(rows) * len(columns) / 2 + 1.5), 3.4),
                 layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(columns)
    x = np.arange(len(rows))
    labelled = False
    for k, col in enumerate(columns):
        means = [float(r[col][0]) for r in rows]  # type: ignore[index]
        stds = [float(r[col][1]) for r in rows]  # type: ignore[index]
        spread: dict[str, Any] = {"yerr": stds, "capsize": 2} if any(stds) else {}
        ax.bar(x + k * width, means, width, label=col, **spread)
        if ceilings is not None and col in ceilings:
            ax.hlines(np.full(len(rows), ceilings[col]), x + (k - 0.5) * width,
                      x + (k + 0.5) * width, color="black", zorder=3,
                      label="_nolegend_" if labelled else ceiling_label)
            labelled = True
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", label=f"chance ({chance:.2f})")
    ax.set_xticks(x + 0.4 - width / 2, [str(r["method"]) for r in rows], rotation=20)
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def sweep_curves(results: Mapping[str, Mapping[str, Any]], keys: Sequence[str],
                 marker: tuple[str, float] | None = None,
                 ylim: tuple[float, float] | None = (0.0, 1.0)) -> Figure:
    """Accuracy vs missing rate, one panel per sweep key (e.g. ``audio``, ``image``, ``any``).

    ``results`` maps a label to a run result (``result["rates"]``, ``result["sweeps"]``,
    ``result["aurc"]``). ``marker=(key, rate)`` draws a vertical line at that rate.
    ``ylim=None`` zooms each panel's y axis to its curves (0.02 margin), so that curves a point
    apart stay apart. Each panel's legend (with the AURC of its sweep) sits below the panel,
    outside the axes. Notebooks 04, 05 and 06.
    """
    fig = Figure(figsize=(4.0 * len(keys), 3.2 + 0.18 * len(results)), layout="constrained")
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        for label, res in results.items():
            rates, curve = res["rates"], res["sweeps"][key]
            ax.plot(rates, curve, marker=".", label=f"{label} (AURC {res['aurc'][key]:.3f})")
        if marker is not None and marker[0] == key:
            ax.axvline(marker[1], color="grey", linestyle=":")
        ax.set_xlabel(f"missing rate ({key})")
        if ylim is not None:
            ax.set_ylim(*ylim)
        else:
            values = np.concatenate([np.asarray(r["sweeps"][key], float) for r in results.values()])
            ax.set_ylim(max(0.0, float(values.min()) - 0.02), min(1.0, float(values.max()) + 0.02))
        ax.set_title(f"rate:{key}:r")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    axes[0].set_ylabel("test accuracy")
    return fig


def two_views(split: Split, n: int = 2000) -> Figure:
    """Scatter of the first ``n`` samples of each 2-D view, coloured by class. Notebook 01."""
    n = min(n, len(split))
    mods = split.modalities
    fig = Figure(figsize=(3.6 * len(mods), 3.4), layout="constrained")
    axes = fig.subplots(1, len(mods), squeeze=False)[0]
    y = split.labels[:n].detach().cpu().numpy()
    for ax, m in zip(axes, mods):
        x = split.inputs[m][:n].detach().cpu().numpy().reshape(n, -1)
        for k, name in enumerate(split.classes):
            ax.scatter(x[y == k, 0], x[y == k, 1], s=3, alpha=0.5, label=f"class {name}")
        ax.set_title(f"view {m}")
        ax.set_xlabel(f"{m}[0]")
        ax.set_ylabel(f"{m}[1]")
        ax.set_aspect("equal", adjustable="datalim")
    axes[-1].legend(fontsize=7, markerscale=3, loc="upper right")
    return fig


def information_budget(summary: Mapping[str, float], modalities: Sequence[str] = ("x1", "x2"),
                       title: str = "") -> Figure:
    """Left: what each view set knows about Y, in nats, and what it lacks (hatched) relative to
    both views. Right: Bayes accuracy (the ceiling) and the upper bound on accuracy that Fano's
    inequality gives (1 minus its lower bound on the error; never below the Bayes accuracy).

    ``summary`` is :func:`umm_helpers.course.theory.summary`'s dict. Legends sit below the axes,
    so that they never cover a bar or a line. Notebook 01.
    """
    a, b = modalities
    fig = Figure(figsize=(8.5, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    names = [f"{a} only", f"{b} only", "both"]
    known = [summary[f"I_{a}"], summary[f"I_{b}"], summary[f"I_{a}{b}"]]
    lost = [summary[f"I_{b}_given_{a}"], summary[f"I_{a}_given_{b}"], 0.0]
    left.bar(names, known, color="tab:blue", label="I(Y; available views)")
    left.bar(names, lost, bottom=known, color="white", edgecolor="tab:red", hatch="//",
             label="complementary info lost")
    left.axhline(summary["H_Y"], color="black", linestyle="--", label="H(Y)")
    for i, v in enumerate(known):
        left.text(i, v / 2, f"{v:.3f}", ha="center", va="center", color="white", fontsize=8)
    left.set_ylabel("nats")
    left.set_ylim(0, 1.1 * summary["H_Y"])
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    left.set_title("information about the label")
    keys = [a, b, f"{a}{b}"]
    acc = [summary[f"acc_{k}"] for k in keys]
    fano = [1.0 - summary[f"fano_{k}"] for k in keys]
    right.bar(names, acc, color="tab:green", label="Bayes accuracy (ceiling)")
    right.scatter(names, fano, marker="_", s=400, color="black", zorder=3,
                  label="Fano: accuracy <= 1 - bound")
    for i, v in enumerate(acc):
        right.text(i, v / 2, f"{v:.3f}", ha="center", va="center", color="white", fontsize=8)
    right.set_ylim(0, 1.05)
    right.set_ylabel("accuracy")
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    right.set_title("best reachable accuracy")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _bars_with_ceilings(ax: Any, groups: Sequence[str],
                        bars: Mapping[str, Sequence[tuple[float, float]]],
                        ceilings: Mapping[str, float] | None,
                        colors: Mapping[str, str] | None = None) -> None:
    """Grouped bars ``bars[label] = [(mean, std) per group]``, each group's ceiling as a black
    tick. Shared by notebook 01's and notebook 08's figures."""
    width = 0.8 / max(1, len(bars))
    x = np.arange(len(groups))
    for k, (label, values) in enumerate(bars.items()):
        mean, std = [v[0] for v in values], [v[1] for v in values]
        ax.bar(x - 0.4 + (k + 0.5) * width, mean, width, label=label,
               color=None if colors is None else colors[label],
               **({} if not any(std) else {"yerr": std, "capsize": 2}))
    if ceilings is not None:
        ax.hlines([ceilings[g] for g in groups], x - 0.45, x + 0.45, color="black", zorder=3,
                  label="Bayes ceiling")
    ax.set_xticks(x, groups)
    ax.set_ylabel("test accuracy")


def accuracy_vs_ceiling(scores: Mapping[str, Mapping[str, float | Sequence[float]]],
                        ceilings: Mapping[str, float], title: str = "") -> Figure:
    """Grouped bars of each method's accuracy per condition, the Bayes ceiling as a black tick.

    ``scores`` maps method -> {condition: accuracy, or a list of per-seed accuracies};
    ``ceilings`` maps condition -> ceiling. With several seeds a bar is the mean, with the std
    as an error bar and one dot per seed; a single value has no error bar. The y axis starts
    0.1 below the lowest value, so that small gaps stay visible; the legend sits outside the
    axes. Notebook 01.
    """
    conditions = list(ceilings)
    values = {m: [np.atleast_1d(np.asarray(s[c], dtype=float)) for c in conditions]
              for m, s in scores.items()}
    fig = Figure(figsize=(6.5, 3.3), layout="constrained")
    ax = fig.subplots()
    _bars_with_ceilings(ax, conditions, {
        m: [(float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0) for v in vs]
        for m, vs in values.items()}, ceilings)
    width = 0.8 / max(1, len(values))
    for k, vs in enumerate(values.values()):
        for i, v in enumerate(vs):
            if v.size > 1:
                ax.scatter(np.full(v.size, i - 0.4 + (k + 0.5) * width), v, color="black", s=8,
                           zorder=4)
    low = min(min(ceilings.values()), *(float(v.min()) for vs in values.values() for v in vs))
    ax.set_ylim(max(0.0, low - 0.1), 1.0)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def training_curves(histories: Mapping[str, Sequence[Mapping[str, object]]],
                    test_scores: Mapping[str, float] | None = None) -> Figure:
    """Training loss (left) and validation score (right) per epoch, one line per run.

    ``histories`` maps a label to a run history (``Run.history``: dicts with ``epoch``,
    ``train_loss`` and ``val_score``; entries with ``"reused": True`` are skipped).
    ``test_scores[label]`` draws that run's final test score as a dotted line in its colour on
    the right, for comparison with validation. Epoch ticks are integers; the legend sits outside
    the axes. Notebook 02.
    """
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(9.5, 3.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    for k, (label, hist) in enumerate(histories.items()):
        colour = f"C{k % 10}"
        rows = [h for h in hist if not h.get("reused")]
        epochs = [int(h["epoch"]) for h in rows]  # type: ignore[call-overload]
        left.plot(epochs, [float(h["train_loss"]) for h in rows],  # type: ignore[arg-type]
                  marker=".", label=label, color=colour)
        vals = [(e, h["val_score"]) for e, h in zip(epochs, rows) if h.get("val_score") is not None]
        if vals:
            right.plot([e for e, _ in vals], [float(v) for _, v in vals],  # type: ignore[arg-type]
                       marker=".", label=f"{label} (validation)", color=colour)
        if test_scores is not None and label in test_scores:
            right.axhline(float(test_scores[label]), color=colour, linestyle=":",
                          label=f"{label} (test, last epoch)")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylabel("training loss")
    left.set_title("training loss")
    right.set_ylabel("validation score")
    right.set_ylim(0, 1)
    right.set_title("validation score")
    (right if right.get_lines() else left).legend(fontsize=8, loc="upper left",
                                                  bbox_to_anchor=(1.0, 1.0))
    return fig


def probe_bars(scores: Mapping[str, Mapping[str, Sequence[float]]], title: str = "",
               ylabel: str = "linear-probe test accuracy") -> Figure:
    """Bars of mean ± std per group (x axis) and source (colour), one dot per seed.

    ``scores[group][source]`` is a list of per-seed values, e.g.
    ``{"image": {"unimodal": [...], "joint": [...]}, "audio": {...}}``. The y axis starts a
    little below the lowest value so that small differences stay visible. Notebook 02.
    """
    groups = list(scores)
    sources = list(dict.fromkeys(s for g in groups for s in scores[g]))
    fig = Figure(figsize=(max(4.5, 1.8 * len(groups) * len(sources) / 2), 3.3),
                 layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(sources))
    x = np.arange(len(groups))
    lowest = 1.0
    for k, src in enumerate(sources):
        pos = x - 0.4 + (k + 0.5) * width
        vals = [np.asarray(scores[g].get(src, []), dtype=float) for g in groups]
        means = [float(v.mean()) if v.size else np.nan for v in vals]
        stds = [float(v.std(ddof=1)) if v.size > 1 else 0.0 for v in vals]
        spread: dict[str, Any] = {"yerr": stds, "capsize": 3} if any(stds) else {}
        ax.bar(pos, means, width, label=src, alpha=0.85, **spread)
        for p, v in zip(pos, vals):
            ax.scatter(np.full(v.size, p), v, color="black", s=10, zorder=3)
            if v.size:
                lowest = min(lowest, float(v.min()))
    ax.set_xticks(x, groups)
    ax.set_ylim(max(0.0, lowest - 0.1), 1.0)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def ceilings_by_dial(ceilings: Mapping[float, Mapping[str, float]], marker: float | None = None
                     ) -> Figure:
    """Exact ceilings against the dependence dial: every pattern's Bayes accuracy and the
    additive rule (what summing calibrated uni-modal posteriors can reach). Notebook 08."""
    dial = sorted(ceilings)
    keys = list(ceilings[dial[0]])
    fig = Figure(figsize=(6.0, 3.4), layout="constrained")
    ax = fig.subplots()
    styles: dict[str, dict[str, Any]] = {"additive": dict(
        color="black", linestyle="--", label="sum of uni-modal posteriors (ume's best)")}
    for key in keys:
        style: dict[str, Any] = styles.get(key, dict(label=f"Bayes, {key}"))
        ax.plot(dial, [ceilings[s][key] for s in dial], marker=".", **style)
    if marker is not None:
        ax.axvline(marker, color="grey", linestyle=":")
    ax.set_xlabel("shared nuisance scale (the dependence dial)")
    ax.set_ylabel("best reachable accuracy")
    ax.set_ylim(0.0, 1.02)
    ax.legend(fontsize=7, loc="lower left")
    return fig


def pattern_scores(scores: Mapping[str, Mapping[str, tuple[float, float]]],
                   ceilings: Mapping[str, float] | None, chance: float, title: str = ""
                   ) -> Figure:
    """Grouped bars (mean ± std over seeds) per presence pattern, the pattern's Bayes ceiling as
    a black tick (when known) and chance as a dotted line. ``scores[method][pattern] = (mean,
    std)``. Notebook 08."""
    from umm_helpers.methods.registry import method_colors

    patterns = list(ceilings) if ceilings is not None else list(next(iter(scores.values())))
    fig = Figure(figsize=(7.0, 3.4), layout="constrained")
    ax = fig.subplots()
    _bars_with_ceilings(ax, patterns, {m: [row[p] for p in patterns] for m, row in scores.items()},
                        ceilings, method_colors(list(scores)))
    ax.axhline(chance, color="grey", linestyle=":", label="chance")
    ax.set_ylim(0.0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def tradeoff_curve(points: Mapping[str, Mapping[str, tuple[float, float]]],
                   ceilings: tuple[float, float]) -> Figure:
    """Both-present accuracy against mean single-modality accuracy, one point per setting
    (mean ± std over seeds), the two ceilings as a corner. ``points[label] = {"single": (m, s),
    "both": (m, s)}``; labels such as ``"p=0.5"`` are joined by a line. Notebook 08."""
    from umm_helpers.methods.registry import method_colors

    fig = Figure(figsize=(5.2, 3.8), layout="constrained")
    ax = fig.subplots()
    curve = [k for k in points if k.startswith("p=")]
    colors = {**method_colors([k for k in points if k not in curve]),
              **{k: "#2ca02c" for k in curve}}  # the additive head's curve: ume-mma's colour
    ax.plot([points[k]["single"][0] for k in curve], [points[k]["both"][0] for k in curve],
            color="#2ca02c", zorder=1)
    for label, pt in points.items():
        ax.errorbar(pt["single"][0], pt["both"][0], xerr=pt["single"][1], yerr=pt["both"][1],
                    fmt="o", capsize=2, color=colors[label],
                    label=None if label in curve else label)
        ax.annotate(label, (pt["single"][0], pt["both"][0]), fontsize=7,
                    textcoords="offset points", xytext=(4, 4))
    single, both = ceilings
    ax.plot([single], [both], marker="*", markersize=12, color="black", linestyle="none",
            label="both ceilings")
    ax.axhline(both, color="black", linewidth=0.5, linestyle=":")
    ax.axvline(single, color="black", linewidth=0.5, linestyle=":")
    ax.set_xlabel("mean accuracy with one modality missing")
    ax.set_ylabel("accuracy with both present")
    ax.legend(fontsize=7, loc="lower left")
    return fig
