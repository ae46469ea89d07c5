"""2-D projections of encoder features (notebook 02), against hand-computed cases."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from umm_helpers.course import projection

# Four points on two perpendicular axes: variance 8 along the first, 2 along the second (sum of
# squares), so the principal axes are (1, 0) and (0, 1) and they hold 80% and 20%.
CROSS = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])


def test_pca_2d_hand_computed_cross():
    points, explained = projection.pca_2d(CROSS + 5.0)  # centring removes the offset
    np.testing.assert_allclose(points, CROSS, atol=1e-12)
    np.testing.assert_allclose(explained, [0.8, 0.2])


def test_pca_2d_picks_the_two_largest_axes_of_three_and_fixes_signs():
    x = np.array([[0.0, -3.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, -1.0], [0.0, 0.0, 1.0],
                  [0.5, 0.0, 0.0], [-0.5, 0.0, 0.0]])
    points, explained = projection.pca_2d(x)
    np.testing.assert_allclose(points[:, 0], [-3, 3, 0, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(points[:, 1], [0, 0, -1, 1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(explained, [18 / 20.5, 2 / 20.5])
    flipped, _ = projection.pca_2d(-x)  # the sign rule: negated data, negated points
    np.testing.assert_allclose(flipped, -points, atol=1e-12)


def test_pca_2d_is_deterministic_and_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6)) @ rng.standard_normal((6, 6))
    a, ea = projection.pca_2d(x)
    b, eb = projection.pca_2d(x.copy())
    assert np.array_equal(a, b) and np.array_equal(ea, eb)
    vals, vecs = np.linalg.eigh(np.cov(x, rowvar=False))
    top = vecs[:, ::-1][:, :2]
    np.testing.assert_allclose(np.abs(a), np.abs((x - x.mean(0)) @ top), atol=1e-9)
    np.testing.assert_allclose(ea, vals[::-1][:2] / vals.sum(), atol=1e-12)


def test_one_feature_gives_a_flat_second_axis():
    points, explained = projection.pca_2d(np.array([[1.0], [3.0], [5.0]]))
    np.testing.assert_allclose(points, [[-2, 0], [0, 0], [2, 0]])
    np.testing.assert_allclose(explained, [1.0, 0.0])


def test_class_separation_hand_computed():
    # class means (2, 0), (-2, 0), (0, 0): between-class 4 + 4 + 0 = 8 of a total of 10
    assert projection.class_separation(CROSS, np.array([0, 1, 2, 2])) == pytest.approx(0.8)
    # both classes centred on the origin: the class means explain nothing
    assert projection.class_separation(CROSS, np.array([0, 0, 1, 1])) == pytest.approx(0.0)
    # every point its own class: everything
    assert projection.class_separation(CROSS, np.arange(4)) == pytest.approx(1.0)
    assert projection.class_separation(np.zeros((3, 2)), np.array([0, 1, 1])) == 0.0


def test_project_bundles_both():
    p = projection.project(CROSS, np.array([0, 1, 2, 2]))
    np.testing.assert_allclose(p.points, CROSS, atol=1e-12)
    assert p.separation == pytest.approx(0.8) and p.explained.sum() == pytest.approx(1.0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\[N, F\]"):
        projection.pca_2d(np.zeros(5))
    with pytest.raises(ValueError, match="at least 2 samples"):
        projection.pca_2d(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        projection.pca_2d(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="labels"):
        projection.class_separation(CROSS, np.array([0, 1]))
    with pytest.raises(ValueError, match="at least one row"):
        projection.projection_grid({}, np.array([0]), ["0"])


def test_projection_grid_panels_titles_and_outside_legend():
    labels = np.array([0, 1, 2, 2])
    p = projection.project(CROSS, labels)
    fig = projection.projection_grid({"audio": {"unimodal": p, "joint": p},
                                      "image": {"unimodal": p}}, labels, ["a", "b", "c"])
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 4 and not axes[3].axison  # image has no joint panel
    assert "separation 0.80" in axes[0].get_title() and "100% of variance" in axes[0].get_title()
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="labels"):
        projection.projection_grid({"audio": {"unimodal": p}}, labels[:2], ["a", "b", "c"])
