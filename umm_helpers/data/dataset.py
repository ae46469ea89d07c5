"""The data contract: splits of modality tensors plus labels (taught in notebook 00).

A split holds ``inputs: dict[str, Tensor]`` (modality name -> ``[N, ...]``), ``labels``
(``[N]`` long for single-label, ``[N, C]`` float for multi-label), ``classes`` and per-sample
metadata. ``MultiModalDataset.from_arrays`` turns your own arrays into one, with clear errors.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

SPLIT_NAMES = ("train", "validation", "test")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_NAMES = ("any", "full")
# At most this many classes are inferred from integer labels (classes=None); name the classes
# (classes=[...]) for more. A stray large label would otherwise build millions of class names.
MAX_INFERRED_CLASSES = 100_000
# numpy dtype kinds accepted as inputs and labels: bool, signed and unsigned integers, floats.
_NUMERIC_KINDS = "biuf"
_KIND_NAMES = {"c": "complex numbers", "O": "Python objects", "U": "strings", "S": "bytes",
               "V": "records", "M": "dates", "m": "time spans"}


def check_modality_name(name: str) -> None:
    """Modality names are plain lower-case words (``image``, ``audio``, ``x1``)."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in RESERVED_NAMES:
        raise ValueError(
            f"modality name {name!r} is not allowed: use a plain lower-case word such as "
            f"'image', 'audio' or 'text' (letters, digits, '_'; not {RESERVED_NAMES})."
        )


def _as_tensor(value: Any, what: str = "value") -> Tensor:
    """``value`` as a tensor of real numbers, or a ``ValueError`` naming ``what``."""
    fix = "expected an array of real numbers (floats, integers or booleans)"
    text_fix = f"{fix}; turn text into features first (e.g. umm.sentence_features)"
    complex_fix = (f"{fix}; pass real features instead, e.g. the real and imaginary parts "
                   "stacked on a feature axis, or the magnitude")
    if isinstance(value, Tensor):
        t = value.detach()
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:  # ragged nested lists and the like
            raise ValueError(f"{what} is not a rectangular array ({exc}); {fix}, one row per "
                             "sample, every row of the same shape.") from exc
        if arr.dtype.kind not in _NUMERIC_KINDS:
            kind = _KIND_NAMES.get(arr.dtype.kind, f"dtype {arr.dtype}")
            how = complex_fix if arr.dtype.kind == "c" else text_fix
            raise ValueError(f"{what} holds {kind} (dtype {arr.dtype}); {how}.")
        try:
            t = torch.as_tensor(arr)
        except (TypeError, RuntimeError) as exc:
            raise ValueError(f"{what} has dtype {arr.dtype}, which torch cannot hold; {fix}.") \
                from exc
    if t.is_complex():
        raise ValueError(f"{what} holds complex numbers (dtype {t.dtype}); {complex_fix}.")
    return t


def label_kind(labels: Tensor) -> str:
    """``"single-label [N]"`` or ``"multi-label [N, C]"`` with the number of columns."""
    return f"multi-label [N, {labels.shape[1]}]" if labels.ndim == 2 else "single-label [N]"


def _label_kinds_differ(split: str, labels: Tensor, train_labels: Tensor) -> ValueError:
    return ValueError(f"split {split!r} has {label_kind(labels)} labels but split 'train' has "
                      f"{label_kind(train_labels)} labels; every split needs the same kind of "
                      "labels (and, multi-label, the same columns): the loss and the metric "
                      "follow from it.")


