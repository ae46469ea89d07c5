"""A synthetic two-view task whose information content is known exactly (notebook 01).

Four classes, two views ``x1`` and ``x2``. Given the class ``y``, view ``v`` is a 2-D Gaussian
``N(means[v][y], sigmas[v]^2 I)`` and the two views are independent. The class means are
arranged so that each view separates a *different* pair of class groups:

* view ``x1`` puts classes {0, 1} far from {2, 3} (first axis, distance ``2 * big``) and only
  nudges {0, 2} away from {1, 3} (second axis, distance ``2 * small``);
* view ``x2`` does the opposite: {0, 2} vs {1, 3} far apart, {0, 1} vs {2, 3} only nudged.

So each view alone is partially informative, and the two together are close to perfect: the
views carry *complementary* information. :mod:`umm_helpers.course.theory` computes the exact
entropies, mutual informations and Bayes accuracies of a :class:`TaskSpec`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from umm_helpers.data.dataset import MultiModalDataset

NAME = "synthetic"
MODALITIES = ("x1", "x2")
CLASSES = ("0", "1", "2", "3")
SIGMA1 = 1.0
SIGMA2 = 1.2
BIG = 2.2
SMALL = 0.55
# Bits of each class: group A = {0,1} vs {2,3}, group B = {0,2} vs {1,3}, as -1 / +1.
_GROUP_A = np.array([-1.0, -1.0, 1.0, 1.0])
_GROUP_B = np.array([-1.0, 1.0, -1.0, 1.0])


@dataclass(frozen=True)
class TaskSpec:
    """Class-conditional Gaussians per view: ``means[v]`` is ``[K, 2]``, ``sigmas[v]`` a scalar.

    ``prior`` is ``[K]`` and sums to one. Views are independent given the class.
    """

    means: tuple[np.ndarray, ...]
    sigmas: tuple[float, ...]
    prior: np.ndarray
    modalities: tuple[str, ...] = MODALITIES

    @property
    def num_classes(self) -> int:
        return int(self.prior.shape[0])

    def view(self, m: str | int) -> tuple[np.ndarray, float]:
        """``(means [K, 2], sigma)`` of view ``m`` (a name such as ``"x1"`` or an index)."""
        j = self.modalities.index(m) if isinstance(m, str) else int(m)
        return self.means[j], self.sigmas[j]


def make_task(sigma1: float = SIGMA1, sigma2: float = SIGMA2, big: float = BIG,
              small: float = SMALL, prior: np.ndarray | None = None) -> TaskSpec:
    """The complementary 4-class task (see the module docstring); notebook 01.

    ``sigma1`` and ``sigma2`` are the noise levels of the two views, ``big`` and ``small`` half
    the distances between the class groups a view separates well and poorly.
    """
    for name, s in (("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.isfinite(s) or s <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {s}.")
    p = np.full(4, 0.25) if prior is None else np.asarray(prior, dtype=float)
    if p.shape != (4,) or (p < 0).any() or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"prior must be 4 non-negative numbers summing to 1, got {prior}.")
    mean1 = np.stack([big * _GROUP_A, small * _GROUP_B], axis=1)
    mean2 = np.stack([big * _GROUP_B, small * _GROUP_A], axis=1)
    return TaskSpec((mean1, mean2), (float(sigma1), float(sigma2)), p / p.sum())


def sample(spec: TaskSpec, n: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``n`` seeded samples: ``({modality: float32 [n, 2]}, labels int64 [n])``."""
    rng = np.random.default_rng([seed, n, 2310_06383])
    y = rng.choice(spec.num_classes, size=n, p=spec.prior)
    inputs = {}
    for m, means, sigma in zip(spec.modalities, spec.means, spec.sigmas):
        noise = rng.standard_normal((n, means.shape[1]))
        inputs[m] = (means[y] + sigma * noise).astype(np.float32)
    return inputs, y.astype(np.int64)


def load(n_train: int = 20000, n_val: int = 4000, n_test: int = 10000, seed: int = 0,
         sigma1: float = SIGMA1, sigma2: float = SIGMA2) -> MultiModalDataset:
    """The synthetic task as a :class:`MultiModalDataset` (inputs ``[N, 2]`` per view).

    Splits use different seeds derived from ``seed``; ``info["spec"]`` holds the
    :class:`TaskSpec`, so :mod:`umm_helpers.course.theory` can give the exact ceilings.
    """
    spec = make_task(sigma1, sigma2)
    train, validation, test = [sample(spec, n, seed=3 * seed + k)
                               for k, n in enumerate((n_train, n_val, n_test))]
    ds = MultiModalDataset.from_arrays(train, validation, test, classes=list(CLASSES), name=NAME)
    ds.info.update({"spec": spec, "seed": seed, "sigma1": float(sigma1),
                    "sigma2": float(sigma2)})
    return ds
