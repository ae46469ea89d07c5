"""Empirical claims reported with an interval: held, not distinguishable or failed (all notebooks).

Trained numbers move by about a point between machines (other CPUs and GPUs add floating-point
terms in another order) and between seeds. A notebook therefore never *asserts* that one method
beats another: it computes the margin, a 95 % interval from a paired bootstrap over test samples
and seeds, and reports the claim as

- **held**: the whole interval is on the claimed side of the threshold;
- **failed**: the whole interval is on the other side;
- **not distinguishable**: the interval straddles the threshold (more seeds or test samples
  would be needed to tell).

Only invariants (exact mathematics, properties true by construction, bit-identity on a CPU) stay
``assert`` statements. Thresholds are the course's own, fixed before measuring, never the
paper's. With ``$UMM_CLAIMS_LOG`` set, every reported claim is appended to that JSON-lines file
(``make course`` collects them; ``make gpu-check`` compares two seed offsets), see
:mod:`umm_helpers.course.claim_log`.
"""
from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from torch import nn

from umm_helpers.core.missing import MaskTable
from umm_helpers.core.scoring import predict_logits
from umm_helpers.course.claim_log import FAILED, HELD, OUTCOMES, UNCLEAR, log_claims
from umm_helpers.data import Split
from umm_helpers.methods.run import EVAL_SEED, Run

CONFIDENCE = 0.95
DRAWS = 2000
BOOTSTRAP_SEED = 0  # fixed: the same measurements always give the same interval
CHUNK = 100  # bootstrap draws resampled at once (bounds memory on large test sets)


@dataclass(frozen=True)
class Claim:
    """One empirical claim: ``estimate`` (measured) is above ``threshold`` (``below=False``) or
    below it (``below=True``); ``low``/``high`` bound its 95 % interval; ``basis`` says what the
    interval was drawn over (e.g. ``"3 seeds x 450 test samples"``); ``unit`` is ``"points"``
    (accuracy differences, printed x 100) or a plain unit printed as is."""

    text: str
    estimate: float
    low: float
    high: float
    threshold: float
    below: bool = False
    basis: str = ""
    unit: str = "points"
    outcome: str = ""

    def __post_init__(self) -> None:
        values = (self.estimate, self.low, self.high, self.threshold)
        if not all(np.isfinite(v) for v in values):
            raise ValueError(f"claim {self.text!r}: estimate, interval and threshold must be "
                             f"finite numbers, got {values}.")
        if not self.low <= self.estimate <= self.high:
            raise ValueError(f"claim {self.text!r}: the estimate {self.estimate} lies outside "
                             f"its interval [{self.low}, {self.high}].")
        if self.outcome and self.outcome not in OUTCOMES:
            raise ValueError(f"claim {self.text!r}: outcome {self.outcome!r} is not one of "
                             f"{OUTCOMES}.")
        if not self.outcome:
            object.__setattr__(self, "outcome", judge(self.low, self.high, self.threshold,
                                                      self.below))

    @property
    def held(self) -> bool:
        return self.outcome == HELD

    def says(self, held: str, unclear: str, failed: str) -> str:
        """The sentence for this claim's outcome: prose generated from the run, never stale."""
        return {HELD: held, UNCLEAR: unclear, FAILED: failed}[self.outcome]

    def fmt(self, value: float, sign: bool = True) -> str:
        if self.unit == "points":
            return f"{100 * value:{'+' if sign else ''}.1f}"
        return f"{value:{'+' if sign else ''}.3g}"

    @property
    def measured(self) -> str:
        """``+12.3 points [95 % CI +9.8 to +14.9]``."""
        unit = f" {self.unit}" if self.unit else ""
        return (f"{self.fmt(self.estimate)}{unit} [95 % CI {self.fmt(self.low)} to "
                f"{self.fmt(self.high)}]")

    @property
    def needs(self) -> str:
        return f"{'<' if self.below else '>'} {self.fmt(self.threshold)}"

    def line(self) -> str:
        """One printed line: outcome, claim, estimate with interval, threshold, basis."""
        basis = f"; {self.basis}" if self.basis else ""
        return (f"{self.outcome.upper():>19}  {self.text}: {self.measured}, needs "
                f"{self.needs}{basis}")


def judge(low: float, high: float, threshold: float, below: bool = False) -> str:
    """held / not distinguishable / failed for an interval against a threshold."""
    if below:
        low, high, threshold = -high, -low, -threshold
    if low > threshold:
        return HELD
    if high <= threshold:
        return FAILED
    return UNCLEAR


def _as_measurements(values: object, name: str) -> np.ndarray:
    """``[S]`` per-seed values or ``[S, N]`` per seed and test sample, as float64."""
    a = np.asarray(values, dtype=float)
    shape = a.shape
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{name} must be per-seed values [S] or per seed and sample [S, N], got "
                         f"shape {shape}.")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or inf: a claim needs finite measurements.")
    return a