def check_classes(classes: Iterable[str] | None, what: str = "classes") -> list[str] | None:
    """``classes`` as a list of distinct, non-empty class names, or a named error."""
    if classes is None:
        return None
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Iterable):
        raise TypeError(f"{what} must be a list of class names such as ['cat', 'dog'], got "
                        f"{type(classes).__name__} {classes!r:.60}.")
    names = list(classes)
    if not names:
        raise ValueError(f"{what} is empty: name at least one class.")
    odd = [c for c in names if not isinstance(c, str) or not c.strip()]
    if odd:
        raise TypeError(f"{what} must hold non-empty strings, found {odd[:3]!r}; use e.g. "
                        "[str(c) for c in ...].")
    dups = sorted(c for c, k in Counter(names).items() if k > 1)
    if dups:
        raise ValueError(f"{what} names some classes more than once ({dups[:5]}); every class "
                         "needs one distinct name.")
    return names


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
        try:
            check_modality_name(m)
        except ValueError as exc:
            raise ValueError(f"split {name!r}: {exc}") from None
        t = _as_tensor(x, f"split {name!r}: modality {m!r}")
        if t.ndim < 2:
            raise ValueError(f"split {name!r}: modality {m!r} has shape {tuple(t.shape)}; "
                             "each modality needs shape [N, ...] with a feature axis "
                             "(reshape a vector of scalars to [N, 1]).")
        if any(s == 0 for s in t.shape[1:]):
            raise ValueError(f"split {name!r}: modality {m!r} has shape {tuple(t.shape)}: no "
                             "values per sample; every modality needs at least one feature.")
        # one dtype for the engine: float16, bfloat16, float64, integers and booleans -> float32
        tensors[m] = t if t.dtype == torch.float32 else t.float()
    y = _as_tensor(labels, f"split {name!r}: labels")
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
            if not bool((torch.isfinite(y) & (y == y.round())).all()):
                raise ValueError(f"split {name!r}: single-label labels must be integers.")
        elif y.dtype == torch.bool:
            y = y.long()
        lo, hi = int(y.min()), int(y.max())
        if n_classes is None and hi >= MAX_INFERRED_CLASSES:
            raise ValueError(
                f"split {name!r}: labels go up to {hi}, which would infer {hi + 1} classes, "
                f"more than MAX_INFERRED_CLASSES = {MAX_INFERRED_CLASSES}. Relabel the classes "
                "0..C-1 (e.g. np.unique(labels, return_inverse=True)) or pass classes=[...] "
                "naming every class.")
        limit = n_classes if n_classes is not None else hi + 1
        if lo < 0 or hi >= limit:
            raise ValueError(f"split {name!r}: labels must lie in [0, {limit - 1}] for "
                             f"{limit} classes, found values from {lo} to {hi}. Pass "
                             "classes=[...] naming every class, or fix the labels.")
        y = y.long()
    elif y.ndim == 2:
        y = y.float()
        if y.shape[1] == 0:
            raise ValueError(f"split {name!r}: multi-label labels have shape "
                             f"{tuple(y.shape)}; [N, C] needs at least one class column.")
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
        if not isinstance(self.name, str) or not self.name.strip():
            raise TypeError(f"the data set name must be a non-empty string such as 'custom', "
                            f"got {self.name!r:.60}.")
        reference = self.train.modalities
        for split in (self.validation, self.test):
            if split.multilabel != self.train.multilabel:
                raise _label_kinds_differ(split.name, split.labels, self.train.labels)
            if list(split.classes) != list(self.train.classes):
                raise ValueError(f"split {split.name!r} has classes {list(split.classes)[:5]}... "
                                 f"but split 'train' has {list(self.train.classes)[:5]}...; every "
                                 "split needs the same class list.")
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

        ``inputs`` maps modality name to an array ``[N, ...]`` of real numbers (stored as
        float32); labels are ``[N]`` integers or ``[N, C]`` 0/1 for multi-label, of the same
        kind in every split. ``classes`` (distinct names) defaults to ``"0" .. "C-1"``, inferred
        from the largest label up to :data:`MAX_INFERRED_CLASSES` classes. Every problem is a
        ``ValueError`` or ``TypeError`` naming the split, modality or argument, raised before
        anything is built.
        """
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"from_arrays: name must be a non-empty string such as 'custom', "
                            f"got {name!r:.60}.")
        classes = check_classes(classes)
        if meta is not None and (not isinstance(meta, Mapping) or any(
                k not in SPLIT_NAMES or not isinstance(v, Mapping) for k, v in meta.items())):
            raise TypeError(f"from_arrays: meta must be a dict {{split name: {{key: per-sample "
                            f"values}}}} with split names {list(SPLIT_NAMES)}, got {meta!r:.80}.")
        parts = {"train": train, "validation": validation, "test": test}
        checked: dict[str, tuple[dict[str, Tensor], Tensor]] = {}
        for split_name, pair in parts.items():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"split {split_name!r} must be a pair (inputs, labels), "
                                 f"got {type(pair).__name__}.")
            checked[split_name] = _validate_split(split_name, pair[0], pair[1], classes)
        train_y = checked["train"][1]
        for k, (_, y) in checked.items():
            if label_kind(y) != label_kind(train_y):
                raise _label_kinds_differ(k, y, train_y)
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
