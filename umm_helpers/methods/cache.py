"""The run cache: trained runs on disk, keyed by :func:`umm_helpers.methods.identity.run_key`.

A run lives in ``<root>/<dataset>/<method>/<key>/`` as ``model.safetensors``, ``result.json``
and ``manifest.json`` (the sha256 of the other two), each written atomically, the manifest last:
a run without it does not exist, and a run whose files do not match it is damaged and never used
(:func:`umm_helpers.methods.run.run_method` warns, naming the folder, and trains it again).
Folder names come from :func:`umm_helpers.settings.folder_name`, so no data set or method name
leaves ``root``, which defaults to ``runs_dir()/cache``. Notebooks reuse what an earlier
notebook trained; a change of data, config, encoders or package source gives a new key, so
results are never stale (notebook 06).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from umm_helpers.atomic import check_writable
from umm_helpers.atomic import write_bytes as atomic_write_bytes
from umm_helpers.atomic import write_text as atomic_write_text
from umm_helpers.engine import distributed
from umm_helpers.engine.checkpoint import (
    CheckpointError,
    load_tensors,
    nonfinite_entries,
    tensor_bytes,
)
from umm_helpers.settings import folder_name, is_inside, name_folder, runs_dir

WEIGHTS = "model.safetensors"
RESULT = "result.json"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
        """Where the run ``key`` of ``method`` on ``dataset_name`` lives (always inside
        ``root``: names are mapped by :func:`umm_helpers.settings.folder_name`)."""
        return (name_folder(self.root, dataset_name, what="data set name")
                / folder_name(method, "method name") / folder_name(key, "run key"))

    def check_writable(self) -> Path:
        """Raise ``ValueError`` with the fix, before any training, when ``root`` is not
        writable (rank 0 only under ``torchrun``: the other ranks never write)."""
        if distributed.is_main():
            check_writable(self.root, "the run cache folder",
                           "point UMM_RUNS_DIR at a writable folder, pass cache=RunCache("
                           "'/a/writable/folder'), or cache=False to keep nothing.")
        return self.root

    def _check_inside(self, folder: Path) -> None:
        if not is_inside(folder, self.root):
            raise ValueError(f"folder {folder} is not inside the run cache {self.root}; use "
                             "RunCache.folder(...) to name a run's folder.")

    def verify(self, folder: Path) -> bool:
        """True when the run in ``folder`` is complete and its files match ``manifest.json``.

        False when there is no manifest (the run was never finished); ``CheckpointError``,
        naming the folder and the file, when a file is missing or its sha256 differs.
        """
        path = folder / MANIFEST
        if not path.exists():
            return False
        try:
            manifest = json.loads(path.read_text())
            files = manifest["files"]
            if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict) \
                    or sorted(files) != sorted((WEIGHTS, RESULT)):
                raise ValueError("unexpected contents")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"cached run {folder}: {path} is unreadable ({exc}); the run "
                                  "is damaged and is not used.") from exc
        for name, digest in sorted(files.items()):
            try:
                actual = _sha256((folder / name).read_bytes())
            except OSError as exc:
                raise CheckpointError(f"cached run {folder}: {folder / name} is missing or "
                                      f"unreadable ({exc}); the run is not used.") from exc
            if actual != digest:
                raise CheckpointError(f"cached run {folder}: {folder / name} does not match "
                                      f"its sha256 in {MANIFEST} (expected {digest[:16]}..., "
                                      f"found {actual[:16]}...); the file was changed or "
                                      "damaged after the run was saved, and is not used.")
        return True

    def load_result(self, folder: Path) -> dict[str, Any] | None:
        """The cached result, or None when the run is not (completely) there.

        Every file is checked against ``manifest.json`` first: a damaged run raises
        ``CheckpointError`` naming the folder and the file.
        """
        if not self.verify(folder):
            return None
        path = folder / RESULT
        try:
            result = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"cached result {path} is corrupt ({exc}); delete its folder "
                                  "to retrain.") from exc
        if not isinstance(result, dict):
            raise CheckpointError(f"cached result {path} holds {type(result).__name__}, not a "
                                  "result dict; delete its folder to retrain.")
        return result

    def load_weights(self, folder: Path, model: nn.Module) -> nn.Module:
        """Load cached weights into a model of the same architecture (finite values only)."""
        path = folder / WEIGHTS
        tensors, _ = load_tensors(path)
        bad = nonfinite_entries(tensors)
        if bad:
            raise CheckpointError(f"cached weights {path} hold NaN or inf values (in "
                                  f"{bad[:3]}); delete its folder to retrain.")
        try:
            model.load_state_dict(tensors)
        except RuntimeError as exc:
            raise CheckpointError(f"cached weights {path} do not fit this model ({exc}); delete "
                                  "its folder to retrain.") from exc
        return model

    def save(self, folder: Path, model: nn.Module, result: Mapping[str, Any]) -> Path:
        """Write weights and ``result.json``, then ``manifest.json`` (their sha256, the commit
        marker), each atomically; an older manifest is removed first, so a write interrupted
        half way leaves no run that looks complete.

        Under ``torchrun`` every rank calls it: rank 0 writes, the others wait at a barrier, so
        afterwards every rank sees the cached run (notebook 07).
        """
        self._check_inside(folder)
        if distributed.is_main():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / MANIFEST).unlink(missing_ok=True)
            weights = tensor_bytes(model.state_dict(), {"method": result.get("method")})
            text = json.dumps(result, indent=1, sort_keys=True).encode("utf-8")
            atomic_write_bytes(folder / WEIGHTS, weights)
            atomic_write_bytes(folder / RESULT, text)
            files = {WEIGHTS: _sha256(weights), RESULT: _sha256(text)}
            atomic_write_text(folder / MANIFEST, json.dumps(
                {"format": MANIFEST_FORMAT, "files": files}, indent=1, sort_keys=True))
        distributed.barrier()
        return folder

    def clear_checkpoints(self, folder: Path) -> None:
        """Remove the stage checkpoints of a finished run (rank 0 only under ``torchrun``);
        ``folder`` must lie inside ``root``."""
        self._check_inside(folder)
        if not distributed.is_main():
            return
        for sub in folder.glob("ckpt-*"):
            if sub.is_dir() and not sub.is_symlink():
                shutil.rmtree(sub, ignore_errors=True)
