"""Where a real data set lives: ``root=...`` or ``$UMM_DATA_ROOT`` (README, "Beyond the
embedded data")."""
from __future__ import annotations

import os
from pathlib import Path

ENV_ROOT = "UMM_DATA_ROOT"


def root_or_env(root: str | Path | None) -> str | Path | None:
    """``root``, else ``$UMM_DATA_ROOT`` when set (and not empty), else None."""
    return root if root is not None else (os.environ.get(ENV_ROOT) or None)


def resolve_data_root(root: str | Path | None, name: str, howto: str,
                      error: type[Exception] = ValueError) -> Path:
    """``root`` or ``$UMM_DATA_ROOT`` as an existing folder; raise ``error`` saying what to do.

    ``howto`` (where to get the data and how to lay it out) ends both messages.
    """
    root = root_or_env(root)
    if root is None:
        raise error(f"{name}: no data folder given. Pass root='/path/to/{name}' (load_dataset("
                    f"'{name}', root=...)) or set {ENV_ROOT}=/path/to/{name}. {howto}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise error(f"{name}: data folder {path} does not exist. {howto}")
    return path


__all__ = ["ENV_ROOT", "root_or_env", "resolve_data_root"]
