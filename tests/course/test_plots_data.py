"""Data-set figures of notebook 00 return Figures with the expected content."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from umm_helpers.core.missing import MaskTable
from umm_helpers.course import plots
from umm_helpers.data import MultiModalDataset


@pytest.fixture(scope="module")
def ds():
    rng = np.random.default_rng(0)
    part = lambda n: ({"image": rng.random((n, 1, 8, 8)), "audio": rng.random((n, 1, 6, 5))},
                      np.arange(n) % 3)
    return MultiModalDataset.from_arrays(part(12), part(6), part(6), classes=["a", "b", "c"])


def test_image_grid_titles_and_missing(ds):
    present = np.array([True, False] * 3)
    fig = plots.image_grid(ds.test, n=6, cols=3, present=present)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["a", "b (missing)", "c", "a (missing)", "b", "c (missing)"]


def test_spectrograms_and_balance(ds):
    assert len(plots.spectrograms(ds.test, [0, 1, 2]).axes) == 3
    fig = plots.class_balance(ds.splits())
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["train (12)", "validation (6)", "test (6)"]


def test_mask_tables_title_reports_missing_fraction():
    t = MaskTable.create(100, ["audio", "image"], 0)
    fig = plots.mask_tables({"miss:image": t.presence_array("miss:image")}, t.modalities)
    assert "missing: audio 0.00, image 1.00" in fig.axes[0].get_title()


def test_score_bars_one_bar_per_method_and_condition():
    rows = [{"method": "a", "full": (0.9, 0.01), "miss:x": (0.5, 0.1)},
            {"method": "b", "full": (0.8, 0.02), "miss:x": (0.7, 0.0)}]
    fig = plots.score_bars(rows, ["full", "miss:x"], title="t")
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 2) for p in ax.patches)
    assert heights == [0.5, 0.7, 0.8, 0.9]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]


def test_score_bars_single_seed_has_no_error_bars_and_legend_sits_outside():
    rows = [{"method": "a", "full": (0.9, 0.0), "miss:x": (0.5, 0.0)}]
    ax = plots.score_bars(rows, ["full", "miss:x"]).axes[0]
    def errorbars(ax):
        return [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]

    assert not errorbars(ax), "a single seed has no spread to draw"
    spread = plots.score_bars([{"method": "a", "full": (0.9, 0.1)}], ["full"]).axes[0]
    assert len(errorbars(spread)) == 1
    ax.figure.canvas.draw()
    legend, axes = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= axes.x1 - 1, "the legend must not cover the bars"


def test_score_bars_chance_and_ceiling_lines():
    rows = [{"method": "a", "full": (0.9, 0.0), "miss:x": (0.5, 0.0)},
            {"method": "b", "full": (0.8, 0.0), "miss:x": (0.7, 0.0)}]
    ax = plots.score_bars(rows, ["full", "miss:x"], chance=0.1,
                          ceilings={"miss:x": 0.75}, ceiling_label="Bayes ceiling").axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(labels) == ["Bayes ceiling", "chance (0.10)", "full", "miss:x"]
    ticks = [c for c in ax.collections if c.get_label() == "Bayes ceiling"][0]
    assert [float(seg[0][1]) for seg in ticks.get_segments()] == [0.75, 0.75]
    assert ax.lines[-1].get_ydata()[0] == 0.1


def test_sweep_curves_label_with_aurc():
    res = {"m": {"rates": [0, 0.5, 1], "sweeps": {"any": [0.9, 0.8, 0.7]}, "aurc": {"any": 0.8}}}
    fig = plots.sweep_curves(res, ["any"], marker=("any", 0.5))
    ax = fig.axes[0]
    assert ax.get_legend().get_texts()[0].get_text() == "m (AURC 0.800)"
    assert list(ax.lines[0].get_ydata()) == [0.9, 0.8, 0.7]


def test_sweep_curves_zoom_and_legend_below():
    res = {"a": {"rates": [0, 1], "sweeps": {"x": [0.9, 0.8]}, "aurc": {"x": 0.85}},
           "b": {"rates": [0, 1], "sweeps": {"x": [0.88, 0.83]}, "aurc": {"x": 0.855}}}
    ax = plots.sweep_curves(res, ["x"]).axes[0]
    assert ax.get_ylim() == (0.0, 1.0), "the default axis is the whole accuracy range"
    ax = plots.sweep_curves(res, ["x"], ylim=None).axes[0]
    assert ax.get_ylim() == pytest.approx((0.78, 0.92))
    anchor = ax.get_legend().get_bbox_to_anchor().transformed(ax.transAxes.inverted())
    assert anchor.y0 < 0, "the legend sits below the panel, never over a curve"
