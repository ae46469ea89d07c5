"""Digit-Halves: two modalities from the *same instance*, sharing a nuisance (notebook 08).

Each of scikit-learn's 1,797 handwritten 8x8 digits is cut into its left and right halves
(``[1, 8, 4]`` each, values in [0, 1]). Both halves of one sheet carry the same stain: a
per-sheet random field ``stain * z`` (``z ~ N(0, 1)`` per pixel, one field per sheet, added at
the same position of each half), plus a little independent sensor noise per half. So the two
modalities are dependent given the label twice over: the same writer's hand, and the same
stain. One half alone has to see the digit through the stain; both halves together can cancel
it (``left - right`` removes ``z`` exactly), which summing uni-modal logits (``ume``) cannot
do. This is regime (ii) of notebook 08, on real handwriting; AV-Digits, paired by label, is
regime (i).

Built deterministically and offline (``umm data build digit-halves``), stored as Parquet,
checked against ``data/SHA256SUMS`` on every load. Datasheet: ``data/README.md``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from umm_helpers.data.av_digits import stratified_split
from umm_helpers.data.checksums import update_sums, verify
from umm_helpers.data.dataset import MultiModalDataset, Split
from umm_helpers.settings import data_dir

NAME = "digit-halves"
SUBDIR = "digit-halves"
SPLITS = ("train", "validation", "test")
FILES = tuple(f"{SUBDIR}/{s}.parquet" for s in SPLITS)
REBUILD = "umm data build digit-halves"
MODALITIES = ("left", "right")
CLASSES = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class BuildConfig:
    """How Digit-Halves is made: stain and noise scales (pixel units), split, seed."""

    stain: float = 0.5
    noise: float = 0.1
    fractions: tuple[float, float, float] = (0.6, 0.15, 0.25)
    seed: int = 20231010


def build_arrays(cfg: BuildConfig = BuildConfig()) -> dict[str, dict[str, np.ndarray]]:
    """``{split: {"left", "right" float32 [N, 8, 4], "label", "digit_index"}}``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float64) / 16.0
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(cfg.seed)
    n = len(labels)
    stain = cfg.stain * rng.standard_normal((n, 8, 4))  # one field per sheet, in both halves
    halves = {
        "left": images[:, :, :4] + stain + cfg.noise * rng.standard_normal((n, 8, 4)),
        "right": images[:, :, 4:] + stain + cfg.noise * rng.standard_normal((n, 8, 4)),
    }
    parts = stratified_split(labels, cfg.fractions, rng)
    return {s: {**{m: halves[m][idx].astype(np.float32) for m in MODALITIES},
                "label": labels[idx], "digit_index": idx}
            for s, idx in zip(SPLITS, parts)}


def _to_table(arrays: dict[str, np.ndarray], cfg: BuildConfig) -> Any:
    import pyarrow as pa

    cols = {"label": pa.array(arrays["label"], pa.int64()),
            "digit_index": pa.array(arrays["digit_index"], pa.int64())}
    for m in MODALITIES:
        cols[m] = pa.FixedSizeListArray.from_arrays(pa.array(arrays[m].ravel(), pa.float32()),
                                                    32)
    meta = {"build_config": json.dumps(asdict(cfg)), "rows": str(len(arrays["label"]))}
    return pa.table(cols).replace_schema_metadata(meta)


def build(out_dir: str | Path | None = None, cfg: BuildConfig = BuildConfig()) -> list[Path]:
    """Build Digit-Halves into ``out_dir`` (default ``data_dir()``) and update ``SHA256SUMS``.

    Each file goes to a temp name and is renamed, so an interrupted build keeps the old data.
    """
    import pyarrow.parquet as pq

    from umm_helpers.atomic import atomic_path

    root = Path(out_dir) if out_dir is not None else data_dir()
    arrays = build_arrays(cfg)
    written = []
    for s, rel in zip(SPLITS, FILES):
        with atomic_path(root / rel) as tmp:
            pq.write_table(_to_table(arrays[s], cfg), tmp, compression="zstd")
        written.append(root / rel)
    update_sums(root, FILES)
    return written


def read_split(path: Path) -> dict[str, np.ndarray]:
    """One Parquet split as numpy arrays (halves ``[N, 8, 4]`` float32)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    n = table.num_rows
    out = {k: table.column(k).to_numpy().astype(np.int64) for k in ("label", "digit_index")}
    for m in MODALITIES:
        flat = table.column(m).combine_chunks().flatten().to_numpy()
        out[m] = flat.astype(np.float32).reshape(n, 8, 4)
    return out


def load(root: str | Path | None = None, verify_sums: bool = True) -> MultiModalDataset:
    """Load Digit-Halves: ``left`` and ``right`` ``[N, 1, 8, 4]``; splits 1,078 / 269 / 450.

    Every file is checked against ``data/SHA256SUMS`` first (``verify_sums=False`` skips it).
    """
    root = Path(root) if root is not None else data_dir()
    sums = verify(root, FILES, REBUILD) if verify_sums else {}
    splits = []
    for s, rel in zip(SPLITS, FILES):
        a = read_split(root / rel)
        inputs = {m: torch.from_numpy(a[m][:, None]) for m in MODALITIES}
        splits.append(Split(inputs, torch.from_numpy(a["label"]), list(CLASSES), s,
                            {"digit_index": a["digit_index"]}))
    checksum = "-".join(sums.get(f, "")[:8] for f in FILES) if sums else ""
    train, validation, test = splits
    return MultiModalDataset(train, validation, test, name=NAME, checksum=checksum,
                             info={"root": str(root), "build_config": asdict(BuildConfig())})
