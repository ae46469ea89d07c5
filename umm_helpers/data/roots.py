"""Where a real data set lives: ``root=...`` or ``$UMM_DATA_ROOT`` (README, "Beyond the
embedded data")."""
from __future__ import annotations

import os
from pathlib import Path

ENV_ROOT = "UMM_DATA_ROOT"


def resolve_data_root(root: str | Path | None, name: str, howto: str,
                      error: type[Exception] = ValueError, must_exist: bool = True) -> Path:
    """``root`` or ``$UMM_DATA_ROOT`` as a folder; raise ``error`` saying what to do.

    ``howto`` (where to get the data and how to lay it out, or what a build writes there) ends
    both messages. A builder passes ``must_exist=False``: it creates the folder.
    """
    if root is None:
        root = os.environ.get(ENV_ROOT) or None
    if root is None:
        raise error(f"{name}: no data folder given. Pass root='/path/to/{name}' (load_dataset("
                    f"'{name}', root=...)) or set {ENV_ROOT}=/path/to/{name}. {howto}")
    path = Path(root).expanduser()
    if must_exist and not path.is_dir():
        raise error(f"{name}: data folder {path} does not exist. {howto}")
    return path


__all__ = ["ENV_ROOT", "resolve_data_root"]
