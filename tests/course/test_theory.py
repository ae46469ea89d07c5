"""Exact quantities of the synthetic task against closed forms and Monte Carlo (notebook 01)."""
import math

import numpy as np
import pytest
from scipy.stats import norm

from umm_helpers.course import theory
from umm_helpers.data import synthetic

LOG4 = math.log(4)


def binary_channel_information(snr: float) -> float:
    """I(B; U) in nats for a fair bit B = +-1 seen as U = B * snr + N(0, 1) (1-D quadrature)."""
    u = np.linspace(-12, 12, 20001)
    w = norm.pdf(u)
    w /= w.sum()
    return math.log(2) - float(w @ np.logaddexp(0.0, -2 * snr * (snr + u)))


def closed_form(sigma1: float, sigma2: float) -> dict[str, float]:
    """The default geometry factorises into two bits seen through independent Gaussian channels."""
    b, s = synthetic.BIG, synthetic.SMALL
    snr = {"x1": (b / sigma1, s / sigma1), "x2": (s / sigma2, b / sigma2)}  # (bit A, bit B)
    snr["x1x2"] = (math.hypot(b / sigma1, s / sigma2), math.hypot(s / sigma1, b / sigma2))
    out = {}
    for key, (sa, sb) in snr.items():
        out[f"acc_{key}"] = norm.cdf(sa) * norm.cdf(sb)
        out[f"I_{key}"] = binary_channel_information(sa) + binary_channel_information(sb)
    return out


def monte_carlo(spec, views, n=100_000, seed=5):
    """Rao-Blackwellised MC estimates of I(Y; X_views) and the Bayes accuracy."""
    x, y = synthetic.sample(spec, n, seed=seed)
    scores = np.tile(np.log(spec.prior), (n, 1))
    for v in views:
        means, sigma = spec.view(v)
        d2 = ((x[v].astype(np.float64)[:, None, :] - means[None]) ** 2).sum(-1)
        scores += -d2 / (2 * sigma**2)
    log_post = scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)
    mi = theory.entropy(spec) + log_post[np.arange(n), y].mean()
    return mi, np.exp(log_post.max(axis=1)).mean()


@pytest.fixture(scope="module")
def default_summary():
    return theory.summary(synthetic.make_task())


def test_matches_closed_form(default_summary):
    for sigmas, got in (((synthetic.SIGMA1, synthetic.SIGMA2), default_summary),
                        ((0.6, 1.7), theory.summary(synthetic.make_task(0.6, 1.7)))):
        exact = closed_form(*sigmas)
        for key, value in exact.items():  # measured errors are at most about 1e-4
            assert got[key] == pytest.approx(value, abs=2e-4), (sigmas, key)


def test_matches_monte_carlo_with_a_skewed_prior():
    spec = synthetic.make_task(0.8, 1.3, prior=[0.4, 0.3, 0.2, 0.1])
    for views in (["x1"], ["x2"], ["x1", "x2"]):
        mi, acc = monte_carlo(spec, views)
        assert theory.mutual_information(spec, views) == pytest.approx(mi, abs=0.01), views
        assert theory.bayes_accuracy(spec, views) == pytest.approx(acc, abs=0.005), views


def test_default_task_resembles_the_reference(default_summary):
    s = default_summary
    assert s["H_Y"] == pytest.approx(LOG4)
    assert s["acc_x1"] == pytest.approx(0.699, abs=0.002)
    assert s["acc_x2"] == pytest.approx(0.654, abs=0.002)
    assert s["acc_x1x2"] == pytest.approx(0.960, abs=0.002)
    assert s["I_x1"] == pytest.approx(0.787, abs=0.002)
    assert s["I_x2"] == pytest.approx(0.701, abs=0.002)
    assert s["I_x1x2"] == pytest.approx(1.280, abs=0.002)


