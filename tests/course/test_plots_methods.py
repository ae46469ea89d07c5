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
