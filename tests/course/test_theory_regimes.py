"""Exact per-pattern ceilings of the synthetic family against Monte Carlo with an independent
posterior (scipy's Gaussian densities with the full covariance), at several dial settings."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from umm_helpers.course import theory
from umm_helpers.data import synthetic

N = 60_000
# 3 standard errors of an accuracy near 0.5 over N samples
TOLERANCE = 3 * np.sqrt(0.25 / N)


def _mc_log_posterior(spec, x, views):
    """log p(y | x_views) from scipy densities of each component: no code shared with theory."""
    idx = [spec.modalities.index(v) for v in views]
    sig = np.array([spec.sigmas[j] for j in idx])
    cov = np.kron(np.diag(sig**2) + spec.shared**2, np.eye(2))  # axes grouped per view
    pts = np.concatenate([x[v] for v in views], axis=1).astype(np.float64)
    comp = []
    for c in range(spec.means[0].shape[0]):
        mean = np.concatenate([spec.means[j][c] for j in idx])
        k = spec.classes_of[c]
        w = spec.weights[c] / spec.weights[spec.classes_of == k].sum()
        comp.append(np.log(spec.prior[k] * w) + multivariate_normal(mean, cov).logpdf(pts))
    comp = np.stack(comp, axis=1)
    joint = np.stack([logsumexp(comp[:, spec.classes_of == k], axis=1)
                      for k in range(spec.num_classes)], axis=1)
    return joint - logsumexp(joint, axis=1, keepdims=True)


SETTINGS = [("complementary", 0.0), ("complementary", 1.0), ("complementary", 2.0),
            ("xor", 0.0), ("xor", 1.5)]


@pytest.mark.parametrize("variant, shared", SETTINGS)
def test_ceilings_match_monte_carlo(variant, shared):
    spec = synthetic.make_task(shared=shared, variant=variant)
    x, y = synthetic.sample(spec, N, seed=11)
    patterns = [["x1"], ["x2"], ["x1", "x2"]]
    for views in patterns:
        mc = float((_mc_log_posterior(spec, x, views).argmax(axis=1) == y).mean())
        assert theory.bayes_accuracy(spec, views) == pytest.approx(mc, abs=TOLERANCE), views
    per_view = [_mc_log_posterior(spec, x, [v]) for v in ("x1", "x2")]
    additive = per_view[0] + per_view[1] - np.log(spec.prior)
    mc_add = float((additive.argmax(axis=1) == y).mean())
    assert theory.additive_accuracy(spec) == pytest.approx(mc_add, abs=TOLERANCE)


def test_the_three_regimes():
    """(i) independent: the sum of uni-modal posteriors is Bayes-optimal; (ii) a shared
    nuisance: it falls below the joint ceiling, more as the dial grows; (iii) xor: it is at
    chance while the joint ceiling is high."""
    gaps = []
    for shared in (0.0, 1.0, 2.0):
        c = theory.pattern_ceilings(synthetic.make_task(shared=shared))
        gaps.append(c["x1+x2"] - c["additive"])
        assert c["x1+x2"] > max(c["x1"], c["x2"])
    assert abs(gaps[0]) < 1e-3 and 0.02 < gaps[1] < gaps[2]
    xor = theory.pattern_ceilings(synthetic.make_task(variant="xor"))
    assert xor["x1"] == pytest.approx(0.5, abs=1e-9) and xor["x2"] == pytest.approx(0.5, abs=1e-9)
    assert xor["additive"] == pytest.approx(0.5, abs=0.01) and xor["x1+x2"] > 0.9


def test_shared_zero_keeps_the_notebook_01_data():
    """The dial at 0 draws exactly the samples of the original task."""
    spec = synthetic.make_task()
    x, y = synthetic.sample(spec, 50, seed=3)
    rng = np.random.default_rng([3, 50, 2310_06383])
    labels = rng.choice(4, size=50, p=spec.prior)
    assert np.array_equal(labels, y)
    expected = (spec.means[0][labels] + spec.sigmas[0] * rng.standard_normal((50, 2)))
    assert np.array_equal(x["x1"], expected.astype(np.float32))


@pytest.mark.parametrize("kwargs, message", [
    ({"shared": -1.0}, "shared must be a finite number >= 0"),
    ({"shared": float("nan")}, "shared must be a finite number >= 0"),
    ({"variant": "and"}, "variant must be one of"),
    ({"variant": "xor", "prior": [0.25] * 4}, "fixed uniform prior"),
])
def test_bad_dial_values_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic.make_task(**kwargs)
