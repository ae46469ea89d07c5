"""The explorer's figure (notebook 05): accuracy bars, curves, confusion matrix, sample tiles.

:class:`ExplorerView` is built once and pointed at each new
:class:`~umm_helpers.course.explorer_model.ExplorerState`; :func:`explorer_figure` is the static
figure of one setting. How a view reaches the screen is one of two small strategies picked when
it is built: :class:`_Redraw` (the static figure: everything redrawn, the setting's numbers
written into the figure) or :class:`_Blit` (the widget: only the changing artists redrawn over
a cached background, the numbers left to the widget's text line). Colours are the registry's;
each method's curve also has its own line style and marker, named in a legend, so that curves
that lie on top of each other can still be told apart.
"""
from __future__ import annotations

import io
from typing import Any

import matplotlib
import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from umm_helpers.course.explorer_model import ExplorerData, ExplorerState, summary_text
from umm_helpers.methods.registry import method_colors

_CMAPS = {"image": "gray", "audio": "magma"}
_LINESTYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
MARK_EVERY = 4  # a marker on every 4th curve point, shifted per method


def curve_styles(methods: list[str]) -> dict[str, dict[str, Any]]:
    """Line style, marker and marker positions of each method's curve: no two methods share
    the pair (line style, marker), and markers of neighbouring methods sit on different points."""
    return {m: {"linestyle": _LINESTYLES[i % len(_LINESTYLES)],
                "marker": _MARKERS[i % len(_MARKERS)],
                "markevery": (i % MARK_EVERY, MARK_EVERY)}
            for i, m in enumerate(methods)}


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


class _Redraw:
    """The static figure: a title line and the numbers are drawn; every render draws it all."""

    top = 0.86  # room for the title line
    bar_xmax = 1.17  # room for the value written after each bar
    writes_numbers = True

    def prepare(self, dynamic: list[Artist]) -> None:
        pass

    def draw(self, fig: Figure, dynamic: list[Artist]) -> None:
        fig.canvas.draw()


class _Blit:
    """The widget: only ``dynamic`` artists are redrawn over a cached background, so an update
    costs milliseconds; the numbers go to the widget's text line, as text artists would have
    to be redrawn too."""

    top = 0.94
    bar_xmax = 1.0
    writes_numbers = False

    def __init__(self) -> None:
        self.background: Any = None

    def prepare(self, dynamic: list[Artist]) -> None:
        # animated artists are left out of canvas.draw(), so the background holds the rest
        for a in dynamic:
            a.set_animated(True)

    def draw(self, fig: Figure, dynamic: list[Artist]) -> None:
        canvas = fig.canvas
        assert isinstance(canvas, FigureCanvasAgg)  # blitting needs the Agg buffer
        if self.background is None:
            canvas.draw()
            self.background = canvas.copy_from_bbox(fig.bbox)
        canvas.restore_region(self.background)
        for a in dynamic:
            fig.draw_artist(a)


