"""Accuracy per group and the spread of a k-group estimate (notebook 02), on hand-computed cases."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from umm_helpers.course import group_accuracy as ga

CORRECT = np.array([1, 1, 1, 0, 0, 1, 0])
GROUPS = ["a", "a", "a", "b", "b", "c", "c"]  # a: 3/3, b: 0/2, c: 1/2


def test_per_group_hand_computed():
    assert ga.per_group(CORRECT, GROUPS) == {"a": (1.0, 3), "b": (0.0, 2), "c": (0.5, 2)}
    seeds = np.stack([CORRECT, 1 - CORRECT])  # two seeds that disagree everywhere: 0.5 each
    assert ga.per_group(seeds, GROUPS) == {"a": (0.5, 3), "b": (0.5, 2), "c": (0.5, 2)}


def test_subset_accuracies_enumerates_small_cases_exactly():
    # pairs weigh samples equally: {a, b} 3/5, {a, c} 4/5, {b, c} 1/4
    np.testing.assert_allclose(ga.subset_accuracies(CORRECT, GROUPS, k=2), [0.6, 0.8, 0.25])
    np.testing.assert_allclose(ga.subset_accuracies(CORRECT, GROUPS, k=3), [4 / 7])
    np.testing.assert_allclose(ga.subset_accuracies(CORRECT, GROUPS, k=1), [1.0, 0.0, 0.5])


def test_subset_accuracies_draws_are_seeded_and_within_the_group_range():
    rng = np.random.default_rng(1)
    groups = np.repeat([f"v{i}" for i in range(20)], 10)
    correct = (rng.random(200) < np.repeat(np.linspace(0.4, 1.0, 20), 10)).astype(float)
    a = ga.subset_accuracies(correct, groups, k=8, draws=500, seed=3)
    b = ga.subset_accuracies(correct, groups, k=8, draws=500, seed=3)
    assert a.shape == (500,) and np.array_equal(a, b)
    per = [acc for acc, _ in ga.per_group(correct, groups).values()]
    assert min(per) <= a.min() and a.max() <= max(per)
    # more groups per subset: a narrower spread
    wide = ga.subset_accuracies(correct, groups, k=4, draws=500, seed=3)
    assert np.std(wide) > np.std(a)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\[N\]"):
        ga.per_group(CORRECT, GROUPS[:3])
    with pytest.raises(ValueError, match="between 1"):
        ga.subset_accuracies(CORRECT, GROUPS, k=4)
    with pytest.raises(ValueError, match="0/1"):
        ga.per_group(np.array([2, 0]), ["a", "b"])
    with pytest.raises(ValueError, match="draws"):
        ga.subset_accuracies(CORRECT, GROUPS, k=1, draws=0)
    with pytest.raises(ValueError, match="at least one split"):
        ga.group_strip({})


def test_group_strip_dots_labels_and_split_means():
    fig = ga.group_strip({"validation": ga.per_group(CORRECT, GROUPS),
                          "test": {"d": (0.9, 10)}}, title="t", group_name="voices")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [len(c.get_offsets()) for c in ax.collections if len(c.get_offsets())][:1] == [3]
    texts = [t.get_text() for t in ax.texts]
    # the split's accuracy is 4/7: a (1.0) and b (0.0) are more than 0.1 away and get labels,
    # c (0.5) and d (the only group of its split) do not
    assert {"a", "b"} <= set(texts) and not {"c", "d"} & set(texts)
    assert "0.571" in texts and "0.900" in texts
    assert ax.get_xticklabels()[0].get_text() == "validation\n(3 voices)"
    everything = ga.group_strip({"v": ga.per_group(CORRECT, GROUPS)}, label_gap=0)
    assert {"a", "b", "c"} <= {t.get_text() for t in everything.axes[0].texts}
