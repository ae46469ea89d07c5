"""Seeds, devices, paths and environment switches (taught in notebook 00).

Nothing here runs on import: every function is called explicitly.
"""
from __future__ import annotations

import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

_REPO_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: cuda, then mps, then cpu.

    ``prefer`` (or the environment variable ``UMM_DEVICE``) forces one, e.g. ``"cpu"``.
    """
    choice = prefer or os.environ.get("UMM_DEVICE")
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def repo_root() -> Path:
    """The checkout this package was installed from (editable install)."""
    return _REPO_ROOT


def data_dir() -> Path:
    """Folder of the embedded data sets: ``$UMM_DATA_DIR`` or ``<repo>/data``."""
    return Path(os.environ.get("UMM_DATA_DIR", _REPO_ROOT / "data"))


def runs_dir() -> Path:
    """Folder of the run cache: ``$UMM_RUNS_DIR`` or ``<repo>/runs``."""
    return Path(os.environ.get("UMM_RUNS_DIR", _REPO_ROOT / "runs"))


def quick_mode() -> bool:
    """True when ``UMM_QUICK=1``: notebooks shrink epochs and seeds for smoke tests."""
    return os.environ.get("UMM_QUICK", "0") not in ("", "0", "false", "False")


def progress_enabled() -> bool:
    """Progress bars are on unless ``UMM_PROGRESS=0``."""
    return os.environ.get("UMM_PROGRESS", "1") not in ("0", "false", "False")


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "",
             enabled: bool = True, **options: Any) -> Iterable[T]:
    """``iterable`` with a ``tqdm`` bar, or unchanged when ``enabled`` is False or
    ``UMM_PROGRESS=0``."""
    if not (enabled and progress_enabled()):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, **options)
