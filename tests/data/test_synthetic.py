"""The synthetic two-view task (notebook 01)."""
import numpy as np
import pytest

from umm_helpers.data import load_dataset, synthetic


def test_make_task_geometry_is_complementary():
    spec = synthetic.make_task(1.0, 2.0)
    (m1, s1), (m2, s2) = spec.view("x1"), spec.view("x2")
    assert (s1, s2) == (1.0, 2.0) and m1.shape == m2.shape == (4, 2)
    assert np.isclose(spec.prior.sum(), 1.0)
    # view x1 separates {0,1} from {2,3} along its first axis, view x2 {0,2} from {1,3}
    assert (m1[[0, 1], 0] < 0).all() and (m1[[2, 3], 0] > 0).all()
    assert (m2[[0, 2], 0] < 0).all() and (m2[[1, 3], 0] > 0).all()
    assert abs(m1[0, 0]) > abs(m1[0, 1]) and abs(m2[0, 0]) > abs(m2[0, 1])


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_make_task_rejects_bad_sigma(bad):
    with pytest.raises(ValueError, match="sigma1"):
        synthetic.make_task(bad, 1.0)


def test_make_task_rejects_bad_prior():
    with pytest.raises(ValueError, match="prior"):
        synthetic.make_task(prior=[0.5, 0.5, 0.5, 0.5])


def test_sample_is_seeded_and_matches_the_spec():
    spec = synthetic.make_task(0.5, 1.5)
    x, y = synthetic.sample(spec, 40000, seed=3)
    x2, y2 = synthetic.sample(spec, 40000, seed=3)
    assert np.array_equal(y, y2) and all(np.array_equal(x[m], x2[m]) for m in x)
    assert not np.array_equal(y, synthetic.sample(spec, 40000, seed=4)[1])
    assert x["x1"].dtype == np.float32 and x["x1"].shape == (40000, 2) and y.dtype == np.int64
    assert np.allclose(np.bincount(y, minlength=4) / len(y), spec.prior, atol=0.01)
    for m, sigma in zip(spec.modalities, spec.sigmas):
        means = spec.view(m)[0]
        for k in range(4):
            xs = x[m][y == k]
            assert np.allclose(xs.mean(axis=0), means[k], atol=0.05)
            assert np.allclose(xs.std(axis=0), sigma, rtol=0.05)
    # views are independent given the class
    resid1 = x["x1"] - spec.view("x1")[0][y]
    resid2 = x["x2"] - spec.view("x2")[0][y]
    assert abs(np.corrcoef(resid1[:, 0], resid2[:, 0])[0, 1]) < 0.02


def test_load_through_the_registry():
    ds = load_dataset("synthetic", n_train=300, n_val=100, n_test=200, seed=1, sigma1=0.7)
    assert ds.name == "synthetic" and ds.modalities == ["x1", "x2"]
    assert ds.summary()["sizes"] == {"train": 300, "validation": 100, "test": 200}
    assert tuple(ds.train.inputs["x1"].shape) == (300, 2) and ds.num_classes == 4
    assert ds.info["spec"].sigmas == (0.7, synthetic.SIGMA2)
    same = synthetic.load(n_train=300, n_val=100, n_test=200, seed=1, sigma1=0.7)
    assert same.checksum == ds.checksum
    other = synthetic.load(n_train=300, n_val=100, n_test=200, seed=2, sigma1=0.7)
    assert other.checksum != ds.checksum
    assert not np.array_equal(ds.train.inputs["x1"][:100].numpy(),
                              ds.validation.inputs["x1"].numpy())


def test_two_views_plot():
    from matplotlib.figure import Figure

    from umm_helpers.course import plots

    ds = synthetic.load(n_train=50, n_val=10, n_test=10)
    fig = plots.two_views(ds.train, n=40)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
