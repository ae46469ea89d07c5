"""The missing-modality explorer of notebook 05: pure recombination of precomputed logits.

Every run is evaluated once per presence pattern (:class:`~umm_helpers.evaluate.PatternLogits`);
after that, a setting of the sliders (a missing rate per modality, a method, a ``p_missing``)
is only a seeded choice of pattern per sample plus an argmax. Nothing here trains or runs a
model after :meth:`ExplorerData.from_models`.

Each modality m is lost independently at its rate (``MaskTable.rates_presence``), so a sample
can lose every modality; it then gets the training-label prior. Masks come from one seeded
table, so every method is scored on the same samples and masks are nested as a rate grows.

:func:`explore` computes everything the explorer shows for one setting (an
:class:`ExplorerState`); :class:`ExplorerView` draws it and redraws only what changes;
:func:`explorer_figure` is the static figure of one setting. The ipywidgets front end is
``umm_helpers.widgets.missing_modality_explorer``; ``umm bench --widgets`` times it.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from umm_helpers.data import MultiModalDataset, Split
from umm_helpers.evaluate import PatternLogits
from umm_helpers.missing import MaskTable

P_VALUES = (0.0, 0.25, 0.5, 0.75)
MMA_METHODS = ("joint-mma", "ume-mma")
CURVE_STEP = 0.05
DEFAULT_RATE = 0.3
DEFAULT_METHOD = "ume-mma"
DEFAULT_P = 0.5
EVAL_SEED = 0

RunKey = tuple[str, float | None]
"""A run: ``(method, p_missing)``, with ``p_missing`` None for methods without MMA."""


def explorer_methods(modalities: Sequence[str]) -> list[str]:
    """The methods the explorer shows by default: all of them but ``umt`` (notebook 06)."""
    from umm_helpers.methods import all_methods

    return [m for m in all_methods(list(modalities)) if m != "umt"]


def run_keys(methods: Sequence[str], p_values: Sequence[float] = P_VALUES,
             swept: Sequence[str] = ("ume-mma",), default_p: float | None = None
             ) -> list[RunKey]:
    """The runs behind the explorer: one per method, one per ``p_missing`` for ``swept`` ones.

    MMA methods that are not swept use ``default_p`` (None: the method default, 0.5).
    """
    from umm_helpers.methods import MMA_DEFAULT

    keys: list[RunKey] = []
    for name in methods:
        if name in MMA_METHODS:
            ps = p_values if name in swept else [MMA_DEFAULT if default_p is None else default_p]
            keys += [(name, float(p)) for p in ps]
        else:
            keys.append((name, None))
    return keys


def run_config(key: RunKey, config: Any = None) -> Any:
    """The ``TrainConfig`` of run ``key``: ``config`` (default: seed 0) at its ``p_missing``."""
    from umm_helpers.train import TrainConfig

    base = config if config is not None else TrainConfig(seed=0)
    return base.replace(p_missing=key[1]) if key[1] is not None else base


def load_runs(dataset: MultiModalDataset, keys: Sequence[RunKey], config: Any = None
              ) -> dict[RunKey, Any]:
    """``{key: Run}`` from ``run_method`` (the run cache; trains what is not cached yet)."""
    from umm_helpers.methods import run_method

    return {k: run_method(k[0], dataset, config=run_config(k, config)) for k in keys}


def cached_run(name: str, dataset: MultiModalDataset, config: Any = None) -> Any | None:
    """The cached ``Run`` of ``run_method(name, dataset, config=config)``, or None (no training)."""
    from umm_helpers.methods import cached_run as lookup

    return lookup(name, dataset, config=config)


def run_label(key: RunKey) -> str:
    """``"ume-mma (p=0.5)"`` or ``"joint"``."""
    return key[0] if key[1] is None else f"{key[0]} (p={key[1]:g})"


@dataclass
class ExplorerData:
    """Everything the explorer recombines: per-run pattern logits, the test split and masks.

    ``patterns[(method, p_missing)]`` holds the logits of that run for every presence pattern
    on ``split`` (the test split); ``table`` is the seeded mask table of that split.
    """

    split: Split
    patterns: dict[RunKey, PatternLogits]
    table: MaskTable
    curve_rates: np.ndarray = field(
        default_factory=lambda: np.round(np.arange(0, 1 + 1e-9, CURVE_STEP), 2))
    _curves: dict[tuple, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.patterns:
            raise ValueError("ExplorerData needs at least one run.")
        if self.split.multilabel:
            raise ValueError("the explorer shows accuracy and a confusion matrix, so it needs "
                             "single-label data (labels [N]); this split is multi-label.")
        mods = tuple(sorted(self.split.modalities))
        for key, pl in self.patterns.items():
            if pl.modalities != mods or pl.logits.shape[1] != len(self.split):
                raise ValueError(f"run {run_label(key)} was evaluated on modalities "
                                 f"{list(pl.modalities)} and {pl.logits.shape[1]} samples; the "
                                 f"split has {list(mods)} and {len(self.split)}.")
        if self.table.modalities != mods or len(self.table) != len(self.split):
            raise ValueError("the mask table does not match the split (modalities or size).")

    def __repr__(self) -> str:
        return (f"ExplorerData({len(self.patterns)} runs of {self.methods}, "
                f"{len(self.split)} samples, modalities {list(self.modalities)})")

    @classmethod
    def from_models(cls, models: Mapping[RunKey, nn.Module], split: Split,
                    seed: int = EVAL_SEED) -> "ExplorerData":
        """Evaluate every model once per presence pattern (the only model calls)."""
        patterns = {(str(k[0]), None if k[1] is None else float(k[1])):
                    PatternLogits.compute(model, split) for k, model in models.items()}
        return cls(split, patterns, MaskTable.create(len(split), split.modalities, seed))

    @classmethod
    def from_runs(cls, runs: Mapping[RunKey, Any], split: Split,
                  seed: int = EVAL_SEED) -> "ExplorerData":
        """Same as :meth:`from_models` for ``Run`` objects of ``run_method``."""
        return cls.from_models({k: r.model for k, r in runs.items()}, split, seed)

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.table.modalities

    @property
    def classes(self) -> list[str]:
        return list(self.split.classes)

    @property
    def labels(self) -> np.ndarray:
        return self.split.labels.detach().cpu().numpy()

    @property
    def methods(self) -> list[str]:
        """Method names in the order the runs were given."""
        return list(dict.fromkeys(k[0] for k in self.patterns))

    @property
    def p_values(self) -> list[float]:
        """Every ``p_missing`` for which some run exists."""
        return sorted({k[1] for k in self.patterns if k[1] is not None})

    def resolve(self, method: str, p_missing: float | None = None) -> RunKey:
        """The run shown for ``method`` at ``p_missing``.

        Methods without MMA ignore ``p_missing``; an MMA method without a run at that value
        falls back to its run at 0.5 (the default), else its first run.
        """
        if method not in self.methods:
            raise ValueError(f"unknown method {method!r}; the explorer has {self.methods}.")
        if (method, None) in self.patterns:
            return (method, None)
        ps = [k[1] for k in self.patterns if k[0] == method]
        for p in ([] if p_missing is None else [float(p_missing)]) + [0.5]:
            if p in ps:
                return (method, p)
        return (method, ps[0])

    def check_rates(self, rates: Mapping[str, float]) -> dict[str, float]:
        """Rates for every modality (missing entries are 0), checked to lie in [0, 1]."""
        unknown = sorted(set(rates) - set(self.modalities))
        if unknown:
            raise ValueError(f"rates name modalities {unknown}; the data has "
                             f"{list(self.modalities)}.")
        out = {m: float(rates.get(m, 0.0)) for m in self.modalities}
        for m, r in out.items():
            if not 0.0 <= r <= 1.0:
                raise ValueError(f"missing rate of {m!r} is {r}, outside [0, 1].")
        return out

    def presence(self, rates: Mapping[str, float]) -> np.ndarray:
        """Boolean ``[N, M]`` presence: modality m lost independently at ``rates[m]``."""
        return self.table.rates_presence(self.check_rates(rates))

    def accuracy(self, key: RunKey, rates: Mapping[str, float]) -> float:
        return self.patterns[key].accuracy_for_rates(self.check_rates(rates), self.table)

    def curve(self, key: RunKey, modality: str, rates: Mapping[str, float]) -> np.ndarray:
        """Accuracy over ``curve_rates`` for ``modality``, the other rates held at ``rates``."""
        rates = self.check_rates(rates)
        others = tuple((m, round(r, 6)) for m, r in rates.items() if m != modality)
        ck = (key, modality, others)
        if ck not in self._curves:
            if len(self._curves) > 4096:
                self._curves.clear()
            pl = self.patterns[key]
            self._curves[ck] = np.array([pl.accuracy_for_rates({**rates, modality: float(r)},
                                                               self.table)
                                         for r in self.curve_rates])
        return self._curves[ck]


@dataclass
class ExplorerState:
    """What the explorer shows for one setting (see :func:`explore`)."""

    rates: dict[str, float]
    method: str
    p_missing: float | None
    key: RunKey
    presence: np.ndarray
    accuracies: dict[str, float]
    run_labels: dict[str, str]
    predictions: np.ndarray
    labels: np.ndarray
    confusion: np.ndarray
    curve_rates: np.ndarray
    curves: dict[str, dict[str, np.ndarray]]
    classes: list[str]

    @property
    def accuracy(self) -> float:
        """Accuracy of the picked method."""
        return self.accuracies[self.method]

    @property
    def lost(self) -> dict[str, int]:
        """Samples lacking each modality, and ``"all"``: samples lacking every modality."""
        out = {m: int((~self.presence[:, j]).sum()) for j, m in enumerate(sorted(self.rates))}
        out["all"] = int((~self.presence).all(axis=1).sum())
        return out


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int
                     ) -> np.ndarray:
    """Counts ``[C, C]``: row = true class, column = predicted class."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(predictions, dtype=np.int64)
    return np.bincount(y * num_classes + p, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def accuracies(data: ExplorerData, rates: Mapping[str, float],
               p_missing: float | None = None) -> dict[str, float]:
    """Accuracy of every method (MMA methods at ``p_missing``) under the same masks."""
    pres = data.presence(rates)
    return {m: data.patterns[data.resolve(m, p_missing)].score(pres) for m in data.methods}


def predictions(data: ExplorerData, rates: Mapping[str, float], method: str,
                p_missing: float | None = None) -> np.ndarray:
    """Predicted class ``[N]`` of ``method`` when each modality is lost at its rate."""
    logits = data.patterns[data.resolve(method, p_missing)].predict(data.presence(rates))
    return logits.argmax(dim=1).numpy()


def default_rates(data: ExplorerData) -> dict[str, float]:
    """The explorer's starting point: every modality missing at :data:`DEFAULT_RATE`."""
    return {m: DEFAULT_RATE for m in data.modalities}


def explore(data: ExplorerData, rates: Mapping[str, float] | None = None,
            method: str = DEFAULT_METHOD, p_missing: float | None = DEFAULT_P) -> ExplorerState:
    """Everything the explorer shows for one setting; no model is called.

    ``rates`` maps modality -> missing rate (each modality is lost independently; absent
    entries are 0). Returns the accuracy of every method, the picked method's predictions and
    confusion matrix, and per modality the accuracy-vs-rate curve of every method with the
    other rates held where they are.
    """
    rates = data.check_rates(default_rates(data) if rates is None else rates)
    key = data.resolve(method, p_missing)
    pres = data.presence(rates)
    keys = {m: data.resolve(m, p_missing) for m in data.methods}
    accs = {m: data.patterns[k].score(pres) for m, k in keys.items()}
    pred = data.patterns[key].predict(pres).argmax(dim=1).numpy()
    labels = data.labels
    curves = {mod: {m: data.curve(k, mod, rates) for m, k in keys.items()}
              for mod in data.modalities}
    return ExplorerState(rates, method, p_missing, key, pres, accs,
                         {m: run_label(k) for m, k in keys.items()}, pred, labels,
                         confusion_matrix(labels, pred, len(data.classes)), data.curve_rates,
                         curves, data.classes)


def summary_text(state: ExplorerState) -> str:
    """One line: who lost what, and the picked method's accuracy."""
    n = len(state.labels)
    lost = state.lost
    parts = [f"{m} missing for {lost[m]}/{n}" for m in sorted(state.rates)]
    return (", ".join(parts) + f"; {lost['all']} samples lost every modality and get the "
            f"training-label prior. {state.run_labels[state.method]}: accuracy "
            f"{state.accuracy:.3f}")


def summary_html(state: ExplorerState, n_samples: int = 20) -> str:
    """The widget's text: :func:`summary_text`, every accuracy, the wrong shown samples."""
    import html

    accs = " · ".join((f"<b>{html.escape(m)} {a:.3f}</b>" if m == state.method else
                       f"{html.escape(m)} {a:.3f}") for m, a in state.accuracies.items())
    n = min(n_samples, len(state.labels))
    c = state.classes
    wrong = ", ".join(f"#{i} {c[int(state.labels[i])]}→{c[int(state.predictions[i])]}"
                      for i in range(n) if state.predictions[i] != state.labels[i])
    return (f"<div style='font-size:90%'>{html.escape(summary_text(state))}<br>"
            f"accuracy: {accs}<br>wrong among the {n} samples shown (true→predicted): "
            f"{html.escape(wrong) or 'none'}</div>")


# --- drawing --------------------------------------------------------------------------------

def _tile(x: np.ndarray, size: int) -> np.ndarray:
    """A 2-D view of one sample (``[1, H, W]``, ``[H, W]`` or a vector), resized to size²."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[0]
    elif x.ndim == 1:
        side = int(np.ceil(np.sqrt(x.size)))
        x = np.pad(x, (0, side * side - x.size)).reshape(side, side)
    elif x.ndim != 2:
        x = x.reshape(x.shape[0], -1)
    rows = np.minimum((np.arange(size) * x.shape[0]) // size, x.shape[0] - 1)
    cols = np.minimum((np.arange(size) * x.shape[1]) // size, x.shape[1] - 1)
    return x[np.ix_(rows, cols)]


_CMAPS = {"image": "gray", "audio": "magma"}
_COLORS = {"unimodal:audio": "#9467bd", "unimodal:image": "#8c564b", "early": "#7f7f7f",
           "concat": "#bcbd22", "joint": "#1f77b4", "joint-mma": "#17becf", "ume": "#2ca02c",
           "umt": "#ff7f0e", "ume-mma": "#d62728"}


def method_colors(methods: Sequence[str]) -> dict[str, Any]:
    """A fixed colour per method (the same in every panel)."""
    import matplotlib

    cycle = matplotlib.colormaps["tab10"]
    return {m: _COLORS.get(m, cycle(i % 10)) for i, m in enumerate(methods)}


class ExplorerView:
    """The explorer figure: accuracy bars, accuracy-vs-rate curves, confusion matrix, samples.

    Built once; :meth:`update` points the setting-dependent artists at a new state. With
    ``animated=True`` (the widget) :meth:`render` redraws only those artists over a cached
    background (blitting), and the setting's numbers are left to the widget's text line, so an
    update costs milliseconds. With ``animated=False`` (the static figure) a title line and the
    bar values are drawn too. ``figure`` is a plain matplotlib ``Figure``.
    """

    TILE = 32

    def __init__(self, data: ExplorerData, state: ExplorerState, n_samples: int = 20,
                 cols: int = 10, dpi: int = 72, animated: bool = False) -> None:
        self.data, self.animated = data, animated
        mods = list(data.modalities)
        self.fig = fig = Figure(figsize=(13, 6.2), dpi=dpi)
        FigureCanvasAgg(fig)
        gs = fig.add_gridspec(2, 2 + len(mods), height_ratios=[3.3, 1.9], left=0.095,
                              right=0.985, top=0.86 if not animated else 0.94, bottom=0.01,
                              wspace=0.3, hspace=0.32)
        self._dynamic: list[Any] = []
        self._annotations: list[Any] = []
        methods = data.methods
        self.colors = method_colors(methods)

        # accuracy per method
        ax = self.ax_bars = fig.add_subplot(gs[0, 0])
        y = np.arange(len(methods))[::-1]
        self.bars = dict(zip(methods, ax.barh(y, np.zeros(len(methods)), height=0.7,
                                              color=[self.colors[m] for m in methods])))
        ax.set_yticks(y, methods, fontsize=8)
        ax.set_xlim(0, 1.17 if not animated else 1.0)
        ax.set_xlabel("test accuracy")
        ax.set_title("accuracy per method", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        self._dynamic += list(self.bars.values())
        self.bar_text = {}
        if not animated:
            self.bar_text = {m: ax.text(0.01, yi, "", va="center", fontsize=8)
                             for m, yi in zip(methods, y)}

        # accuracy vs the rate of each modality, the other rates held
        self.curve_axes, self.lines, self.points, self.vlines = {}, {}, {}, {}
        for j, mod in enumerate(mods):
            ax = fig.add_subplot(gs[0, 1 + j])
            self.curve_axes[mod] = ax
            self.lines[mod] = {m: ax.plot(data.curve_rates, np.zeros_like(data.curve_rates),
                                          color=self.colors[m], lw=1.0)[0] for m in methods}
            self.vlines[mod] = ax.axvline(0, color="grey", ls=":", lw=1)
            self.points[mod] = ax.plot([0], [0], "o", color="black", ms=6, zorder=5)[0]
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel(f"{mod} missing rate")
            ax.grid(alpha=0.3)
            held = "other rates held" if len(mods) > 1 else "current point marked"
            ax.set_title(f"accuracy vs {mod} missing rate\n({held})", fontsize=9)
            self._dynamic += [*self.lines[mod].values(), self.vlines[mod], self.points[mod]]
        self.curve_axes[mods[0]].set_ylabel("test accuracy")

        # confusion matrix of the picked method (rows normalised)
        ax = self.ax_conf = fig.add_subplot(gs[0, -1])
        c = len(data.classes)
        self.conf = ax.imshow(np.zeros((c, c)), cmap="Blues", vmin=0, vmax=1)
        short = [str(k)[:5] for k in data.classes]
        ax.set_xticks(range(c), short, rotation=90, fontsize=7)
        ax.set_yticks(range(c), short, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("confusion matrix of the picked\nmethod (share of each true class)",
                     fontsize=9)
        self._dynamic.append(self.conf)

        # test samples, one tile per modality, missing ones greyed out
        self._init_samples(fig.add_subplot(gs[1, :]), n_samples, cols, mods)
        self.suptitle = None if animated else fig.suptitle("", fontsize=10)
        self._background = None
        if animated:
            for a in self._dynamic:
                a.set_animated(True)
        self.update(state)

    def _init_samples(self, ax: Any, n: int, cols: int, mods: list[str]) -> None:
        import matplotlib

        split = self.data.split
        n = min(n, len(split))
        self.n_samples = n
        t, gap, cgap, tgap, b = self.TILE, 2, 10, 14, 2
        cell_w = len(mods) * t + (len(mods) - 1) * gap + 2 * b
        cell_h = t + 2 * b
        rows = int(np.ceil(n / cols))
        width = cols * cell_w + (cols - 1) * cgap
        height = rows * (cell_h + tgap)
        # RGBA, transparent between cells: the (static) labels show through when blitting
        self.present_rgb = np.zeros((height, width, 4), dtype=np.float32)
        self.missing_rgb = self.present_rgb.copy()
        self.slices: list[list[tuple[slice, slice]]] = [[] for _ in range(n)]
        self.frames: list[tuple[slice, slice]] = []
        for i in range(n):
            r, c = divmod(i, cols)
            self.frames.append((slice(r * (cell_h + tgap), r * (cell_h + tgap) + cell_h),
                                slice(c * (cell_w + cgap), c * (cell_w + cgap) + cell_w)))
        for j, m in enumerate(mods):
            x = split.inputs[m][:n].detach().cpu().numpy()
            lo, hi = float(np.percentile(x, 1)), float(np.percentile(x, 99))
            cmap = matplotlib.colormaps[_CMAPS.get(m, "viridis")]
            for i in range(n):
                tile = np.clip((_tile(x[i], t) - lo) / max(hi - lo, 1e-6), 0, 1)
                fr = self.frames[i]
                x0 = fr[1].start + b + j * (t + gap)
                sl = (slice(fr[0].start + b, fr[0].start + b + t), slice(x0, x0 + t))
                self.slices[i].append(sl)
                self.present_rgb[sl] = cmap(tile)
                self.missing_rgb[sl][..., :3] = 0.86 + 0.1 * tile[..., None]
                self.missing_rgb[sl][..., 3] = 1.0
        self.mosaic = ax.imshow(self.present_rgb.copy(), interpolation="nearest")
        ax.set_axis_off()
        classes, labels = self.data.classes, self.data.labels
        self.sample_text = []
        for i in range(n):
            fr = self.frames[i]
            self.sample_text.append(ax.text((fr[1].start + fr[1].stop) / 2, fr[0].stop + 1,
                                            classes[int(labels[i])], ha="center", va="top",
                                            fontsize=8))
        ax.set_title(f"the first {n} test samples ({' | '.join(mods)}; greyed out = missing), "
                     "true label below; frame: green = the picked method is right, red = wrong",
                     fontsize=9)
        self._dynamic.append(self.mosaic)

    def update(self, state: ExplorerState) -> "ExplorerView":
        """Point every setting-dependent artist at ``state``."""
        picked = state.method
        for m, bar in self.bars.items():
            acc = state.accuracies[m]
            bar.set_width(acc)
            bar.set_alpha(1.0 if m == picked else 0.45)
            bar.set_edgecolor("black" if m == picked else "none")
            if m in self.bar_text:
                self.bar_text[m].set_text(f"{acc:.3f}")
                self.bar_text[m].set_x(acc + 0.01)
        for mod in self.curve_axes:
            for m, line in self.lines[mod].items():
                line.set_ydata(state.curves[mod][m])
                line.set_linewidth(2.5 if m == picked else 1.0)
                line.set_alpha(1.0 if m == picked else 0.45)
                line.set_zorder(4 if m == picked else 2)
            r = state.rates[mod]
            self.vlines[mod].set_xdata([r, r])
            self.points[mod].set_data([r], [state.accuracy])
        counts = state.confusion.astype(float)
        self.conf.set_data(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1))
        mosaic = self.present_rgb.copy()
        right = state.predictions[:self.n_samples] == state.labels[:self.n_samples]
        green, red = np.array([0.17, 0.63, 0.17, 1.0]), np.array([0.84, 0.15, 0.16, 1.0])
        classes = self.data.classes
        for i in range(self.n_samples):
            mosaic[self.frames[i]] = green if right[i] else red
            for j, sl in enumerate(self.slices[i]):
                mosaic[sl] = self.present_rgb[sl] if state.presence[i, j] else \
                    self.missing_rgb[sl]
            if not self.animated:
                y, p = int(state.labels[i]), int(state.predictions[i])
                txt = self.sample_text[i]
                txt.set_text(classes[y] if right[i] else f"{classes[y]}→{classes[p]}")
                txt.set_color("black" if right[i] else "tab:red")
        self.mosaic.set_data(mosaic)
        if self.suptitle is not None:
            self.suptitle.set_text(summary_text(state))
        self.state = state
        return self

    @property
    def figure(self) -> Figure:
        return self.fig

    def render(self, fmt: str = "jpeg", quality: int = 90) -> bytes:
        """Image bytes (``"jpeg"`` or ``"png"``) of the current state.

        Animated: only the changing artists are redrawn over the cached background. JPEG at
        quality 90 encodes about ten times faster than PNG here, at a similar size.
        """
        from PIL import Image

        canvas = self.fig.canvas
        if not self.animated:
            canvas.draw()
        else:
            if self._background is None:
                canvas.draw()  # the static parts only: dynamic artists are animated
                self._background = canvas.copy_from_bbox(self.fig.bbox)
            canvas.restore_region(self._background)
            for a in self._dynamic:
                self.fig.draw_artist(a)
        buf = canvas.buffer_rgba()
        img = Image.frombuffer("RGBA", (buf.shape[1], buf.shape[0]), buf, "raw", "RGBA", 0, 1)
        out = io.BytesIO()
        if fmt == "jpeg":
            img.convert("RGB").save(out, format="jpeg", quality=quality)
        elif fmt == "png":
            img.convert("RGB").save(out, format="png", compress_level=1)
        else:
            raise ValueError(f"render: fmt must be 'jpeg' or 'png', got {fmt!r}.")
        return out.getvalue()


def explorer_figure(data: ExplorerData, state: ExplorerState, n_samples: int = 20,
                    cols: int = 10) -> Figure:
    """The explorer's figure for one setting (the static twin of the widget)."""
    return ExplorerView(data, state, n_samples, cols, dpi=100).figure


def untrained_models(dataset: MultiModalDataset, keys: Sequence[RunKey], seed: int = 0
                     ) -> dict[RunKey, nn.Module]:
    """Freshly initialised models of each run's architecture (for timing, not for accuracy)."""
    from umm_helpers.config import set_seed
    from umm_helpers.encoders import default_encoders
    from umm_helpers.methods import build_model

    out = {}
    for k in keys:
        set_seed(seed)
        model = build_model(k[0], dataset, default_encoders(dataset))
        if hasattr(model, "set_prior"):
            model.set_prior(dataset.train.labels)
        out[k] = model.eval()
    return out


class CallCounter:
    """Counts forward calls of models (to show that the sliders never call one)."""

    def __init__(self) -> None:
        self.calls = 0

    def wrap(self, model: nn.Module) -> nn.Module:
        forward = model.forward

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return forward(*args, **kwargs)

        model.forward = counted  # type: ignore[method-assign]
        return model


def prior_class(data: ExplorerData, key: RunKey) -> np.ndarray:
    """Predicted class of every sample when every modality is missing (pattern 0)."""
    return data.patterns[key].logits[0].argmax(dim=1).numpy()


__all__ = ["P_VALUES", "MMA_METHODS", "RunKey", "ExplorerData", "ExplorerState", "ExplorerView",
           "CallCounter", "accuracies", "cached_run", "confusion_matrix", "default_rates",
           "explore", "explorer_figure", "explorer_methods", "load_runs", "method_colors",
           "predictions", "prior_class", "run_keys", "run_label", "summary_html",
           "summary_text", "untrained_models"]
