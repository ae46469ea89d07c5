"""``avmnist-shapes``: a stand-in with AV-MNIST's shapes and sizes, for timing only.

Image ``[N, 1, 28, 28]`` and audio ``[N, 1, 112, 112]``, ten classes, split 55,000 / 5,000 /
10,000 as MultiBench splits AV-MNIST. Each sample is its class's random template plus Gaussian
noise, generated deterministically from ``seed`` (nothing is read or downloaded). It lets
``umm bench --methods`` and ``make gpu-check`` time every method at AV-MNIST scale on a machine
that does not have the archive. Its accuracies say nothing about AV-MNIST: use it for wall
times and memory only (README, "Beyond the embedded data").
"""
from __future__ import annotations

import hashlib

import torch
from torch import Tensor

from umm_helpers.data.dataset import MultiModalDataset, Split

NAME = "avmnist-shapes"
CLASSES = [str(d) for d in range(10)]
SIZES = {"train": 55_000, "validation": 5_000, "test": 10_000}
SHAPES = {"image": (1, 28, 28), "audio": (1, 112, 112)}
CHUNK = 4096


def split_sizes(scale: float) -> dict[str, int]:
    """Samples per split at ``scale`` (1.0 = AV-MNIST's 55,000 / 5,000 / 10,000)."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale = {scale!r}: expected a fraction in (0, 1] of AV-MNIST's size "
                         "(1.0 = 70,000 pairs; 0.01 = 700 pairs for a quick try).")
    return {s: max(len(CLASSES), round(n * scale)) for s, n in SIZES.items()}


def _fill(shape: tuple[int, ...], templates: Tensor, labels: Tensor, noise: float,
          gen: torch.Generator) -> Tensor:
    """Template of each label plus noise, written chunk by chunk into one tensor."""
    out = torch.empty((len(labels), *shape))
    for start in range(0, len(labels), CHUNK):
        rows = labels[start:start + CHUNK]
        block = torch.randn((len(rows), *shape), generator=gen).mul_(noise)
        out[start:start + len(rows)] = block.add_(templates[rows])
    return out


def load(scale: float = 1.0, seed: int = 0, noise: float = 1.0) -> MultiModalDataset:
    """The stand-in at ``scale`` of AV-MNIST's size (about 4.4 GB of float32 at 1.0)."""
    sizes = split_sizes(scale)
    gen = torch.Generator().manual_seed(int(seed))
    templates = {m: torch.rand((len(CLASSES), *shape), generator=gen)
                 for m, shape in SHAPES.items()}
    splits = []
    for name, n in sizes.items():
        labels = torch.randint(len(CLASSES), (n,), generator=gen)
        inputs = {m: _fill(SHAPES[m], templates[m], labels, noise, gen) for m in SHAPES}
        splits.append(Split(inputs, labels, list(CLASSES), name, {}))
    recipe = f"{NAME}|torch-randn|scale={scale!r}|seed={int(seed)}|noise={noise!r}"
    train, validation, test = splits
    return MultiModalDataset(train, validation, test, name=NAME,
                             checksum=hashlib.sha256(recipe.encode()).hexdigest()[:16],
                             info={"scale": scale, "seed": int(seed), "noise": noise,
                                   "purpose": "timing only: random templates plus noise"})


__all__ = ["NAME", "SIZES", "SHAPES", "split_sizes", "load"]
