"""Seeds, devices, paths and environment switches (taught in notebook 00).

Nothing here runs on import: every function is called explicitly.
"""
from __future__ import annotations

import hashlib
import os
import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

_REPO_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
DEVICE_TYPES = ("cpu", "cuda", "mps")
# A folder name made from a data set, method or modality name is at most this long.
MAX_FOLDER_NAME = 64
_PLAIN_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


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
        return parse_device(choice, "get_device(prefer=...)" if prefer else "UMM_DEVICE")
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def parse_device(device: str | torch.device, what: str = "device") -> torch.device:
    """``device`` as a ``torch.device`` of a known type, or a ``ValueError`` naming ``what``."""
    if isinstance(device, torch.device):
        parsed = device
    elif isinstance(device, str):
        try:
            parsed = torch.device(device)
        except (RuntimeError, ValueError):
            parsed = None
    else:
        raise TypeError(f"{what} = {device!r} is invalid: expected a device name such as "
                        "'cpu', 'cuda' or 'mps'.")
    if parsed is None or parsed.type not in DEVICE_TYPES:
        raise ValueError(f"{what} = {device!r} is not a device this package trains on: use "
                         f"one of {list(DEVICE_TYPES)} (optionally with an index, 'cuda:1'), "
                         "or leave it unset for the best available device.")
    return parsed


def check_device_available(device: torch.device, what: str = "device") -> torch.device:
    """``device`` when this machine has it; else a ``ValueError`` naming ``what`` and the fix."""
    fix = f"set {what} to 'cpu' (or leave it unset for the best available device)."
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{what} = {str(device)!r} but no CUDA GPU is available here; {fix}")
        if device.index is not None and device.index >= count:
            raise ValueError(f"{what} = {str(device)!r} but this machine has {count} CUDA "
                             f"device(s), numbered 0..{count - 1}; {fix}")
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{what} = {str(device)!r} but Apple's MPS is not available "
                             f"here; {fix}")
    return device


def folder_name(name: str, what: str = "name") -> str:
    """The one folder name a data set, method or modality name is stored under.

    Names are data, never paths: ``unimodal:image`` becomes ``unimodal_image``. A name holding
    anything but letters, digits and ``._+-`` (``/``, ``..``, an absolute path, spaces), or not
    starting with a letter or digit, has every character but letters, digits and ``_+-``
    replaced by ``_`` and gets ``-`` plus 8 hex digits of its sha256, so that different names
    keep different folders and no name leaves the folder it is put in.
    At most :data:`MAX_FOLDER_NAME` characters.
    """
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {type(name).__name__} {name!r:.60}.")
    if not name.strip():
        raise ValueError(f"{what} is empty: give it a name such as 'custom'.")
    plain = name.replace(":", "_")
    if _PLAIN_FOLDER.fullmatch(plain) and len(plain) <= MAX_FOLDER_NAME:
        return plain
    cleaned = re.sub(r"[^A-Za-z0-9_+-]", "_", name)[:MAX_FOLDER_NAME - 9]
    if not cleaned[:1].isalnum():
        cleaned = "_" + cleaned[:MAX_FOLDER_NAME - 10]
    return f"{cleaned}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def name_folder(root: str | os.PathLike, *names: str, what: str = "name") -> Path:
    """``root / folder_name(names[0]) / ...``: a folder for names that cannot leave ``root``."""
    path = Path(root)
    for name in names:
        path = path / folder_name(name, what)
    return path


def inside(root: str | os.PathLike, relative: str | os.PathLike, what: str = "path"
           ) -> Path:
    """``root / relative`` when ``relative`` is a relative path that stays inside ``root``.

    An absolute path, or one whose ``..`` parts climb out of ``root``, is a ``ValueError``
    naming ``what``: a file named by a data set's rows is read from the data set's folder only.
    """
    rel = os.fspath(relative)
    if not isinstance(rel, str) or not rel:
        raise ValueError(f"{what}: an empty file name; name a file inside {root}.")
    if Path(rel).is_absolute() or os.path.isabs(rel) or Path(rel).drive or \
            os.path.normpath(rel).split(os.sep)[0] == "..":
        raise ValueError(f"{what}: {rel!r} is not a relative path inside {root} (it is absolute "
                         "or climbs out with '..'); name files relative to the data set's "
                         "folder, without '..'.")
    return Path(root) / rel


def is_inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """True when ``path`` lies in ``root`` (lexically, after normalising ``..``)."""
    p = os.path.normpath(os.path.abspath(path))
    r = os.path.normpath(os.path.abspath(root))
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


def repo_root() -> Path:
    """The checkout this package was installed from (editable install)."""
    return _REPO_ROOT


def data_dir() -> Path:
    """Folder of the embedded data sets: ``$UMM_DATA_DIR`` or ``<repo>/data``."""
    return Path(os.environ.get("UMM_DATA_DIR", _REPO_ROOT / "data"))


def runs_dir() -> Path:
    """Folder of the run cache: ``$UMM_RUNS_DIR`` or ``<repo>/runs``."""
    return Path(os.environ.get("UMM_RUNS_DIR", _REPO_ROOT / "runs"))


def seed_offset() -> int:
    """``$UMM_SEED_OFFSET`` (default 0): added to every training seed the course uses.

    Rerunning the course with an offset draws fresh training randomness (initial weights, batch
    order, MMA masks) on the same data, splits and evaluation masks: the closest one machine gets
    to another machine's numbers (notebook 00).
    """
    text = os.environ.get("UMM_SEED_OFFSET", "").strip()
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0 or value > 2**31:
        raise ValueError(f"UMM_SEED_OFFSET={text!r} is invalid: expected a whole number from 0 "
                         f"to {2**31}, e.g. UMM_SEED_OFFSET=100 (unset it for the default seeds).")
    return value


def course_seeds(n: int, start: int = 0) -> list[int]:
    """The course's training seeds ``start, ..., start + n - 1``, shifted by :func:`seed_offset`.

    Notebooks take every training seed from here (``SEEDS = umm.course_seeds(3)``), so
    ``UMM_SEED_OFFSET=100 make course`` reruns the whole course on fresh randomness.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"course_seeds(n={n!r}): n must be a positive whole number of seeds.")
    offset = seed_offset()
    return [offset + start + k for k in range(n)]


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