def bootstrap_means(a: np.ndarray, b: np.ndarray | None = None, draws: int = DRAWS,
                    paired: bool = True) -> np.ndarray:
    """Bootstrap distribution ``[draws]`` of ``mean(a) - mean(b)`` (or ``mean(a)``).

    Seeds (rows) and test samples (columns) are both resampled with replacement: the interval
    covers training randomness and the finite test set. ``paired``: ``a`` and ``b`` measured on
    the same seeds and samples draw the same indices (the shared difficulty of a sample cancels).
    """
    rng = np.random.default_rng(BOOTSTRAP_SEED)

    def resample(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if x.shape[1] > 1:  # per seed, the mean over resampled samples: [S, draws], in chunks
            per_seed = np.concatenate([x[:, cols[k:k + CHUNK]].mean(axis=2)
                                       for k in range(0, len(cols), CHUNK)], axis=1)
        else:
            per_seed = np.repeat(x, len(cols), axis=1)
        return np.take_along_axis(per_seed, rows.T, axis=0).mean(axis=0)

    def draw(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s, n = x.shape
        return rng.integers(0, s, (draws, s)), rng.integers(0, n, (draws, n))

    rows, cols = draw(a)
    out = resample(a, rows, cols)
    if b is not None:
        if paired:
            out = out - resample(b, rows, cols)
        else:
            out = out - resample(b, *draw(b))
    return out


def correct(runs: object, split: Split, condition: str = "full") -> np.ndarray:
    """0/1 correctness ``[S, N]`` of each run (or model) on every sample of ``split`` under
    ``condition``, with the evaluation mask table every score uses: the input of a claim."""
    if split.multilabel:
        raise ValueError(f"correct() scores single-label splits; {split.name!r} is multi-label "
                         "(scored by macro-F1, which has no per-sample correctness).")
    items = runs if isinstance(runs, Sequence) else [runs]
    if not items:
        raise ValueError("correct() needs at least one run or model.")
    present = MaskTable.create(len(split), split.modalities, EVAL_SEED).presence(condition)
    rows = []
    for r in items:
        model = r.model if isinstance(r, Run) else r
        if not isinstance(model, nn.Module):
            raise TypeError(f"correct() takes runs or models, got {type(r).__name__}.")
        pred = predict_logits(model, split, present).argmax(dim=1)
        rows.append((pred == split.labels).numpy())
    return np.stack(rows).astype(float)


def _basis(a: np.ndarray, paired: bool, what: str) -> str:
    s, n = a.shape
    seeds = "1 seed" if s == 1 else f"{s} seeds"
    samples = f" x {n} {what}" if n > 1 else ""
    paired_ = "paired " if paired else ""
    return f"{paired_}bootstrap over {seeds}{samples}"


def difference(text: str, a: object, b: object | None = None, threshold: float = 0.0,
               below: bool = False, unit: str = "points", paired: bool = True,
               what: str = "test samples") -> Claim:
    """The claim ``mean(a) - mean(b) > threshold`` (``< threshold`` with ``below``), or
    ``mean(a) > threshold`` without ``b``.

    ``a``, ``b``: per seed and test sample ``[S, N]`` (e.g. 0/1 correctness from
    :func:`correct`, the same samples in the same order for a paired comparison) or per-seed
    values ``[S]`` (a probe accuracy, an ECE). One seed needs per-sample values ``[1, N]``: a
    single number has no spread.
    """
    x = _as_measurements(a, "a")
    y = None if b is None else _as_measurements(b, "b")
    if y is not None and paired and x.shape != y.shape:
        raise ValueError(f"a paired difference needs a and b of one shape, got {x.shape} and "
                         f"{y.shape}; pass paired=False for measurements on different samples.")
    if x.shape == (1, 1) or (y is not None and y.shape == (1, 1)):
        raise ValueError(f"claim {text!r}: one number has no spread. Give per-seed values of "
                         "several seeds, or per-sample values [1, N] of one seed.")
    dist = bootstrap_means(x, y, paired=paired)
    estimate = float(x.mean() - (0.0 if y is None else y.mean()))
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = (float(v) for v in np.percentile(dist, [tail, 100 - tail]))
    return Claim(text, estimate, min(low, estimate), max(high, estimate), threshold, below,
                 _basis(x, y is not None and paired, what), unit)


def _clearance(c: Claim) -> float:
    """How far the interval's near end lies on the claimed side of the threshold."""
    return (c.threshold - c.high) if c.below else (c.low - c.threshold)


def _represented_by(text: str, claims: Sequence[Claim], part: Claim, which: str) -> Claim:
    """A claim over ``claims`` that carries ``part``'s numbers and outcome."""
    return Claim(text, part.estimate, part.low, part.high, part.threshold, part.below,
                 f"{which} of {len(claims)}: {part.text}; {part.basis}", part.unit, part.outcome)


def every(text: str, claims: Sequence[Claim]) -> Claim:
    """All of ``claims`` at once (e.g. one per condition): held when each held, failed when any
    failed, else not distinguishable. Its numbers are those of the weakest part: one that decides
    the outcome (a failed part, else an unclear one), and among those the one whose interval
    reaches furthest to the wrong side of its threshold."""
    if not claims:
        raise ValueError(f"every({text!r}) needs at least one claim.")
    rank = {FAILED: 0, UNCLEAR: 1, HELD: 2}
    weakest = min(claims, key=lambda c: (rank[c.outcome], _clearance(c)))
    return _represented_by(text, claims, weakest, "weakest")


def some(text: str, claims: Sequence[Claim]) -> Claim:
    """At least one of ``claims`` (e.g. on some condition): held when any held, failed when every
    part failed, else not distinguishable. Its numbers are those of the strongest part."""
    if not claims:
        raise ValueError(f"some({text!r}) needs at least one claim.")
    rank = {HELD: 0, UNCLEAR: 1, FAILED: 2}
    strongest = min(claims, key=lambda c: (rank[c.outcome], -_clearance(c)))
    return _represented_by(text, claims, strongest, "strongest")


def report(claims: Sequence[Claim], log: bool = True) -> str:
    """Print one line per claim and return them as a Markdown table; log them when
    ``$UMM_CLAIMS_LOG`` names a file (``make course`` and ``make gpu-check`` set it)."""
    if not claims:
        raise ValueError("report() needs at least one claim.")
    for c in claims:
        print(c.line())
    if log:
        log_claims([asdict(c) for c in claims])
    return table(claims)


def table(claims: Sequence[Claim]) -> str:
    """A Markdown table: claim, measured with its interval, threshold, outcome."""
    lines = ["| claim (threshold fixed by the course) | measured [95 % interval] | needs "
             "| outcome |", "|---|---|---|---|"]
    for c in claims:
        outcome = c.outcome if c.held else f"**{c.outcome}**"
        lines.append(f"| {c.text} | {c.measured} | {c.needs} | {outcome} |")
    return "\n".join(lines)


def claims_figure(columns: Mapping[str, Sequence[Claim]], title: str = "") -> Figure:
    """Horizontal bars of ``estimate − threshold`` in points with the 95 % interval as an error
    bar: one row per claim, one bar per column (e.g. a data set). A claim "below" its threshold
    is mirrored, so right of the zero line is always the claimed side. Hatched: not held.

    Every column must list the same claims (same ``text``) in the same order.
    """
    if not columns:
        raise ValueError("give at least one column of claims.")
    names = list(columns)
    texts = [c.text for c in columns[names[0]]]
    for name in names[1:]:
        if [c.text for c in columns[name]] != texts:
            raise ValueError(f"column {name!r} lists other claims than {names[0]!r}.")
    fig = Figure(figsize=(8.0, 0.45 * len(texts) * max(1, len(names)) + 1.2),
                 layout="constrained")
    ax = fig.subplots()
    height = 0.8 / len(names)
    y = np.arange(len(texts))
    for k, name in enumerate(names):
        sign = np.array([-1.0 if c.below else 1.0 for c in columns[name]])
        est = np.array([100 * (c.estimate - c.threshold) for c in columns[name]]) * sign
        lo = np.array([100 * (c.low - c.threshold) for c in columns[name]]) * sign
        hi = np.array([100 * (c.high - c.threshold) for c in columns[name]]) * sign
        err = np.vstack([est - np.minimum(lo, hi), np.maximum(lo, hi) - est])
        pos = y - 0.4 + (k + 0.5) * height
        bars = ax.barh(pos, est, height, color=f"C{k % 10}", xerr=err,
                       error_kw={"elinewidth": 1, "capsize": 2})
        for bar, c in zip(bars, columns[name]):
            bar.set_hatch("" if c.held else "//")
    ax.axvline(0.0, color="black", linewidth=1)
    ax.set_yticks(y, [textwrap.fill(t, 34) for t in texts], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("measured minus the course's threshold (points; bars: 95 % interval)")
    ax.set_title(title, fontsize=9)
    handles: list[Artist] = [Patch(color=f"C{k % 10}", label=name) for k, name in enumerate(names)]
    handles += [Patch(facecolor="white", edgecolor="black", hatch="//", label="not held"),
                Line2D([], [], color="black", linewidth=1, label="threshold (right of it: held)")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig
