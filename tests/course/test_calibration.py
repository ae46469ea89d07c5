"""Reliability bins, ECE and temperature scaling against hand-computed values (notebook 03)."""
import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from umm_helpers.course import calibration as cal


def binary_logits(p):
    """Two-class logits whose softmax gives class 0 probability p."""
    p = np.asarray(p, dtype=float)
    return np.stack([np.log(p), np.log(1 - p)], axis=1)


def test_bins_and_ece_by_hand():
    # confidences 0.95, 0.95, 0.65, 0.55 (always class 0); right, wrong, right, wrong
    logits = binary_logits([0.95, 0.95, 0.65, 0.55])
    labels = np.array([0, 1, 0, 1])
    rel = cal.reliability(logits, labels, n_bins=10)
    assert rel.count.tolist() == [0, 0, 0, 0, 0, 1, 1, 0, 0, 2]
    np.testing.assert_allclose(rel.confidence[[5, 6, 9]], [0.55, 0.65, 0.95])
    np.testing.assert_allclose(rel.accuracy[[5, 6, 9]], [0.0, 1.0, 0.5])
    assert np.isnan(rel.accuracy[0]) and np.isnan(rel.confidence[0]), "empty bins are NaN"
    # 2/4 * |0.5 - 0.95| + 1/4 * |1 - 0.65| + 1/4 * |0 - 0.55| = 0.225 + 0.0875 + 0.1375
    assert rel.ece == pytest.approx(0.45)
    assert cal.expected_calibration_error(logits, labels) == pytest.approx(0.45)
    assert rel.n == 4


def test_calibrated_predictions_have_zero_ece_and_bin_edges():
    # 4 samples at confidence 0.75, 3 right: calibrated
    logits = binary_logits([0.75] * 4)
    assert cal.expected_calibration_error(logits, [0, 0, 0, 1]) == pytest.approx(0.0, abs=1e-12)
    # confidence exactly 0.5 falls in the first of two bins (0, 0.5]
    rel = cal.reliability(np.zeros((3, 2)), [0, 1, 0], n_bins=2)
    assert rel.count.tolist() == [3, 0]
    assert rel.ece == pytest.approx(abs(2 / 3 - 0.5))


def test_torch_inputs_match_numpy():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(50, 4, generator=g) * 3
    y = torch.randint(0, 4, (50,), generator=g)
    a = cal.reliability(z, y, n_bins=5)
    b = cal.reliability(z.numpy(), y.numpy(), n_bins=5)
    assert a.count.tolist() == b.count.tolist() and a.ece == pytest.approx(b.ece)
    assert a.n == 50


def test_nll_and_fitted_temperature_by_hand():
    # every sample has logits [2, 0]; 3 of 4 are class 0. NLL is minimal where
    # sigmoid(2 / T) = 0.75, i.e. T = 2 / ln 3.
    logits = np.tile([2.0, 0.0], (4, 1))
    labels = np.array([0, 0, 0, 1])
    t = cal.fit_temperature(logits, labels)
    assert t == pytest.approx(2 / math.log(3), rel=1e-4)
    expected = -(3 * math.log(0.75) + math.log(0.25)) / 4
    assert cal.nll(logits, labels, t) == pytest.approx(expected, rel=1e-6)
    assert cal.nll(logits, labels, 1.0) > cal.nll(logits, labels, t)


def test_temperature_keeps_argmax_and_changes_ece():
    g = np.random.default_rng(0)
    z = g.normal(size=(200, 3)) * 4
    y = g.integers(0, 3, 200)
    hot, cool = cal.reliability(z, y), cal.reliability(z / 4, y)
    assert (cal.softmax(z).argmax(1) == cal.softmax(z / 4).argmax(1)).all()
    assert cool.ece < hot.ece, "random labels: softer posteriors are better calibrated"


def test_errors_are_clear():
    with pytest.raises(ValueError, match=r"\[N, C\]"):
        cal.reliability(np.zeros(3), [0, 0, 0])
    with pytest.raises(ValueError, match="labels must have shape"):
        cal.reliability(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ValueError, match="integers in"):
        cal.reliability(np.zeros((2, 2)), [0, 2])
    with pytest.raises(ValueError, match="n_bins"):
        cal.reliability(np.zeros((2, 2)), [0, 1], n_bins=0)
    with pytest.raises(ValueError, match="NaN"):
        cal.reliability(np.array([[np.nan, 0.0]]), [0])
    with pytest.raises(ValueError, match="bounds"):
        cal.fit_temperature(np.zeros((2, 2)), [0, 1], bounds=(2.0, 1.0))


def test_reliability_diagram_panels_lines_and_legend_outside():
    rel = cal.reliability(binary_logits([0.95, 0.95, 0.65, 0.55]), [0, 1, 0, 1])
    fig = cal.reliability_diagram({"ume": {"image": rel, "audio": rel}, "joint": {"image": rel}},
                                  title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    left = fig.axes[0]
    labels = [line.get_label() for line in left.get_lines()]
    assert labels == ["perfectly calibrated", "image (ECE 0.450)", "audio (ECE 0.450)"]
    np.testing.assert_allclose(left.get_lines()[1].get_xdata(), [0.55, 0.65, 0.95])
    anchor = left.get_legend().get_bbox_to_anchor().transformed(left.transAxes.inverted())
    assert anchor.y0 < 0, "the legend sits below the axes"
    with pytest.raises(ValueError):
        cal.reliability_diagram({})
