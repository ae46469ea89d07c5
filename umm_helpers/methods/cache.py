"""The run cache: trained runs on disk, keyed by :func:`umm_helpers.methods.identity.run_key`.

A run lives in ``<root>/<dataset>/<method>/<key>/`` as ``model.safetensors`` plus
``result.json``, written last and atomically: a run without it does not exist. ``root`` defaults
to ``runs_dir()/cache``. Notebooks reuse what an earlier notebook trained; a change of data,
config, encoders or package source gives a new key, so results are never stale (notebook 06).
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from umm_helpers.atomic import write_text as atomic_write_text
from umm_helpers.engine import distributed
from umm_helpers.engine.checkpoint import CheckpointError, load_tensors, save_tensors
from umm_helpers.settings import runs_dir

WEIGHTS = "model.safetensors"
RESULT = "result.json"


def safe_name(method: str) -> str:
    """A method name usable as a folder name (``unimodal:image`` -> ``unimodal_image``)."""
    return method.replace(":", "_")


class RunCache:
    """Trained runs under ``root`` (default ``runs_dir()/cache``, read when first used)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self._root = Path(root) if root is not None else None

    @property
    def root(self) -> Path:
        return self._root if self._root is not None else runs_dir() / "cache"

    def __repr__(self) -> str:
        return f"RunCache({str(self.root)!r})"

    def folder(self, dataset_name: str, method: str, key: str) -> Path:
        """Where the run ``key`` of ``method`` on ``dataset_name`` lives."""
        return self.root / dataset_name / safe_name(method) / key

    def load_result(self, folder: Path) -> dict[str, Any] | None:
        """The cached result, or None when the run is not (completely) there."""
        path = folder / RESULT
        if not path.exists() or not (folder / WEIGHTS).exists():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"cached result {path} is corrupt ({exc}); delete its folder "
                                  "to retrain.") from exc

    def load_weights(self, folder: Path, model: nn.Module) -> nn.Module:
        """Load cached weights into a model of the same architecture."""
        path = folder / WEIGHTS
        tensors, _ = load_tensors(path)
        try:
            model.load_state_dict(tensors)
        except RuntimeError as exc:
            raise CheckpointError(f"cached weights {path} do not fit this model ({exc}); delete "
                                  "its folder to retrain.") from exc
        return model

    def save(self, folder: Path, model: nn.Module, result: Mapping[str, Any]) -> Path:
        """Write weights, then ``result.json`` (the commit marker), both atomically.

        Under ``torchrun`` every rank calls it: rank 0 writes, the others wait at a barrier, so
        afterwards every rank sees the cached run (notebook 07).
        """
        if distributed.is_main():
            folder.mkdir(parents=True, exist_ok=True)
            save_tensors(folder / WEIGHTS, model.state_dict(), {"method": result.get("method")})
            atomic_write_text(folder / RESULT, json.dumps(result, indent=1, sort_keys=True))
        distributed.barrier()
        return folder

    def clear_checkpoints(self, folder: Path) -> None:
        """Remove the stage checkpoints of a finished run (rank 0 only under ``torchrun``)."""
        if not distributed.is_main():
            return
        for sub in folder.glob("ckpt-*"):
            shutil.rmtree(sub, ignore_errors=True)
