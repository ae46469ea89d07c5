"""Exact information-theoretic quantities and Bayes ceilings of the synthetic family (notebooks 01
and 08).

When is summing uni-modal logits enough? Bayes' rule with both views is
``log p(y|x1,x2) = log p(y|x1) + log p(y|x2) - log p(y) + c(x)`` (``c`` free of ``y``) whenever
``x1`` and ``x2`` are independent given ``y``, and it needs calibrated branches (log-posteriors,
not just ranking scores). Three regimes follow, each measured in notebook 08:
(i) independent given ``y`` (``shared=0``; AV-Digits, AV-MNIST): the sum, ``ume``, is
Bayes-optimal, ``additive_accuracy == bayes_accuracy``; (ii) dependent given ``y`` through a
shared nuisance (``shared>0``): the Bayes rule is still additive in the views but differs per
presence pattern, so the sum falls below the both-present ceiling and no single additive head
reaches every pattern's ceiling; (iii) synergy (``variant="xor"``): each view alone carries no
information and no sum of per-view logits can represent the rule.

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
from collections.abc import Iterator, Sequence

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


def _views(spec: TaskSpec, views: Sequence[str] | None) -> list[int]:
    names = list(spec.modalities) if views is None else list(views)
    if not names:
        raise ValueError("give at least one view, e.g. ['x1'].")
    unknown = [v for v in names if v not in spec.modalities]
    if unknown:
        raise ValueError(f"unknown views {unknown}; the task has {list(spec.modalities)}.")
    return sorted({spec.modalities.index(v) for v in names})


def _quadrature(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal nodes ``[P, dim]`` and weights ``[P]``: the 2-D grid for one view,
    the fixed Sobol set otherwise."""
    if dim == 2:
        return _grid_2d()
    z = _sobol_normal(dim)
    return z, np.full(z.shape[0], 1.0 / z.shape[0])


def _component_scores(x: np.ndarray, means: np.ndarray, precision: np.ndarray,
                      log_weight: np.ndarray) -> np.ndarray:
    """``log w_c + log N(x; mu_c, C (x) I)`` up to a term shared by all components: ``[P, C]``.

    ``x`` is ``[P, V, d]``, ``means`` ``[C, V, d]``, ``precision`` the ``[V, V]`` inverse of the
    per-axis covariance. Linear in ``x`` because every component shares the covariance.
    ``einsum`` instead of ``@``: for these thin products BLAS threads only add overhead."""
    pm = np.einsum("ab,cbd->cad", precision, means)
    return (np.einsum("pad,cad->pc", x, pm) - 0.5 * np.einsum("cad,cad->c", means, pm)
            + log_weight)


def _class_log_joint(scores: np.ndarray, spec: TaskSpec) -> np.ndarray:
    """``log p(y, x)`` up to a shared term, per class ``[P, K]`` (log-sum over its components)."""
    out = np.full((scores.shape[0], spec.num_classes), -np.inf)
    for k in range(spec.num_classes):
        cols = scores[:, spec.classes_of == k]
        if cols.shape[1]:
            top = cols.max(axis=1, keepdims=True)
            out[:, k] = top[:, 0] + np.log(np.exp(cols - top).sum(axis=1))
    return out


def _log_normalise(log_joint: np.ndarray) -> np.ndarray:
    """Log posteriors ``[P, K]`` from log joints."""
    top = log_joint.max(axis=1, keepdims=True)
    return log_joint - (top + np.log(np.exp(log_joint - top).sum(axis=1, keepdims=True)))


def _posteriors(spec: TaskSpec, idx: list[int], x: np.ndarray) -> np.ndarray:
    """Bayes log posteriors ``log p(y | x_views)`` ``[P, K]`` of points ``x`` ``[P, V, d]``."""
    means = np.stack([spec.means[j] for j in idx], axis=1)
    log_prior = np.log(np.where(spec.prior > 0, spec.prior, 1e-300))
    log_weight = np.log(spec.weights) + log_prior[spec.classes_of]
    precision = np.linalg.inv(spec.covariance(idx))
    return _log_normalise(_class_log_joint(_component_scores(x, means, precision, log_weight),
                                           spec))


def _component_points(spec: TaskSpec, idx: list[int]
                      ) -> Iterator[tuple[int, float, np.ndarray, np.ndarray]]:
    """Per mixture component of a class with non-zero prior: ``(class y, the component's share of
    the class, points [P, V, d] of the views idx around its means, quadrature weights [P])``."""
    d = spec.means[idx[0]].shape[1]
    z, w = _quadrature(d * len(idx))
    chol = np.linalg.cholesky(spec.covariance(idx))
    noise = np.einsum("ab,pbd->pad", chol, z.reshape(len(z), len(idx), d))
    for c in range(spec.means[0].shape[0]):
        y = int(spec.classes_of[c])
        if spec.prior[y] == 0:
            continue
        share = float(spec.weights[c] / spec.weights[spec.classes_of == y].sum())
        yield y, share, np.stack([spec.means[j][c] for j in idx])[None] + noise, w


def _expectations(spec: TaskSpec, views: Sequence[str] | None, rule: str = "bayes"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per class ``y``: ``E[log p(y|X) | y]`` and ``E[accuracy of the rule | y]`` (each ``[K]``).

    ``rule="bayes"``: ``argmax p(y | X_views)``, whose expected accuracy is
    ``E[max_k p(k|X)]``. ``rule="additive"``: ``argmax sum_v log p(y | x_v) - (V-1) log p(y)``,
    what summing calibrated uni-modal posteriors (``ume``) computes."""
    idx = _views(spec, views)
    log_prior = np.log(np.where(spec.prior > 0, spec.prior, 1e-300))
    e_log_post = np.zeros(spec.num_classes)
    e_correct = np.zeros(spec.num_classes)
    for y, share, x, w in _component_points(spec, idx):
        log_post = _posteriors(spec, idx, x)
        e_log_post[y] += share * float((w * log_post[:, y]).sum())
        if rule == "bayes":
            e_correct[y] += share * float((w * np.exp(log_post.max(axis=1))).sum())
        else:
            total = -(len(idx) - 1) * log_prior + sum(
                _posteriors(spec, [j], x[:, [k]]) for k, j in enumerate(idx))
            e_correct[y] += share * float((w * (total.argmax(axis=1) == y)).sum())
    return e_log_post, e_correct


def entropy(spec: TaskSpec) -> float:
    """``H(Y)`` of the class prior, in nats."""
    p = spec.prior[spec.prior > 0]
    return float(-(p * np.log(p)).sum())


def _entropy_and_accuracy(spec: TaskSpec, views: Sequence[str] | None) -> tuple[float, float]:
    """``(H(Y | X_views), Bayes accuracy)`` from one pass over the quadrature grid."""
    e_log_post, e_max_post = _expectations(spec, views)
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


def conditional_information(spec: TaskSpec, lost: str, given: Sequence[str]) -> float:
    """``I(Y; X_lost | X_given)`` in nats, computed from its own integral (notebook 01).

    ``E[log p(y | x_given, x_lost) - log p(y | x_given)]`` over ``(y, x_given, x_lost)``, with
    the joint views' quasi-Monte Carlo point set (both posteriors evaluated at the same points).
    It does not subtract two mutual informations, so the chain rule
    ``I(Y; X_given, X_lost) = I(Y; X_given) + I(Y; X_lost | X_given)`` can be checked against
    it. Not clipped at zero: a tiny negative value would be quadrature error, left visible.
    """
    given = list(given)
    if not given:
        raise ValueError("give at least one conditioning view, e.g. given=['x1'].")
    if lost in given:
        raise ValueError(f"view {lost!r} is both lost and given.")
    idx = _views(spec, [*given, lost])
    gidx = _views(spec, given)
    gpos = [idx.index(j) for j in gidx]
    total = 0.0
    for y, share, x, w in _component_points(spec, idx):
        ratio = _posteriors(spec, idx, x)[:, y] - _posteriors(spec, gidx, x[:, gpos])[:, y]
        total += float(spec.prior[y] * share * (w * ratio).sum())
    return total


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


def additive_accuracy(spec: TaskSpec, views: Sequence[str] | None = None) -> float:
    """Accuracy of summing calibrated per-view posteriors, ``argmax sum_v log p(y|x_v) -
    (V-1) log p(y)``: the best ``ume`` can do. Equal to :func:`bayes_accuracy` exactly when the
    views are independent given the label (``shared == 0`` and one component per class)."""
    return float((spec.prior * _expectations(spec, views, rule="additive")[1]).sum())


def pattern_ceilings(spec: TaskSpec) -> dict[str, float]:
    """Bayes accuracy of every presence pattern (``"x1"``, ``"x2"``, ``"x1+x2"``), plus the
    additive rule with every view present (``"additive"``). Notebook 08."""
    mods = list(spec.modalities)
    out = {"+".join(p): bayes_accuracy(spec, list(p))
           for p in ([m] for m in mods)}
    out["+".join(mods)] = bayes_accuracy(spec, mods)
    out["additive"] = additive_accuracy(spec, mods)
    return out
