"""Exact information-theoretic quantities of the synthetic task (notebook 01).

Everything is in **nats** (natural logarithms; divide by ``log 2`` for bits) and is a pure
function of a :class:`~umm_helpers.data.synthetic.TaskSpec`.

How the integrals are computed, deterministically:

* one view (2-D): for each class ``y`` the integral over ``x ~ N(mu_y, sigma^2 I)`` is a
  midpoint rule on a fixed grid in standard units (``x = mu_y + sigma z``, ``z`` in
  ``[-Z_MAX, Z_MAX]^2``), so it is equally accurate for any ``sigma``;
* both views (4-D, independent given ``y``): the same class-centred change of variables with a
  fixed scrambled Sobol (quasi-Monte Carlo) point set of ``JOINT_POINTS`` points per class,
  deterministic (fixed seed).

Both are accurate to about 1e-4 (checked against closed forms in
``tests/course/test_theory.py``) and take a fraction of a second, fast enough for notebook
01's slider.

Both use the identities ``H(Y|X) = -sum_y p(y) E[log p(y|X) | Y=y]`` and
``Bayes accuracy = E[max_k p(k|X)] = sum_y p(y) E[max_k p(k|X) | Y=y]``: the integrands are
continuous, so the rules converge fast.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from umm_helpers.data.synthetic import TaskSpec

Z_MAX = 8.0
GRID_POINTS = 161
JOINT_POINTS = 2**15
SOBOL_SEED = 20231010


@functools.lru_cache(maxsize=4)
def _grid_2d(points: int = GRID_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal midpoint nodes ``[P, 2]`` and weights ``[P]`` (weights sum to 1)."""
    h = 2 * Z_MAX / points
    z = -Z_MAX + h * (np.arange(points) + 0.5)
    zz = np.stack(np.meshgrid(z, z, indexing="ij"), axis=-1).reshape(-1, 2)
    w = np.exp(-0.5 * (zz**2).sum(axis=1))
    return zz, w / w.sum()


@functools.lru_cache(maxsize=4)
def _sobol_normal(dim: int, points: int = JOINT_POINTS) -> np.ndarray:
    """A fixed scrambled Sobol point set mapped to standard normal ``[points, dim]``."""
    from scipy.stats import norm, qmc

    u = qmc.Sobol(d=dim, scramble=True, seed=SOBOL_SEED).random(points)
    return norm.ppf(np.clip(u, 1e-12, 1 - 1e-12))


def _log_lik(x: np.ndarray, means: np.ndarray, sigma: float) -> np.ndarray:
    """``log p(x | k)`` up to a term shared by all classes (``-|x|^2 / 2 sigma^2`` and the
    normaliser): linear in ``x`` because the noise is isotropic. Returns ``[P, K]``.

    ``einsum`` instead of ``@`` (and sums instead of dot products below): for these thin
    products BLAS threads only add overhead, several-fold on a busy CPU."""
    return (np.einsum("pd,kd->pk", x, means) - 0.5 * (means**2).sum(axis=1)) / sigma**2


def _views(spec: TaskSpec, views: Sequence[str] | None) -> list[int]:
    names = list(spec.modalities) if views is None else list(views)
    if not names:
        raise ValueError("give at least one view, e.g. ['x1'].")
    unknown = [v for v in names if v not in spec.modalities]
    if unknown:
        raise ValueError(f"unknown views {unknown}; the task has {list(spec.modalities)}.")
    return sorted({spec.modalities.index(v) for v in names})


