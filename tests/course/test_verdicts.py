"""The course's expectations against measured margins (notebook 06)."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from umm_helpers.course.verdicts import Expectation, margins_figure, verdict_table


def test_held_follows_margin_and_threshold():
    assert Expectation("a", margin=-0.004, threshold=-0.005).held
    assert not Expectation("a", margin=-0.019, threshold=-0.005).held
    assert Expectation("b", margin=0.0, threshold=0.0).held
    assert not Expectation("b", margin=0.0, threshold=0.0, strict=True).held
    assert Expectation("b", margin=0.001, threshold=0.0, strict=True).held
    with pytest.raises(ValueError, match="finite"):
        Expectation("c", margin=float("nan"), threshold=0.0)


def test_verdict_table_rows_and_margins_in_points():
    table = verdict_table([Expectation("x ≥ y − 0.5 points", -0.019, -0.005, "−1.9 points"),
                           Expectation("x above z", 0.004, 0.0, "+0.4 points", strict=True)])
    lines = table.splitlines()
    assert lines[0].startswith("| the course's expectation (threshold fixed by the course)")
    assert lines[2] == "| x ≥ y − 0.5 points | −1.9 points | -1.4 points | **no** |"
    assert lines[3] == "| x above z | +0.4 points | +0.4 points | yes |"
    with pytest.raises(ValueError):
        verdict_table([])


def test_margins_figure_bars_hatches_and_checks():
    cols = {"A": [Expectation("e1", 0.02, 0.0), Expectation("e2", -0.01, 0.0)],
            "B": [Expectation("e1", -0.03, 0.0), Expectation("e2", 0.05, 0.05)]}
    fig = margins_figure(cols, title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches]
    np.testing.assert_allclose(widths, [2.0, -1.0, -3.0, 0.0], atol=1e-9)
    assert [p.get_hatch() or "" for p in ax.patches] == ["", "//", "//", ""]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["e1", "e2"]
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().x0 >= ax.bbox.x1 - 1
    assert [t.get_text() for t in legend.get_texts()] == [
        "A", "B", "not held", "threshold (right of it: held)"]
    assert [h.get_hatch() or "" for h in legend.legend_handles[:2]] == ["", ""], \
        "a column's swatch is plain, whatever its first bar"
    with pytest.raises(ValueError, match="other expectations"):
        margins_figure({"A": cols["A"], "B": cols["B"][:1]})
    with pytest.raises(ValueError):
        margins_figure({})
