"""Figures of notebooks 02-03 return Figures with the expected content."""
import numpy as np
from matplotlib.figure import Figure

from umm_helpers.course import plots


def test_training_curves_lines_and_reused_skipped():
    hist = [{"epoch": e, "train_loss": 1.0 / e, "val_score": 0.1 * e} for e in range(1, 6)]
    reused = [{"epoch": 1, "train_loss": 9.0, "val_score": 0.0, "reused": True}]
    fig = plots.training_curves({"image": hist, "audio": reused + hist[:3]})
    assert isinstance(fig, Figure)
    left, right = fig.axes
    assert [line.get_label() for line in left.get_lines()] == ["image", "audio"]
    np.testing.assert_allclose(left.get_lines()[0].get_ydata(), [1.0 / e for e in range(1, 6)])
    assert list(left.get_lines()[1].get_xdata()) == [1, 2, 3], "reused entries are skipped"
    np.testing.assert_allclose(right.get_lines()[0].get_ydata(), [0.1 * e for e in range(1, 6)])
    assert right.get_ylim() == (0.0, 1.0)


def test_training_curves_without_validation():
    hist = [{"epoch": e, "train_loss": 1.0, "val_score": None} for e in range(1, 3)]
    fig = plots.training_curves({"run": hist})
    assert len(fig.axes[0].get_lines()) == 1 and len(fig.axes[1].get_lines()) == 0


def test_probe_bars_means_errors_and_dots():
    scores = {"image": {"unimodal": [0.8, 0.9, 0.85], "joint": [0.6, 0.7, 0.65]},
              "audio": {"unimodal": [0.7, 0.72, 0.74], "joint": [0.5, 0.55, 0.6]}}
    fig = plots.probe_bars(scores, title="probe")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, [0.85, 0.72, 0.65, 0.55])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["image", "audio"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["unimodal", "joint"]
    dots = sum(len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets")
               and len(c.get_offsets()) == 3)
    assert dots == 12, "one dot per seed"
    assert abs(ax.get_ylim()[0] - 0.4) < 1e-9 and ax.get_title() == "probe"


def test_regime_figures():
    ceilings = {0.0: {"x1": 0.7, "x2": 0.65, "x1+x2": 0.96, "additive": 0.96},
                1.0: {"x1": 0.6, "x2": 0.58, "x1+x2": 0.9, "additive": 0.88}}
    fig = plots.ceilings_by_dial(ceilings, marker=1.0)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()][:4] == [
        "Bayes, x1", "Bayes, x2", "Bayes, x1+x2", "sum of uni-modal posteriors (ume's best)"]
    scores = {"ume": {"x1+x2": (0.7, 0.01), "x1": (0.5, 0.0)},
              "joint": {"x1+x2": (0.84, 0.0), "x1": (0.44, 0.01)}}
    fig = plots.pattern_scores(scores, {"x1+x2": 0.84, "x1": 0.5}, chance=0.25)
    assert len(fig.axes[0].patches) == 4
    assert len(plots.pattern_scores(scores, None, chance=0.1).axes[0].collections) == 2  # no tick
    points = {"p=0.0": {"single": (0.44, 0.0), "both": (0.84, 0.0)},
              "p=1.0": {"single": (0.5, 0.0), "both": (0.72, 0.0)},
              "ume": {"single": (0.5, 0.0), "both": (0.72, 0.0)}}
    fig = plots.tradeoff_curve(points, (0.5, 0.84))
    assert "ume" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_training_curves_integer_epochs_test_lines_and_outside_legend():
    hist = [{"epoch": e, "train_loss": 1.0 / e, "val_score": 0.5 + 0.02 * e} for e in range(1, 21)]
    fig = plots.training_curves({"audio": hist, "image": hist}, test_scores={"audio": 0.84})
    left, right = fig.axes
    for ax in (left, right):
        ticks = [t for t in ax.get_xticks() if 1 <= t <= 20]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    labels = [line.get_label() for line in right.get_lines()]
    assert labels == ["audio (validation)", "audio (test, last epoch)", "image (validation)"]
    np.testing.assert_allclose(right.get_lines()[1].get_ydata(), [0.84, 0.84])
    assert right.get_lines()[1].get_color() == right.get_lines()[0].get_color()
    legend = right.get_legend()
    assert legend is not None and legend.get_bbox_to_anchor().x0 >= right.bbox.x1 - 1, \
        "the legend sits right of the axes, over no line"


def test_accuracy_vs_ceiling_with_seeds_has_means_error_bars_and_dots():
    scores = {"joint": {"full": [0.9, 0.92, 0.94], "miss:x1": [0.6, 0.62, 0.64]},
              "ume-mma": {"full": 0.95, "miss:x1": 0.65}}
    fig = plots.accuracy_vs_ceiling(scores, {"full": 0.96, "miss:x1": 0.66}, title="t")
    ax = fig.axes[0]
    np.testing.assert_allclose([p.get_height() for p in ax.patches], [0.92, 0.62, 0.95, 0.65])
    dots = [c for c in ax.collections if len(c.get_offsets()) == 3]
    assert len(dots) == 2, "one dot per seed for the method with seeds"
    assert ax.get_legend().get_bbox_to_anchor().x0 >= ax.bbox.x1 - 1
    assert abs(ax.get_ylim()[0] - 0.5) < 1e-9 and ax.get_title() == "t"