def _class_expectations(spec: TaskSpec, views: Sequence[str] | None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Per class ``y``: ``E[log p(y|X) | y]`` and ``E[max_k p(k|X) | y]`` (each ``[K]``)."""
    idx = _views(spec, views)
    dims = [spec.means[j].shape[1] for j in idx]
    if len(idx) == 1 and dims[0] == 2:
        z, w = _grid_2d()
    else:
        z = _sobol_normal(sum(dims))
        w = np.full(z.shape[0], 1.0 / z.shape[0])
    log_prior = np.log(np.where(spec.prior > 0, spec.prior, 1e-300))
    e_log_post = np.zeros(spec.num_classes)
    e_max_post = np.zeros(spec.num_classes)
    for y in range(spec.num_classes):
        if spec.prior[y] == 0:
            continue
        scores = np.zeros((z.shape[0], spec.num_classes)) + log_prior
        start = 0
        for j, d in zip(idx, dims):
            means, sigma = spec.means[j], spec.sigmas[j]
            x = means[y] + sigma * z[:, start:start + d]
            scores += _log_lik(x, means, sigma)
            start += d
        top = scores.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(scores - top).sum(axis=1))
        e_log_post[y] = float((w * (scores[:, y] - log_norm)).sum())
        e_max_post[y] = float((w * np.exp(top[:, 0] - log_norm)).sum())
    return e_log_post, e_max_post


def entropy(spec: TaskSpec) -> float:
    """``H(Y)`` of the class prior, in nats."""
    p = spec.prior[spec.prior > 0]
    return float(-(p * np.log(p)).sum())


def _entropy_and_accuracy(spec: TaskSpec, views: Sequence[str] | None) -> tuple[float, float]:
    """``(H(Y | X_views), Bayes accuracy)`` from one pass over the quadrature grid."""
    e_log_post, e_max_post = _class_expectations(spec, views)
    return (float(max(0.0, -(spec.prior * e_log_post).sum())),
            float((spec.prior * e_max_post).sum()))


def _information(h_y: float, h_cond: float) -> float:
    """``H(Y) - H(Y | X)``, clipped to ``[0, H(Y)]`` (quadrature error)."""
    return float(min(h_y, max(0.0, h_y - h_cond)))


def conditional_entropy(spec: TaskSpec, views: Sequence[str] | None = None) -> float:
    """``H(Y | X_views)`` in nats; ``views=None`` means all views."""
    return _entropy_and_accuracy(spec, views)[0]


def mutual_information(spec: TaskSpec, views: Sequence[str] | None = None) -> float:
    """``I(Y; X_views) = H(Y) - H(Y | X_views)`` in nats; ``views=None`` means all views."""
    return _information(entropy(spec), conditional_entropy(spec, views))


def complementary_information(spec: TaskSpec, have: str = "x1", lost: str = "x2") -> float:
    """``I(Y; X_lost | X_have) = I(Y; X_have, X_lost) - I(Y; X_have)`` in nats.

    The information only the lost view carries: what no model of ``X_have`` alone can recover.
    """
    return max(0.0, mutual_information(spec, [have, lost]) - mutual_information(spec, [have]))


def bayes_accuracy(spec: TaskSpec, views: Sequence[str] | None = None) -> float:
    """Accuracy of the Bayes classifier ``argmax_k p(k | X_views)``: the best any model can do."""
    return _entropy_and_accuracy(spec, views)[1]


def fano_error_bound(conditional_entropy_nats: float, num_classes: int) -> float:
    """Fano's inequality: the smallest error ``Pe`` with ``h(Pe) + Pe log(K-1) >= H(Y|X)``.

    ``h`` is the binary entropy in nats. Any classifier of ``X`` errs at least this often.
    The left side increases on ``[0, (K-1)/K]`` from 0 to ``log K``, so the bound is found by
    bisection (to 1e-12).
    """
    if num_classes < 2:
        raise ValueError(f"Fano's bound needs at least 2 classes, got {num_classes}.")
    h_target = float(conditional_entropy_nats)
    if h_target <= 0:
        return 0.0
    top = (num_classes - 1) / num_classes
    if h_target >= math.log(num_classes):
        return top

    def fano(pe: float) -> float:
        hb = 0.0 if pe in (0.0, 1.0) else -pe * math.log(pe) - (1 - pe) * math.log(1 - pe)
        return hb + pe * math.log(num_classes - 1)

    lo, hi = 0.0, top
    while hi - lo > 1e-12:
        mid = 0.5 * (lo + hi)
        if fano(mid) < h_target:
            lo = mid
        else:
            hi = mid
    return hi


def summary(spec: TaskSpec) -> dict[str, float]:
    """Every quantity notebook 01 tabulates, keyed by short names (information in nats).

    ``H_Y``; ``I_x1``, ``I_x2``, ``I_x1x2``; ``I_x2_given_x1`` and ``I_x1_given_x2`` (the
    complementary information lost when x2, resp. x1, is missing); ``acc_x1``, ``acc_x2``,
    ``acc_x1x2`` (Bayes accuracies, the ceilings) and ``fano_x1``, ``fano_x2``, ``fano_x1x2``
    (Fano lower bounds on the error rate).
    """
    a, b = spec.modalities
    h_y = entropy(spec)
    out: dict[str, float] = {"H_Y": h_y}
    for key, views in ((a, [a]), (b, [b]), (a + b, [a, b])):
        h_cond, out[f"acc_{key}"] = _entropy_and_accuracy(spec, views)
        out[f"I_{key}"] = _information(h_y, h_cond)
        out[f"fano_{key}"] = fano_error_bound(h_cond, spec.num_classes)
    out[f"I_{b}_given_{a}"] = max(0.0, out[f"I_{a}{b}"] - out[f"I_{a}"])
    out[f"I_{a}_given_{b}"] = max(0.0, out[f"I_{a}{b}"] - out[f"I_{b}"])
    return out
