"""Seeded synthetic data sets for the engine tests (each modality carries label information)."""
from __future__ import annotations

import numpy as np
import torch

from umm_helpers.data import MultiModalDataset

# Two cores shared with other work: one intra-op thread avoids spin-wait contention.
torch.set_num_threads(1)


def _split(rng: np.random.Generator, n: int, classes: int, shapes: dict, noise: float,
           multilabel: bool = False):
    y = rng.integers(0, classes, size=n)
    inputs = {}
    for j, (m, shape) in enumerate(sorted(shapes.items())):
        size = int(np.prod(shape))
        proto = np.random.default_rng(100 + j).normal(size=(classes, size))
        x = proto[y] + noise * rng.normal(size=(n, size))
        inputs[m] = x.reshape((n, *shape)).astype(np.float32)
    if multilabel:
        labels = np.zeros((n, classes), dtype=np.float32)
        labels[np.arange(n), y] = 1
        labels[np.arange(n), (y + 1) % classes] = 1
        return inputs, labels
    return inputs, y


def tiny_dataset(shapes: dict | None = None, n: tuple[int, int, int] = (96, 48, 64),
                 classes: int = 4, noise: float = 1.5, seed: int = 0,
                 multilabel: bool = False) -> MultiModalDataset:
    """A tiny seeded task; default modalities: audio [1, 8, 6] and image [1, 4, 4]."""
    shapes = shapes or {"audio": (1, 8, 6), "image": (1, 4, 4)}
    rng = np.random.default_rng(seed)
    parts = [_split(rng, k, classes, shapes, noise, multilabel) for k in n]
    return MultiModalDataset.from_arrays(*parts, name="tiny")


def three_modal(seed: int = 0) -> MultiModalDataset:
    return tiny_dataset({"audio": (1, 6, 5), "image": (1, 4, 4), "text": (12,)}, seed=seed)


def late_model(dataset: MultiModalDataset, seed: int = 0):
    """A LateFusionModel with default encoders, initialised from ``seed``."""
    import torch

    from umm_helpers.core.encoders import default_encoders, feature_dim
    from umm_helpers.core.fusion import LateFusionModel

    torch.manual_seed(seed)
    enc = {m: f() for m, f in default_encoders(dataset).items()}
    dims = {m: feature_dim(e, tuple(dataset.train.inputs[m].shape[1:])) for m, e in enc.items()}
    return LateFusionModel(enc, dataset.num_classes, dims)


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch_equal(sa[k], sb[k]) for k in sa)


def torch_equal(x, y) -> bool:
    import torch

    return torch.equal(x.cpu(), y.cpu())


def step_by_hand(trainer, idx):
    """One training step of the batch ``idx`` through ``prepare_batch`` and ``step``, the way
    ``Trainer.fit_epoch`` takes it (single process)."""
    x = {m: v[idx] for m, v in trainer.train.inputs.items()}
    x, present = trainer.prepare_batch(x, idx, 0, len(idx))
    return trainer.step(x, present, trainer.train.labels[idx])