def test_chain_rule_and_orderings(default_summary):
    s = default_summary
    assert s["I_x1x2"] == pytest.approx(s["I_x1"] + s["I_x2_given_x1"])
    assert s["I_x1x2"] == pytest.approx(s["I_x2"] + s["I_x1_given_x2"])
    assert max(s["I_x1"], s["I_x2"]) < s["I_x1x2"] <= s["H_Y"]
    assert max(s["acc_x1"], s["acc_x2"]) < s["acc_x1x2"] <= 1.0
    spec = synthetic.make_task()
    assert theory.complementary_information(spec) == pytest.approx(s["I_x2_given_x1"])
    assert theory.bayes_accuracy(spec) == pytest.approx(s["acc_x1x2"])



def test_conditional_information_is_its_own_integral():
    """I(Y; X2 | X1) integrated directly agrees with the chain rule's difference (two other
    quadratures), with the closed form of the factorised geometry, and with Monte Carlo."""
    for sigmas in ((synthetic.SIGMA1, synthetic.SIGMA2), (0.6, 1.7)):
        spec = synthetic.make_task(*sigmas)
        exact = closed_form(*sigmas)
        direct = theory.conditional_information(spec, "x2", ["x1"])
        assert direct == pytest.approx(exact["I_x1x2"] - exact["I_x1"], abs=3e-4), sigmas
        s = theory.summary(spec)
        assert s["I_x1"] + direct == pytest.approx(s["I_x1x2"], abs=3e-4)
        assert theory.conditional_information(spec, "x1", ["x2"]) == pytest.approx(
            s["I_x1x2"] - s["I_x2"], abs=3e-4)
    spec = synthetic.make_task(shared=1.0)  # dependent views: still the chain rule
    assert theory.conditional_information(spec, "x2", ["x1"]) == pytest.approx(
        theory.mutual_information(spec) - theory.mutual_information(spec, ["x1"]), abs=3e-4)
    # Monte Carlo with the true posteriors: E[log p(y|x1,x2) - log p(y|x1)]
    spec = synthetic.make_task()
    x, y = synthetic.sample(spec, 100_000, seed=9)
    def log_post(views):
        scores = np.tile(np.log(spec.prior), (len(y), 1))
        for v in views:
            means, sigma = spec.view(v)
            scores += -((x[v].astype(np.float64)[:, None, :] - means[None]) ** 2).sum(-1) / (
                2 * sigma**2)
        return (scores - np.logaddexp.reduce(scores, axis=1, keepdims=True))[np.arange(len(y)), y]
    mc = float((log_post(["x1", "x2"]) - log_post(["x1"])).mean())
    assert mc == pytest.approx(theory.conditional_information(spec, "x2", ["x1"]), abs=0.01)


def test_conditional_information_of_a_useless_view_is_zero_and_bad_input_is_refused():
    spec = synthetic.make_task(1.0, 1e4)
    assert theory.conditional_information(spec, "x2", ["x1"]) == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(ValueError, match="both lost and given"):
        theory.conditional_information(spec, "x1", ["x1"])
    with pytest.raises(ValueError, match="conditioning view"):
        theory.conditional_information(spec, "x1", [])
    with pytest.raises(ValueError, match="unknown views"):
        theory.conditional_information(spec, "audio", ["x1"])

def test_small_noise_limit():
    s = theory.summary(synthetic.make_task(1e-3, 1e-3))
    for key in ("x1", "x2", "x1x2"):
        assert s[f"I_{key}"] == pytest.approx(LOG4, abs=1e-6)
        assert s[f"acc_{key}"] == pytest.approx(1.0, abs=1e-6)
        assert s[f"fano_{key}"] == pytest.approx(0.0, abs=1e-6)


def test_large_noise_limit():
    s = theory.summary(synthetic.make_task(1e3, 1e3))
    for key in ("x1", "x2", "x1x2"):
        assert s[f"I_{key}"] == pytest.approx(0.0, abs=1e-4)
        assert s[f"acc_{key}"] == pytest.approx(0.25, abs=1e-3)
    # one view useless: the pair carries exactly what the other view carries
    s = theory.summary(synthetic.make_task(1.0, 1e4))
    assert s["I_x2"] == pytest.approx(0.0, abs=1e-4)
    assert s["I_x1x2"] == pytest.approx(s["I_x1"], abs=1e-3)
    assert s["acc_x1x2"] == pytest.approx(s["acc_x1"], abs=1e-3)
    assert s["I_x2_given_x1"] == pytest.approx(0.0, abs=1e-3)


