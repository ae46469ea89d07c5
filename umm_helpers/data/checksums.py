"""sha256 sums of shipped data files, verified on every load (notebook 00)."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from umm_helpers.atomic import write_text

SUMS_FILE = "SHA256SUMS"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class DataIntegrityError(RuntimeError):
    """A data file is missing or its sha256 does not match ``SHA256SUMS``."""


def hash_file(h: Any, path: Path) -> None:
    """Feed the bytes of ``path`` to the hash object ``h`` in 1 MB blocks."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    hash_file(h, path)
    return h.hexdigest()


def read_sums(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` from ``root/SHA256SUMS`` (``sha256sum`` format)."""
    sums_path = Path(root) / SUMS_FILE
    if not sums_path.exists():
        raise DataIntegrityError(f"{sums_path} is missing; it lists the sha256 of every data "
                                 "file. Restore it with `git checkout data/` or rebuild the "
                                 "data with `make data`.")
    sums = {}
    try:
        lines = sums_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataIntegrityError(f"{sums_path} is unreadable ({exc}); restore it with "
                                 "`git checkout data/` or rebuild the data.") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=1)
        if len(fields) != 2 or not _HEX64.fullmatch(fields[0]) or not fields[1].strip():
            raise DataIntegrityError(
                f"{sums_path} line {number} is malformed ({line.strip()[:80]!r}); every line "
                "must be '<64 hex digits of sha256>  <file path>', as `sha256sum` writes. "
                "Restore the file with `git checkout data/` or rebuild the data.")
        sums[fields[1].strip().lstrip("*")] = fields[0].lower()
    return sums


def verify(root: Path, names: Iterable[str], rebuild: str) -> dict[str, str]:
    """Check each file against ``SHA256SUMS``; raise naming file, hashes and the fix.

    Returns the sums that were checked against, so callers need not read the file again.
    """
    root = Path(root)
    sums = read_sums(root)
    for name in names:
        path = root / name
        if name not in sums:
            raise DataIntegrityError(f"{path}: no entry in {root / SUMS_FILE}. Rebuild the "
                                     f"data with `{rebuild}`.")
        if not path.exists():
            raise DataIntegrityError(f"{path} is missing (expected sha256 {sums[name]}). "
                                     f"Restore it with `git checkout data/` or rebuild it with "
                                     f"`{rebuild}`.")
        actual = sha256_file(path)
        if actual != sums[name]:
            raise DataIntegrityError(f"{path} is corrupt or changed: expected sha256 "
                                     f"{sums[name]}, actual {actual}. Restore it with "
                                     f"`git checkout data/` or rebuild it with `{rebuild}`.")
    return sums


def update_sums(root: Path, names: Iterable[str]) -> None:
    """Recompute the sums of ``names`` and rewrite ``SHA256SUMS`` atomically (others kept)."""
    root = Path(root)
    try:
        sums = read_sums(root)
    except DataIntegrityError:
        sums = {}
    for name in names:
        sums[name] = sha256_file(root / name)
    write_text(root / SUMS_FILE, "".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
