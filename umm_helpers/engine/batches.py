"""Where batches come from (notebook 02): index slices of resident tensors, or a pinned stream.

Data that fits lives on the device and a batch is an index slice of a device-side permutation:
no per-sample Python, no DataLoader. Larger data streams through a DataLoader with pinned
memory, using the same permutation, so both paths see the same batches.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from umm_helpers.data import Split

# Resident data may use at most this fraction of free accelerator memory.
RESIDENT_FRACTION = 0.25

Batch = tuple[dict[str, Tensor], Tensor]


def batch_bounds(n: int, batch_size: int, min_last: int = 2) -> list[tuple[int, int]]:
    """``(start, end)`` of each batch; a trailing batch under ``min_last`` samples is dropped.

    ``min_last=2`` keeps BatchNorm away from one-sample batches; data-parallel training passes
    ``2 * world_size`` so that every rank's slice of the last batch has at least 2 samples
    (notebook 07).
    """
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_last:
        bounds.pop()
    return bounds


def split_bytes(*splits: Split | None) -> int:
    """Bytes of the inputs and labels of ``splits``."""
    total = 0
    for s in splits:
        if s is not None:
            total += sum(x.numel() * x.element_size() for x in s.inputs.values())
            total += s.labels.numel() * s.labels.element_size()
    return total


def use_streaming(stream: bool | None, device: torch.device, *splits: Split | None) -> bool:
    """True when batches should stream from CPU memory (forced, or data too big for the device)."""
    if stream is not None:
        return bool(stream)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return split_bytes(*splits) > RESIDENT_FRACTION * free
    return False


def resident_batches(split: Split, indices: list[Tensor]) -> Iterator[Batch]:
    """Batches sliced from tensors already on the device."""
    for idx in indices:
        yield {m: x[idx] for m, x in split.inputs.items()}, split.labels[idx]


class _BatchSource(torch.utils.data.Dataset):
    """Streaming path: each item is a whole batch, sliced from CPU tensors by an index batch."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, idx: Tensor) -> Batch:
        return {m: x[idx] for m, x in self.split.inputs.items()}, self.split.labels[idx]


def streamed_batches(split: Split, indices: list[Tensor], device: torch.device,
                     num_workers: int = 0) -> Iterator[Batch]:
    """Batches sliced on the CPU by a DataLoader (pinned memory on CUDA), moved to ``device``."""
    loader = torch.utils.data.DataLoader(
        _BatchSource(split), sampler=[idx.cpu() for idx in indices], batch_size=None,
        pin_memory=device.type == "cuda", num_workers=num_workers)
    for x, y in loader:
        yield ({m: v.to(device, non_blocking=True) for m, v in x.items()},
               y.to(device, non_blocking=True))