def test_equal_means_carry_no_information():
    prior = [0.4, 0.3, 0.2, 0.1]
    spec = synthetic.make_task(1.0, 1.0, big=0.0, small=0.0, prior=prior)
    h = -sum(p * math.log(p) for p in prior)
    assert theory.entropy(spec) == pytest.approx(h)
    for views in (["x1"], ["x1", "x2"]):
        assert theory.mutual_information(spec, views) == pytest.approx(0.0, abs=1e-9)
        assert theory.conditional_entropy(spec, views) == pytest.approx(h, abs=1e-9)
        assert theory.bayes_accuracy(spec, views) == pytest.approx(0.4, abs=1e-9)


def test_fano_bound_solves_the_inequality():
    for k in (2, 4, 10):
        assert theory.fano_error_bound(0.0, k) == 0.0
        assert theory.fano_error_bound(math.log(k), k) == pytest.approx((k - 1) / k)
        for h in (0.05, 0.3, 0.6):
            if h >= math.log(k):
                continue
            pe = theory.fano_error_bound(h, k)
            hb = -pe * math.log(pe) - (1 - pe) * math.log(1 - pe)
            assert hb + pe * math.log(k - 1) == pytest.approx(h, abs=1e-9)
    bounds = [theory.fano_error_bound(h, 4) for h in np.linspace(0, LOG4, 20)]
    assert all(a <= b for a, b in zip(bounds, bounds[1:]))
    with pytest.raises(ValueError):
        theory.fano_error_bound(0.1, 1)


@pytest.mark.parametrize("sigmas", [(1.0, 1.2), (0.3, 0.5), (2.0, 4.0)])
def test_fano_bound_is_below_the_bayes_error(sigmas):
    s = theory.summary(synthetic.make_task(*sigmas))
    for key in ("x1", "x2", "x1x2"):
        assert 0.0 <= s[f"fano_{key}"] <= 1.0 - s[f"acc_{key}"]


def test_bad_views_are_rejected():
    spec = synthetic.make_task()
    with pytest.raises(ValueError, match="unknown views"):
        theory.mutual_information(spec, ["image"])
    with pytest.raises(ValueError, match="at least one view"):
        theory.bayes_accuracy(spec, [])


def test_ceilings_explorer_recomputes_without_a_kernel(default_summary):
    from matplotlib.figure import Figure

    from umm_helpers.course import widgets

    w = widgets.ceilings_explorer()
    w.update()
    first = w.result
    assert isinstance(first, widgets.CeilingsView) and isinstance(first.figure, Figure)
    assert (first.sigma1, first.sigma2) == (synthetic.SIGMA1, synthetic.SIGMA2)
    assert first.summary == pytest.approx(default_summary)
    sliders = {c.description: c for c in w.children if hasattr(c, "description")}
    sliders["σ2 (x2)"].value = 3.0
    noisier = w.result
    assert noisier.sigma2 == 3.0 and noisier.summary["acc_x1"] == first.summary["acc_x1"]
    assert noisier.summary["acc_x2"] < first.summary["acc_x2"]
    assert noisier.summary["I_x2_given_x1"] < first.summary["I_x2_given_x1"]
    assert "x1 only 0.699" in first.text()


def test_plots_return_figures(default_summary):
    from matplotlib.figure import Figure

    from umm_helpers.course import plots

    s = default_summary
    assert isinstance(plots.information_budget(s, title="t"), Figure)
    ceilings = {"full": s["acc_x1x2"], "miss:x1": s["acc_x2"], "miss:x2": s["acc_x1"]}
    scores = {"joint": {"full": 0.95, "miss:x1": 0.6, "miss:x2": 0.65}}
    assert isinstance(plots.accuracy_vs_ceiling(scores, ceilings), Figure)
