"""Safetensors checkpoints (no pickle). Used by the ``Trainer`` (resume) and the run cache.

A checkpoint is one ``.safetensors`` file: tensors (model, optimizer, RNG states) plus a small
JSON document for non-tensor state, stored in the file's metadata header so that the two can
never disagree. Every write goes to a temporary file in the same folder, then ``os.replace``.
Taught in notebook 02 (resume) and used by every notebook through the run cache.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as _st_save
from torch import Tensor

from umm_helpers.atomic import write_bytes as atomic_write_bytes

META_KEY = "umm"


class CheckpointError(RuntimeError):
    """A checkpoint or cached run that is corrupt, unreadable or does not match."""


def tensor_bytes(tensors: Mapping[str, Tensor], meta: Mapping[str, Any] | None = None) -> bytes:
    """The safetensors file of ``tensors`` (copied to contiguous CPU memory) and a JSON-able
    ``meta``, as bytes."""
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    header = {META_KEY: json.dumps(dict(meta or {}), sort_keys=True)}
    return _st_save(plain, metadata=header)


def save_tensors(path: str | os.PathLike, tensors: Mapping[str, Tensor],
                 meta: Mapping[str, Any] | None = None) -> Path:
    """Save tensors and a JSON-able ``meta`` atomically (:func:`tensor_bytes`)."""
    return atomic_write_bytes(path, tensor_bytes(tensors, meta))


def nonfinite_entries(tensors: Mapping[str, Tensor]) -> list[str]:
    """Names of the floating-point tensors that hold NaN or inf (sorted)."""
    return sorted(k for k, v in tensors.items()
                  if torch.is_floating_point(v) and not bool(torch.isfinite(v).all()))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Load ``(tensors, meta)``; a corrupt or foreign file raises ``CheckpointError`` naming it."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(header[META_KEY])
    except FileNotFoundError:
        raise
    except Exception as exc:  # safetensors raises several types for damaged files
        raise CheckpointError(f"checkpoint file {path} is corrupt or not a umm_helpers "
                              f"checkpoint ({type(exc).__name__}: {exc}); delete it to start "
                              "over.") from exc
    return tensors, meta


def flatten_optimizer(state: Mapping[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors and JSON-able rest."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: Mapping[str, Tensor], rest: Mapping[str, Any]
                        ) -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer`."""
    state: dict[int, dict[str, Any]] = {}
    for flat, value in list(tensors.items()) + list(rest["scalars"].items()):
        pid, key = flat.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def model_fingerprint(module: torch.nn.Module) -> dict[str, list[int]]:
    """Names and shapes of a module's state (to refuse a checkpoint of another model)."""
    return {k: list(v.shape) for k, v in module.state_dict().items()}
