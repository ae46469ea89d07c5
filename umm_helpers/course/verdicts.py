"""The course's expectations, checked against measured margins (notebook 06).

An :class:`Expectation` is one sentence the course expects from the paper's argument ("``ume-mma``
stays within 0.5 points of ``ume``"), the measured margin it is judged by, and the threshold the
course fixed for it. :func:`verdict_table` renders them as a Markdown table and
:func:`margins_figure` shows how far each margin landed from its threshold, per data set.
Thresholds are the course's own, never numbers from the paper.
"""
from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch


@dataclass(frozen=True)
class Expectation:
    """``text``: the expectation in words; ``margin``: the measured value it is judged by, in
    accuracy units (e.g. the smallest difference over conditions); ``threshold``: held when
    ``margin >= threshold`` (``margin > threshold`` with ``strict``); ``measured``: the numbers
    behind the margin, in words."""

    text: str
    margin: float
    threshold: float
    measured: str = ""
    strict: bool = False

    def __post_init__(self) -> None:
        if not np.isfinite(self.margin) or not np.isfinite(self.threshold):
            raise ValueError(f"{self.text!r}: margin and threshold must be finite numbers.")

    @property
    def held(self) -> bool:
        """Whether the measured margin meets the course's threshold."""
        return self.margin > self.threshold if self.strict else self.margin >= self.threshold


def verdict_table(expectations: Sequence[Expectation]) -> str:
    """A Markdown table: expectation, what was measured, margin against threshold (points), held."""
    if not expectations:
        raise ValueError("give at least one expectation.")
    lines = ["| the course's expectation (threshold fixed by the course) | measured "
             "| margin − threshold | held? |", "|---|---|---|---|"]
    for e in expectations:
        lines.append(f"| {e.text} | {e.measured} | {100 * (e.margin - e.threshold):+.1f} points "
                     f"| {'yes' if e.held else '**no**'} |")
    return "\n".join(lines)


def margins_figure(columns: Mapping[str, Sequence[Expectation]], title: str = "") -> Figure:
    """Horizontal bars of ``margin − threshold`` in points: one row per expectation, one bar per
    column (e.g. a data set); right of the zero line the expectation held.

    Every column must list the same expectations (same ``text``) in the same order. The legend
    sits outside the axes.
    """
    if not columns:
        raise ValueError("give at least one column of expectations.")
    names = list(columns)
    texts = [e.text for e in columns[names[0]]]
    for name in names[1:]:
        if [e.text for e in columns[name]] != texts:
            raise ValueError(f"column {name!r} lists other expectations than {names[0]!r}.")
    fig = Figure(figsize=(8.0, 0.45 * len(texts) * max(1, len(names)) + 1.2),
                 layout="constrained")
    ax = fig.subplots()
    height = 0.8 / len(names)
    y = np.arange(len(texts))
    for k, name in enumerate(names):
        values = [100 * (e.margin - e.threshold) for e in columns[name]]
        bars = ax.barh(y - 0.4 + (k + 0.5) * height, values, height, color=f"C{k % 10}")
        for bar, e in zip(bars, columns[name]):
            bar.set_hatch("" if e.held else "//")
    ax.axvline(0.0, color="black", linewidth=1)
    ax.set_yticks(y, [textwrap.fill(t, 34) for t in texts], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("measured margin minus the course's threshold (points)")
    ax.set_title(title, fontsize=9)
    handles: list[Artist] = [Patch(color=f"C{k % 10}", label=name) for k, name in enumerate(names)]
    handles += [Patch(facecolor="white", edgecolor="black", hatch="//", label="not held"),
                Line2D([], [], color="black", linewidth=1, label="threshold (right of it: held)")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig
