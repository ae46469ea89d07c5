"""Synthetic two-view tasks whose Bayes ceilings are known exactly (notebooks 01 and 08).

Given the class ``y`` (and, for the synergy task, a hidden mixture component), view ``v`` is

    x_v = mu_v(c) + shared * z + sigma_v * e_v,      z, e_v ~ N(0, I_2), c a component of y,

with the *same* nuisance ``z`` in both views. ``shared`` is the dependence dial:

* ``shared = 0``: the views are independent given the label (regime (i) of notebook 08), the
  complementary task of notebook 01;
* ``shared > 0``: the views are dependent given the label, but every class-conditional is still
  Gaussian with one shared covariance, so the Bayes rule with both views is still *additive*
  in the two views (regime (ii)): it is a different additive function from the best one for
  each view alone, because the best joint rule cancels ``z`` by subtracting the views;
* ``variant="xor"``: two classes, each a mixture of two components; the label is the XOR of
  the signs of the two views (regime (iii), synergy). Each view alone says nothing about the
  label; no sum of per-view logits can represent the rule.

:mod:`umm_helpers.course.theory` computes the exact entropies, mutual informations and Bayes
accuracies of a :class:`TaskSpec` for any set of views.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from umm_helpers.data.dataset import MultiModalDataset

NAME = "synthetic"
MODALITIES = ("x1", "x2")
CLASSES = ("0", "1", "2", "3")
SIGMA1 = 1.0
SIGMA2 = 1.2
BIG = 2.2
SMALL = 0.55
VARIANTS = ("complementary", "xor")
# Bits of each class: group A = {0,1} vs {2,3}, group B = {0,2} vs {1,3}, as -1 / +1.
_GROUP_A = np.array([-1.0, -1.0, 1.0, 1.0])
_GROUP_B = np.array([-1.0, 1.0, -1.0, 1.0])


@dataclass(frozen=True)
class TaskSpec:
    """Gaussian mixture components per view, a shared nuisance and the class prior.

    ``means[v]`` is ``[C, 2]`` (one row per component), ``sigmas[v]`` the independent noise of
    view ``v``, ``shared`` the scale of the nuisance ``z`` common to every view. Component ``c``
    belongs to class ``component_class[c]`` with weight ``component_weight[c]`` inside its
    class (weights of a class sum to one). Without components, component ``k`` is class ``k``.
    """

    means: tuple[np.ndarray, ...]
    sigmas: tuple[float, ...]
    prior: np.ndarray
    modalities: tuple[str, ...] = MODALITIES
    shared: float = 0.0
    component_class: np.ndarray | None = field(default=None, compare=False)
    component_weight: np.ndarray | None = field(default=None, compare=False)

    @property
    def num_classes(self) -> int:
        return int(self.prior.shape[0])

    @property
    def classes_of(self) -> np.ndarray:
        """Class of each component ``[C]``."""
        n = self.means[0].shape[0]
        return np.arange(n) if self.component_class is None else self.component_class

    @property
    def weights(self) -> np.ndarray:
        """Weight of each component inside its class ``[C]``."""
        n = self.means[0].shape[0]
        return np.ones(n) if self.component_weight is None else self.component_weight

    def view(self, m: str | int) -> tuple[np.ndarray, float]:
        """``(means [C, 2], sigma)`` of view ``m`` (a name such as ``"x1"`` or an index)."""
        j = self.modalities.index(m) if isinstance(m, str) else int(m)
        return self.means[j], self.sigmas[j]

    def covariance(self, views: list[int]) -> np.ndarray:
        """Per-axis covariance of the selected views given the component: ``[V, V]``.

        Every axis of every view is an independent copy of this (the noise is isotropic)."""
        s = np.array([self.sigmas[j] for j in views])
        return np.diag(s**2) + self.shared**2


def _check_positive(**values: float) -> None:
    for name, v in values.items():
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {v}.")


def make_task(sigma1: float = SIGMA1, sigma2: float = SIGMA2, big: float = BIG,
              small: float = SMALL, prior: np.ndarray | None = None, shared: float = 0.0,
              variant: str = "complementary") -> TaskSpec:
    """A two-view task; notebook 01 (``shared=0``) and notebook 08 (the dial, ``"xor"``).

    ``complementary``: four classes, each view separates a different pair of class groups
    (``big`` and ``small`` are half the distances). ``xor``: two classes, label = XOR of the
    signs of the views along their first axis (distance ``2 * big``). ``shared`` is the scale
    of the nuisance added to both views.
    """
    _check_positive(sigma1=sigma1, sigma2=sigma2)
    if not np.isfinite(shared) or shared < 0:
        raise ValueError(f"shared must be a finite number >= 0, got {shared}.")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {list(VARIANTS)}, got {variant!r}.")
    if variant == "xor":
        if prior is not None:
            raise ValueError("the xor task has a fixed uniform prior over its two classes.")
        signs = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
        zeros = np.zeros(4)
        mean1 = np.stack([big * signs[:, 0], zeros], axis=1)
        mean2 = np.stack([big * signs[:, 1], zeros], axis=1)
        return TaskSpec((mean1, mean2), (float(sigma1), float(sigma2)), np.full(2, 0.5),
                        shared=float(shared), component_class=np.array([0, 0, 1, 1]),
                        component_weight=np.full(4, 0.5))
    p = np.full(4, 0.25) if prior is None else np.asarray(prior, dtype=float)
    if p.shape != (4,) or (p < 0).any() or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"prior must be 4 non-negative numbers summing to 1, got {prior}.")
    mean1 = np.stack([big * _GROUP_A, small * _GROUP_B], axis=1)
    mean2 = np.stack([big * _GROUP_B, small * _GROUP_A], axis=1)
    return TaskSpec((mean1, mean2), (float(sigma1), float(sigma2)), p / p.sum(),
                    shared=float(shared))


def sample(spec: TaskSpec, n: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``n`` seeded samples: ``({modality: float32 [n, 2]}, labels int64 [n])``."""
    rng = np.random.default_rng([seed, n, 2310_06383])
    y = rng.choice(spec.num_classes, size=n, p=spec.prior)
    component = y
    if spec.component_class is not None:  # a component of each sample's class, by weight
        component = np.empty(n, dtype=np.int64)
        for k in range(spec.num_classes):
            members = np.flatnonzero(spec.classes_of == k)
            rows = np.flatnonzero(y == k)
            w = spec.weights[members] / spec.weights[members].sum()
            component[rows] = members[rng.choice(len(members), size=len(rows), p=w)]
    inputs = {}
    for m, means, sigma in zip(spec.modalities, spec.means, spec.sigmas):
        noise = rng.standard_normal((n, means.shape[1]))
        inputs[m] = means[component] + sigma * noise
    if spec.shared > 0:  # drawn after the views' own noise: shared=0 keeps notebook 01's data
        z = rng.standard_normal((n, spec.means[0].shape[1]))
        for m in spec.modalities:
            inputs[m] = inputs[m] + spec.shared * z
    return {m: x.astype(np.float32) for m, x in inputs.items()}, y.astype(np.int64)


def load(n_train: int = 20000, n_val: int = 4000, n_test: int = 10000, seed: int = 0,
         sigma1: float = SIGMA1, sigma2: float = SIGMA2, shared: float = 0.0,
         variant: str = "complementary") -> MultiModalDataset:
    """A synthetic task as a :class:`MultiModalDataset` (inputs ``[N, 2]`` per view).

    Splits use different seeds derived from ``seed``; ``info["spec"]`` holds the
    :class:`TaskSpec`, so :mod:`umm_helpers.course.theory` can give the exact ceilings.
    """
    spec = make_task(sigma1, sigma2, shared=shared, variant=variant)
    train, validation, test = [sample(spec, n, seed=3 * seed + k)
                               for k, n in enumerate((n_train, n_val, n_test))]
    classes = [str(k) for k in range(spec.num_classes)]
    name = NAME if (shared == 0 and variant == "complementary") else \
        f"{NAME}-{variant}-shared{shared:g}"
    ds = MultiModalDataset.from_arrays(train, validation, test, classes=classes, name=name)
    ds.info.update({"spec": spec, "seed": seed, "sigma1": float(sigma1),
                    "sigma2": float(sigma2), "shared": float(shared), "variant": variant})
    return ds
