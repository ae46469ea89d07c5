"""``TrainConfig``: the settings the engine reads, each checked with a named error (notebook 02).

Method options (``distill_weight`` of ``umt``, the fine-tuning schedule of ``ume-mma``) are not
here: they live with their method in :mod:`umm_helpers.methods.registry`.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from umm_helpers.settings import check_device_available, get_device, parse_device

OPTIMIZERS = ("adam", "adamw", "sgd")
MAX_SEED = 2**63 - 1  # torch.manual_seed takes 64 bits; one bit of room for derived seeds
# Fields that may change between an interrupted run and its resumption.
RESUME_FREE_FIELDS = ("epochs", "checkpoint_every", "device", "stream", "num_workers", "patience",
                      "capture")


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_device(v: Any) -> bool:
    """A device name (or ``torch.device``) of a type the engine trains on."""
    try:
        parse_device(v)
    except (TypeError, ValueError):
        return False
    return True


@dataclass
class TrainConfig:
    """Training settings shared by every method (notebook 02).

    ``p_missing=None`` means the method's default (see ``umm.METHODS``: 0.5 for ``joint-mma``
    and ``ume-mma``, no MMA for the others). ``keep`` gives training-time missing data:
    ``{"audio": 0.2}`` keeps audio for 20% of the training samples. ``amp=True`` trains in bf16
    autocast on CUDA (ignored on a CPU); off by default because on an H200 it made the shipped
    small encoders 11-28 % slower than float32 (README, GPU section). ``capture=None`` replays
    full batches from a captured CUDA graph on a CUDA device in one process and steps eagerly
    elsewhere; ``True`` insists (refused where it cannot run), ``False`` always steps eagerly
    (:mod:`umm_helpers.engine.capture`).
    """

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    p_missing: float | None = None
    seed: int = 0
    device: str | None = None
    amp: bool = False
    patience: int = 0
    checkpoint_every: int = 1
    keep: dict[str, float] = field(default_factory=dict)
    stream: bool | None = None
    num_workers: int = 0
    sync_batchnorm: bool = False
    capture: bool | None = None

    def validate(self) -> TrainConfig:
        """Raise ``ValueError`` naming the first bad field and its valid range."""
        def bad(name: str, valid: str) -> ValueError:
            return ValueError(f"TrainConfig.{name} = {getattr(self, name)!r} is invalid: "
                              f"expected {valid}.")

        checks: list[tuple[str, bool, str]] = [
            ("epochs", is_int(self.epochs) and self.epochs >= 1, "an integer >= 1"),
            ("batch_size", is_int(self.batch_size) and self.batch_size >= 2, "an integer >= 2"),
            ("lr", is_number(self.lr) and self.lr > 0, "a number > 0"),
            ("weight_decay", is_number(self.weight_decay) and self.weight_decay >= 0,
             "a number >= 0"),
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {list(OPTIMIZERS)}"),
            ("p_missing", self.p_missing is None or (is_number(self.p_missing)
                                                     and 0 <= self.p_missing <= 1),
             "None (method default) or a number in [0, 1]"),
            ("seed", is_int(self.seed) and 0 <= self.seed <= MAX_SEED,
             "an integer >= 0 (at most 2**63 - 1)"),
            ("device", self.device is None or is_device(self.device),
             "None (auto) or a device name such as 'cpu', 'cuda', 'cuda:1' or 'mps'"),
            ("amp", isinstance(self.amp, bool), "True or False"),
            ("sync_batchnorm", isinstance(self.sync_batchnorm, bool), "True or False"),
            ("capture", self.capture is None or isinstance(self.capture, bool),
             "None (auto: on CUDA), True or False"),
            ("patience", is_int(self.patience) and self.patience >= 0,
             "an integer >= 0 (0 turns early stopping off)"),
            ("checkpoint_every", is_int(self.checkpoint_every) and self.checkpoint_every >= 1,
             "an integer >= 1"),
            ("keep", isinstance(self.keep, Mapping) and all(
                isinstance(k, str) and is_number(v) and 0 <= v <= 1
                for k, v in self.keep.items()), "a dict {modality: fraction in [0, 1]}"),
            ("stream", self.stream is None or isinstance(self.stream, bool),
             "None (auto), True or False"),
            ("num_workers", is_int(self.num_workers) and self.num_workers >= 0,
             "an integer >= 0"),
        ]
        for name, ok, valid in checks:
            if not ok:
                raise bad(name, valid)
        if self.device is not None:
            check_device_available(parse_device(self.device), "TrainConfig.device")
        return self

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (an unknown field is a ``TypeError`` naming it)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["keep"] = {k: float(v) for k, v in sorted(self.keep.items())}
        d["device"] = None if self.device is None else str(self.device)
        return d


def resolve_device(config: TrainConfig) -> torch.device:
    """``config.device`` or the best available device (``ValueError`` with the fix when the
    device named by ``config.device`` or ``UMM_DEVICE`` is not on this machine)."""
    if config.device is not None:
        return check_device_available(parse_device(config.device, "TrainConfig.device"),
                                      "TrainConfig.device")
    return check_device_available(get_device(), "UMM_DEVICE")
