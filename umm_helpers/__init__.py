"""umm_helpers: robust multi-modal learning when modalities go missing (UME-MMA).

Importing this package only defines names: nothing is seeded, downloaded or probed.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Public names, resolved lazily so that ``import umm_helpers`` stays cheap.
_EXPORTS = {
    "set_seed": "config", "get_device": "config", "data_dir": "config", "runs_dir": "config",
    "quick_mode": "config", "progress_enabled": "config",
    "MultiModalDataset": "data", "Split": "data", "load_dataset": "data",
    "MaskTable": "missing", "parse_condition": "missing", "apply_presence": "missing",
    "training_presence": "missing", "mma_presence": "missing",
    "TrainConfig": "train", "fit": "train",
    "run_method": "methods", "METHODS": "methods",
    "evaluate": "evaluate", "PatternLogits": "evaluate",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = import_module(f"umm_helpers.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'umm_helpers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