class ExplorerView:
    """The explorer figure: accuracy bars, accuracy-vs-rate curves, confusion matrix, samples.

    Built once; :meth:`update` points the setting-dependent artists at a new state and
    :meth:`render` encodes the figure. ``animated=True`` (the widget) blits (:class:`_Blit`);
    ``animated=False`` (the static figure) redraws everything and adds a title line and the
    bar values (:class:`_Redraw`). ``figure`` is a plain matplotlib ``Figure``. Notebook 05.
    """

    TILE = 32

    def __init__(self, data: ExplorerData, state: ExplorerState, n_samples: int = 20,
                 cols: int = 10, dpi: int = 72, animated: bool = False) -> None:
        self.data, self.animated = data, animated
        self._drawer = _Blit() if animated else _Redraw()
        numbers = self._drawer.writes_numbers
        mods = list(data.modalities)
        self.fig = fig = Figure(figsize=(13, 7.0), dpi=dpi)
        FigureCanvasAgg(fig)
        # rows: panels, the curves' legend, the samples
        gs = fig.add_gridspec(3, 2 + len(mods), height_ratios=[3.3, 0.5, 1.9], left=0.095,
                              right=0.95, top=self._drawer.top, bottom=0.01,
                              wspace=0.3, hspace=0.3)
        self._dynamic: list[Artist] = []
        methods = data.methods
        self.colors = method_colors(methods)
        self.styles = curve_styles(methods)

        # accuracy per method
        ax = self.ax_bars = fig.add_subplot(gs[0, 0])
        y = np.arange(len(methods))[::-1]
        self.bars = dict(zip(methods, ax.barh(y, np.zeros(len(methods)), height=0.7,
                                              color=[self.colors[m] for m in methods])))
        ax.set_yticks(y, methods, fontsize=8)
        ax.set_xlim(0, self._drawer.bar_xmax)
        ax.set_xlabel("test accuracy")
        ax.set_title("accuracy per method", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        self._dynamic += list(self.bars.values())
        self.bar_text = {m: ax.text(0.01, yi, "", va="center", fontsize=8)
                         for m, yi in zip(methods, y)} if numbers else {}

        # accuracy vs the rate of each modality, the other rates held
        self.curve_axes, self.lines, self.points, self.vlines = {}, {}, {}, {}
        for j, mod in enumerate(mods):
            ax = fig.add_subplot(gs[0, 1 + j])
            self.curve_axes[mod] = ax
            self.lines[mod] = {m: ax.plot(data.curve_rates, np.zeros_like(data.curve_rates),
                                          color=self.colors[m], lw=1.0, ms=4, label=m,
                                          **self.styles[m])[0] for m in methods}
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
        # one legend for every curve panel, in its own row under them (static: when blitting
        # it stays in the cached background); the picked method's curve is drawn thick
        ax = self.ax_legend = fig.add_subplot(gs[1, :])
        ax.set_axis_off()
        first = self.lines[mods[0]]
        self.legend = ax.legend([first[m] for m in methods], methods, loc="center",
                                ncol=min(len(methods), 9), fontsize=8, frameon=False,
                                title="curves (the picked method is drawn thick)",
                                title_fontsize=8, handlelength=3.2)

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
        # fixed colour scale (0..1), so the colour bar is static
        self.colorbar = fig.colorbar(self.conf, ax=ax, fraction=0.046, pad=0.03)
        self.colorbar.ax.tick_params(labelsize=7)
        self.colorbar.set_label("share of the true class", fontsize=8)
        self._dynamic.append(self.conf)

        # test samples, one tile per modality, missing ones greyed out
        self._init_samples(fig.add_subplot(gs[2, :]), n_samples, cols, mods)
        # the labels under the tiles are rewritten (true→predicted) only where numbers are
        # written; when blitting they stay in the static background
        self._relabeled = self.sample_text if numbers else []
        self.suptitle = fig.suptitle("", fontsize=10) if numbers else None
        self._drawer.prepare(self._dynamic)
        self.update(state)

    def _init_samples(self, ax: Any, n: int, cols: int, mods: list[str]) -> None:
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

    def update(self, state: ExplorerState) -> ExplorerView:
        """Point every setting-dependent artist at ``state``."""
        picked = state.method
        for m, bar in self.bars.items():
            bar.set_width(state.accuracies[m])
            bar.set_alpha(1.0 if m == picked else 0.45)
            bar.set_edgecolor("black" if m == picked else "none")
        for m, txt in self.bar_text.items():
            acc = state.accuracies[m]
            txt.set_text(f"{acc:.3f}")
            txt.set_x(acc + 0.01)
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
        for i in range(self.n_samples):
            mosaic[self.frames[i]] = green if right[i] else red
            for j, sl in enumerate(self.slices[i]):
                mosaic[sl] = self.present_rgb[sl] if state.presence[i, j] else \
                    self.missing_rgb[sl]
        self.mosaic.set_data(mosaic)
        classes = self.data.classes
        for i, txt in enumerate(self._relabeled):
            y, p = int(state.labels[i]), int(state.predictions[i])
            txt.set_text(classes[y] if right[i] else f"{classes[y]}→{classes[p]}")
            txt.set_color("black" if right[i] else "tab:red")
        if self.suptitle is not None:
            self.suptitle.set_text(summary_text(state))
        self.state = state
        return self

    @property
    def figure(self) -> Figure:
        return self.fig

    def render(self, fmt: str = "jpeg", quality: int = 90) -> bytes:
        """Image bytes (``"jpeg"`` or ``"png"``) of the current state.

        JPEG at quality 90 encodes about ten times faster than PNG here, at a similar size.
        """
        self._drawer.draw(self.fig, self._dynamic)
        canvas = self.fig.canvas
        assert isinstance(canvas, FigureCanvasAgg)
        buf = np.asarray(canvas.buffer_rgba())
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
    """The explorer's figure for one setting (the static twin of the widget). Notebook 05."""
    return ExplorerView(data, state, n_samples, cols, dpi=100).figure


__all__ = ["ExplorerView", "curve_styles", "explorer_figure"]
