"""The data contract: splits of modality tensors plus labels (taught in notebook 00).

A split holds ``inputs: dict[str, Tensor]`` (modality name -> ``[N, ...]``), ``labels``
(``[N]`` long for single-label, ``[N, C]`` float for multi-label), ``classes`` and per-sample
metadata. ``MultiModalDataset.from_arrays`` turns your own arrays into one, with clear errors.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

SPLIT_NAMES = ("train", "validation", "test")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_NAMES = ("any", "full")


def check_modality_name(name: str) -> None:
    """Modality names are plain lower-case words (``image``, ``audio``, ``x1``)."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in RESERVED_NAMES:
        raise ValueError(
            f"modality name {name!r} is not allowed: use a plain lower-case word such as "
            f"'image', 'audio' or 'text' (letters, digits, '_'; not {RESERVED_NAMES})."
        )


def _as_tensor(value: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value
    return torch.as_tensor(np.asarray(value))


@dataclass
class Split:
    """One split: modality tensors, labels, class names and per-sample metadata."""

    inputs: dict[str, Tensor]
    labels: Tensor
    classes: list[str]
    name: str = "split"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        """Modality names in sorted order (the order used everywhere)."""
        return sorted(self.inputs)

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    @property
    def device(self) -> torch.device:
        return self.labels.device

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> Split:
        """A copy of this split with every tensor on ``device``."""
        return Split(
            inputs={m: x.to(device) for m, x in self.inputs.items()},
            labels=self.labels.to(device),
            classes=list(self.classes),
            name=self.name,
            meta=dict(self.meta),
        )

    def subset(self, index: Tensor | Sequence[int] | np.ndarray) -> Split:
        """The samples at ``index`` (metadata arrays are indexed too)."""
        idx = torch.as_tensor(np.asarray(index) if not isinstance(index, Tensor) else index)
        idx = idx.to(self.labels.device)
        cpu_idx = idx.cpu().numpy()
        meta = {k: (np.asarray(v)[cpu_idx] if len(np.asarray(v)) == len(self) else v)
                for k, v in self.meta.items()}
        return Split({m: x[idx] for m, x in self.inputs.items()}, self.labels[idx],
                     list(self.classes), self.name, meta)


def _validate_split(name: str, inputs: Mapping[str, Any], labels: Any,
                    classes: Sequence[str] | None) -> tuple[dict[str, Tensor], Tensor]:
    if not isinstance(inputs, Mapping) or not inputs:
        raise ValueError(f"split {name!r}: inputs must be a non-empty dict "
                         "{modality name: array of shape [N, ...]}.")
    tensors: dict[str, Tensor] = {}
    for m, x in inputs.items():
        check_modality_name(m)
        t = _as_tensor(x)
        if t.ndim < 2:
            raise ValueError(f"split {name!r}: modality {m!r} has shape {tuple(t.shape)}; "
                             "each modality needs shape [N, ...] with a feature axis "
                             "(reshape a vector of scalars to [N, 1]).")
        if not torch.is_floating_point(t):
            t = t.float()
        tensors[m] = t.float() if t.dtype == torch.float64 else t
    y = _as_tensor(labels)
    n_labels = int(y.shape[0]) if y.ndim else 0
    counts = {m: int(t.shape[0]) for m, t in tensors.items()}
    if n_labels == 0 or any(c == 0 for c in counts.values()):
        raise ValueError(f"split {name!r} is empty: every split needs at least one sample.")
    if len(set(counts.values()) | {n_labels}) != 1:
        listing = ", ".join(f"{m}: {c}" for m, c in sorted(counts.items()))
        raise ValueError(f"split {name!r}: modalities have different sample counts "
                         f"({listing}; labels: {n_labels}); every modality and the labels "
                         "need exactly one row per sample, in the same order.")
    for m, t in sorted(tensors.items()):
        bad = ~torch.isfinite(t.reshape(t.shape[0], -1))
        if bool(bad.any()):
            first = int(bad.any(dim=1).nonzero()[0, 0])
            raise ValueError(
                f"split {name!r}: modality {m!r} contains {int(bad.sum())} NaN or inf values "
                f"(first in sample {first}). A missing modality is never NaN here: zero-fill "
                "it and mark it absent with a presence mask (see umm_helpers.core.missing).")
    n_classes = len(classes) if classes is not None else None
    if y.ndim == 1:
        if torch.is_floating_point(y):
            if not bool((y == y.round()).all()):
                raise ValueError(f"split {name!r}: single-label labels must be integers.")
        y = y.long()
        lo, hi = int(y.min()), int(y.max())
        limit = n_classes if n_classes is not None else hi + 1
        if lo < 0 or hi >= limit:
            raise ValueError(f"split {name!r}: labels must lie in [0, {limit - 1}] for "
                             f"{limit} classes, found values from {lo} to {hi}. Pass "
                             "classes=[...] naming every class, or fix the labels.")
    elif y.ndim == 2:
        y = y.float()
        if not bool(((y == 0) | (y == 1)).all()):
            raise ValueError(f"split {name!r}: multi-label labels [N, C] must be 0 or 1.")
        if n_classes is not None and y.shape[1] != n_classes:
            raise ValueError(f"split {name!r}: multi-label labels have {y.shape[1]} columns "
                             f"but {n_classes} classes were given.")
    else:
        raise ValueError(f"split {name!r}: labels need shape [N] (single-label) or [N, C] "
                         f"(multi-label), got {tuple(y.shape)}.")
    return tensors, y


def tensor_checksum(*splits: Split) -> str:
    """A short sha256 over every tensor of the splits (used to key the run cache)."""
    h = hashlib.sha256()
    for split in splits:
        for m in split.modalities:
            t = split.inputs[m].detach().cpu().contiguous()
            h.update(m.encode())
            h.update(str(tuple(t.shape)).encode())
            h.update(t.numpy().data)  # the buffer itself: no copy of a large tensor
        h.update(split.labels.detach().cpu().contiguous().numpy().data)
    return h.hexdigest()[:16]


@dataclass
class MultiModalDataset:
    """Train / validation / test splits sharing modalities and classes."""

    train: Split
    validation: Split
    test: Split
    name: str = "custom"
    checksum: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        reference = self.train.modalities
        for split in (self.validation, self.test):
            if split.modalities != reference:
                missing = sorted(set(reference) - set(split.modalities))
                extra = sorted(set(split.modalities) - set(reference))
                raise ValueError(
                    f"split {split.name!r} has modalities {split.modalities} but split 'train' "
                    f"has {reference} (missing: {missing}, extra: {extra}); every split must "
                    "hold the same modalities. Zero-fill an absent modality and mask it instead.")
            for m in reference:
                if split.inputs[m].shape[1:] != self.train.inputs[m].shape[1:]:
                    raise ValueError(
                        f"modality {m!r} has sample shape {tuple(split.inputs[m].shape[1:])} in "
                        f"split {split.name!r} but {tuple(self.train.inputs[m].shape[1:])} in "
                        "'train'; every split needs the same shape per modality.")
        if not self.checksum:
            self.checksum = tensor_checksum(self.train, self.validation, self.test)

    @property
    def modalities(self) -> list[str]:
        return self.train.modalities

    @property
    def classes(self) -> list[str]:
        return self.train.classes

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)

    @property
    def multilabel(self) -> bool:
        return self.train.multilabel

    def splits(self) -> dict[str, Split]:
        return {name: getattr(self, name) for name in SPLIT_NAMES}

    def to(self, device: torch.device | str) -> MultiModalDataset:
        """A copy with every split on ``device``."""
        return MultiModalDataset(self.train.to(device), self.validation.to(device),
                                 self.test.to(device), self.name, self.checksum, dict(self.info))

    def summary(self) -> dict[str, Any]:
        """Sizes and shapes, as a plain dict (printed by notebook 00)."""
        return {
            "name": self.name,
            "classes": len(self.classes),
            "sizes": {k: len(s) for k, s in self.splits().items()},
            "shapes": {m: list(self.train.inputs[m].shape[1:]) for m in self.modalities},
            "checksum": self.checksum,
        }

    @classmethod
    def from_arrays(cls, train: tuple[Mapping[str, Any], Any],
                    validation: tuple[Mapping[str, Any], Any],
                    test: tuple[Mapping[str, Any], Any],
                    classes: Sequence[str] | None = None, name: str = "custom",
                    meta: Mapping[str, Mapping[str, Any]] | None = None) -> MultiModalDataset:
        """Build a data set from ``(inputs, labels)`` pairs of numpy arrays or tensors.

        ``inputs`` maps modality name to an array ``[N, ...]``; labels are ``[N]`` integers
        or ``[N, C]`` 0/1 for multi-label. ``classes`` defaults to ``"0" .. "C-1"``.
        """
        parts = {"train": train, "validation": validation, "test": test}
        checked: dict[str, tuple[dict[str, Tensor], Tensor]] = {}
        for split_name, pair in parts.items():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"split {split_name!r} must be a pair (inputs, labels), "
                                 f"got {type(pair).__name__}.")
            checked[split_name] = _validate_split(split_name, pair[0], pair[1], classes)
        if classes is None:
            y = checked["train"][1]
            n = (y.shape[1] if y.ndim == 2
                 else int(max(int(t[1].max()) for t in checked.values())) + 1)
            classes = [str(i) for i in range(n)]
        meta = meta or {}
        splits = [Split(x, y, list(classes), k, dict(meta.get(k, {})))
                  for k, (x, y) in checked.items()]
        train_split, validation_split, test_split = splits
        return cls(train_split, validation_split, test_split, name=name)
