"""Data sets and the registry ``load_dataset(name, ...)`` (taught in notebook 00)."""
from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from umm_helpers.data.dataset import MultiModalDataset, Split

# name -> "module:function"; loaders are imported only when used.
_REGISTRY: dict[str, str] = {
    "av-digits": "umm_helpers.data.av_digits:load",
    "av-digits-text": "umm_helpers.data.av_digits_text:load",
    "digit-halves": "umm_helpers.data.digit_halves:load",
    "synthetic": "umm_helpers.data.synthetic:load",
    "avmnist": "umm_helpers.data.avmnist:load",
    "avmnist-smil": "umm_helpers.data.avmnist:load_smil",
    "food101": "umm_helpers.data.food101:load_food101",
    "mmimdb": "umm_helpers.data.mmimdb:load_mmimdb",
    "avmnist-shapes": "umm_helpers.data.avmnist_shapes:load",
}


def register_dataset(name: str, loader: str | Callable[..., MultiModalDataset]) -> None:
    """Register a loader (a callable, or ``"module:function"``) under ``name``."""
    _REGISTRY[name] = loader  # type: ignore[assignment]


def available_datasets() -> list[str]:
    return sorted(_REGISTRY)


def loader_path(name: str) -> str | None:
    """The ``"module:function"`` that loads ``name`` (so another process can load it too), or
    None for an unknown name or a loader registered as a callable."""
    target = _REGISTRY.get(name)
    return target if isinstance(target, str) else None


def load_from_path(path: str, **kwargs: Any) -> MultiModalDataset:
    """Call the loader ``"module:function"``."""
    module, func = path.split(":")
    return getattr(import_module(module), func)(**kwargs)


def load_dataset(name: str, **kwargs: Any) -> MultiModalDataset:
    """Load a registered data set by name, e.g. ``load_dataset("av-digits")``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown data set {name!r}; available: {available_datasets()}. "
                         "Use MultiModalDataset.from_arrays(...) for your own arrays.")
    target = _REGISTRY[name]
    if callable(target):
        return target(**kwargs)
    return load_from_path(target, **kwargs)


__all__ = ["MultiModalDataset", "Split", "load_dataset", "register_dataset", "available_datasets",
           "loader_path", "load_from_path"]
