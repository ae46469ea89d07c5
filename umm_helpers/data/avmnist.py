"""AV-MNIST, the real benchmark: loaders for the MultiBench format and for the SMIL variant.

Two different data sets share the name AV-MNIST; this module loads both and says which is which.

``avmnist`` (MultiBench / MFAS format, 70,000 pairs). A folder holding::

    image/train_data.npy   (N_train, 784)       MNIST digits (28 x 28, flattened), 0..255
    image/test_data.npy    (N_test, 784)
    audio/train_data.npy   (N_train, 112, 112)  spectrograms of spoken digits (FSDD), 0..255
    audio/test_data.npy    (N_test, 112, 112)
    train_labels.npy       (N_train,)           integer labels 0..9
    test_labels.npy        (N_test,)

Pixel and spectrogram arrays may be stored as uint8, float32 or float64 (values 0..255; a value
outside 0..255, or a float file whose values all lie in [0, 1] with fractions, as if already
normalised, is an error naming the file); both modalities are divided by 255 and get a channel
axis: image ``[N, 1, 28, 28]``, audio ``[N, 1, 112, 112]``. **Split rule**: the last
``round(N_train * 5000 / 60000)`` train rows (at least one) are the validation split and the
rows before them the training split; the test rows are the test split. For the published files
(60,000 train rows) that is the usual rule: first 55,000 rows = train, last 5,000 = validation,
10,000 test rows = test. The same fraction (1/12) applies to smaller files, such as the test
fixtures.

``avmnist-smil`` (the SMIL variant: 1,050 train / 450 test pairs, MNIST 28 x 28 plus 20 x 20
MFCCs of FSDD recordings). A folder written by :func:`umm_helpers.data.avmnist_build.build_smil`::

    image/{train,validation,test}_data.npy  (N, 28, 28) uint8
    audio/{train,validation,test}_data.npy  (N, 20, 20) float32 MFCCs, standardised per
                                            coefficient with the training split's mean and std
    {train,validation,test}_labels.npy      (N,) integer labels 0..9

SMIL itself has no validation split; the builder adds 150 extra pairs (15 per class), disjoint
from both, so train and test keep SMIL's sizes. Images are divided by 255; MFCCs are used as
stored. The "severely missing" setting of SMIL keeps audio for only 15 (or 21) of the 105
training pairs per class: pass ``TrainConfig(keep=severe_keep(15))`` (that is
``keep={"audio": 15 / 105}``) and :func:`umm_helpers.core.missing.training_presence` keeps audio for
exactly 150 (or 210) of the 1,050 training pairs, a seeded choice over the whole split (so about,
not exactly, 15 per class).

Memory: every array is opened memory-mapped (``np.load(mmap_mode="r")``) and converted in
chunks of about 64 MB into a preallocated float32 tensor, so loading never holds two copies of
the data (peak RAM is the float32 result plus one chunk; about 3.2 GB for the full MultiBench
files). Training and validation are views of one tensor, not copies. Every file is checked
first (present, readable, shape, dtype, labels 0..9, matching row counts), with an error that
names the file and what was expected. The data set checksum (for the run cache) is a sha256 of
the raw bytes, computed during the same pass.

The root folder is ``root=...`` or, when not given, the environment variable ``UMM_DATA_ROOT``
(e.g. ``UMM_DATASET=avmnist UMM_DATA_ROOT=/data/avmnist make course``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from umm_helpers.data.dataset import MultiModalDataset, Split
from umm_helpers.data.roots import resolve_data_root

NAME = "avmnist"
SMIL_NAME = "avmnist-smil"
CLASSES = [str(d) for d in range(10)]
FULL_TRAIN_ROWS = 60_000
FULL_VALIDATION_ROWS = 5_000
SMIL_TRAIN_PER_CLASS = 105
IMAGE_SHAPE = (784,)
AUDIO_SHAPE = (112, 112)
SMIL_IMAGE_SHAPE = (28, 28)
SMIL_AUDIO_SHAPE = (20, 20)
PIXEL_DTYPES = ("uint8", "float32", "float64")
CHUNK_BYTES = 1 << 26
HOWTO = {
    NAME: "Build it with `umm data build avmnist --root DIR --download` (see "
          "umm_helpers.data.avmnist_build) or unpack the MultiBench AV-MNIST archive into DIR.",
    SMIL_NAME: "Build it with `umm data build avmnist-smil --root DIR --download` (see "
               "umm_helpers.data.avmnist_build.build_smil).",
}


class AVMNISTFormatError(ValueError):
    """An AV-MNIST file is missing, unreadable or not what the format expects."""


@dataclass(frozen=True)
class ArraySpec:
    """What one ``.npy`` file must hold: ``(N, *sample_shape)`` of one of ``dtypes``."""

    rel: str
    sample_shape: tuple[int, ...]
    dtypes: tuple[str, ...]
    what: str

    def describe(self) -> str:
        shape = "(N" + ("".join(f", {s}" for s in self.sample_shape) or ",") + ")"
        return f"{self.what}: an array of shape {shape} with dtype {' or '.join(self.dtypes)}"


def multibench_specs(split: str) -> tuple[ArraySpec, ArraySpec, ArraySpec]:
    """The image, audio and label files of ``split`` ('train' or 'test') in MultiBench format."""
    return (ArraySpec(f"image/{split}_data.npy", IMAGE_SHAPE, PIXEL_DTYPES,
                      "MNIST images flattened to 784 pixels, values 0..255"),
            ArraySpec(f"audio/{split}_data.npy", AUDIO_SHAPE, PIXEL_DTYPES,
                      "112 x 112 spectrograms, values 0..255"),
            ArraySpec(f"{split}_labels.npy", (), ("integer",), "digit labels 0..9"))


def smil_specs(split: str) -> tuple[ArraySpec, ArraySpec, ArraySpec]:
    """The image, audio and label files of ``split`` in the SMIL format written by the builder."""
    return (ArraySpec(f"image/{split}_data.npy", SMIL_IMAGE_SHAPE, ("uint8",),
                      "MNIST images 28 x 28, values 0..255"),
            ArraySpec(f"audio/{split}_data.npy", SMIL_AUDIO_SHAPE, ("float32",),
                      "20 x 20 MFCCs (20 coefficients x 20 frames)"),
            ArraySpec(f"{split}_labels.npy", (), ("integer",), "digit labels 0..9"))


MULTIBENCH_FILES = tuple(s.rel for split in ("train", "test") for s in multibench_specs(split))
SMIL_SPLITS = ("train", "validation", "test")
SMIL_FILES = tuple(s.rel for split in SMIL_SPLITS for s in smil_specs(split))


def resolve_root(root: str | Path | None, name: str = NAME) -> Path:
    """``root`` or ``$UMM_DATA_ROOT``; raise with what to do when neither is given."""
    return resolve_data_root(root, name, HOWTO[name], AVMNISTFormatError)


def validation_rows(n_train: int) -> int:
    """Rows of the train file used for validation: 5,000 of 60,000, the same fraction else.

    ``round(n_train * 5000 / 60000)`` (halves round up), at least 1.
    """
    return max(1, (n_train * FULL_VALIDATION_ROWS * 2 + FULL_TRAIN_ROWS) // (2 * FULL_TRAIN_ROWS))


def open_array(root: Path, spec: ArraySpec, name: str = NAME) -> np.ndarray:
    """Open one file memory-mapped and check it against ``spec`` (raises naming the file)."""
    path = root / spec.rel
    expected = f"expected {spec.describe()}."
    if not path.is_file():
        raise AVMNISTFormatError(f"{path} is missing; {expected} {HOWTO[name]}")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # a truncated or foreign file: say which one
        raise AVMNISTFormatError(f"{path} is not a readable .npy array ({exc}); {expected}") \
            from exc
    if arr.ndim != 1 + len(spec.sample_shape) or tuple(arr.shape[1:]) != spec.sample_shape:
        raise AVMNISTFormatError(f"{path} has shape {tuple(arr.shape)}; {expected}")
    if arr.shape[0] == 0:
        raise AVMNISTFormatError(f"{path} has no rows; {expected}")
    # labels: any integer dtype, or floats holding whole numbers (checked in check_labels)
    kind_ok = ((np.issubdtype(arr.dtype, np.integer) and arr.dtype != np.bool_)
               or np.issubdtype(arr.dtype, np.floating)
               if spec.dtypes == ("integer",) else arr.dtype.name in spec.dtypes)
    if not kind_ok:
        raise AVMNISTFormatError(f"{path} has dtype {arr.dtype}; {expected}")
    return arr


def check_labels(root: Path, spec: ArraySpec, arr: np.ndarray) -> np.ndarray:
    """Labels as int64, raising (naming the file) unless every value is a whole number in 0..9."""
    raw = np.asarray(arr)
    if np.issubdtype(raw.dtype, np.floating) and not bool(np.all(raw == np.round(raw))):
        raise AVMNISTFormatError(f"{root / spec.rel}: float labels must be whole numbers 0..9; "
                                 f"expected {spec.describe()}.")
    labels = raw.astype(np.int64)
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi > 9:
        bad = int(np.count_nonzero((labels < 0) | (labels > 9)))
        raise AVMNISTFormatError(
            f"{root / spec.rel}: labels must lie in 0..9, found values from {lo} to {hi} "
            f"({bad} rows out of range); expected {spec.describe()}.")
    return labels


def _check_counts(root: Path, specs: tuple[ArraySpec, ...], arrays: list[np.ndarray],
                  split: str) -> int:
    counts = [int(a.shape[0]) for a in arrays]
    if len(set(counts)) != 1:
        listing = ", ".join(f"{root / s.rel}: {c} rows" for s, c in zip(specs, counts))
        raise AVMNISTFormatError(
            f"the {split} files disagree on the number of samples ({listing}); the image, audio "
            "and label files of a split need exactly one row per sample, in the same order.")
    return counts[0]


def open_split(root: Path, specs: tuple[ArraySpec, ArraySpec, ArraySpec], split: str,
               name: str = NAME) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open and check the (image, audio, labels) files of one split."""
    image, audio, raw_labels = (open_array(root, s, name) for s in specs)
    labels = check_labels(root, specs[2], raw_labels)
    _check_counts(root, specs, [image, audio, labels], split)
    return image, audio, labels


def check_files(root: str | Path | None = None, name: str = NAME) -> dict[str, int]:
    """Check every file of ``name`` ('avmnist' or 'avmnist-smil') without loading the data.

    Returns ``{split file name: rows}``; raises :class:`AVMNISTFormatError` on the first problem.
    """
    path = resolve_root(root, name)
    splits = ("train", "test") if name == NAME else SMIL_SPLITS
    specs = multibench_specs if name == NAME else smil_specs
    return {s: int(open_split(path, specs(s), s, name)[2].shape[0]) for s in splits}


def to_float_tensor(arr: np.ndarray, path: Path, scale: float | None, hasher: Any,
                    sample_shape: tuple[int, ...]) -> Tensor:
    """Convert a (memory-mapped) array chunk by chunk into a new ``[N, 1, *shape]`` float32 tensor.

    Each chunk is fed to ``hasher`` as raw bytes, divided by ``scale`` when given, and checked
    for NaN / inf when the source is floating point (uint8 cannot hold them). With ``scale``
    (pixel-like data, 0..``scale``), a value outside ``[0, scale]`` is an error naming its row,
    and so is a float file whose values all lie in [0, 1] and are not all whole numbers (it
    looks normalised already; dividing again would shrink it ``scale`` times).
    """
    n = int(arr.shape[0])
    out = torch.empty((n, 1, *sample_shape), dtype=torch.float32)
    flat = out.view(n, -1)
    row_bytes = max(1, int(np.prod(arr.shape[1:])) * 4)
    step = max(1, CHUNK_BYTES // row_bytes)
    hasher.update(f"{path.name}|{arr.dtype.str}|{tuple(arr.shape)}".encode())
    floating = np.issubdtype(arr.dtype, np.floating)
    top, fractional = -np.inf, False
    for start in range(0, n, step):
        block = np.ascontiguousarray(arr[start:start + step])
        hasher.update(block.data.cast("B"))
        values = torch.from_numpy(block.astype(np.float32).reshape(len(block), -1))
        if floating:
            bad = ~torch.isfinite(values)
            if bool(bad.any()):
                row = start + int(bad.any(dim=1).nonzero()[0, 0])
                raise AVMNISTFormatError(f"{path} contains {int(bad.sum())} NaN or inf values "
                                         f"(first in row {row}); expected finite values.")
        if scale is not None and floating and len(block):
            out_of_range = (values < 0) | (values > scale)
            if bool(out_of_range.any()):
                row = start + int(out_of_range.any(dim=1).nonzero()[0, 0])
                raise AVMNISTFormatError(
                    f"{path} holds values from {float(values.min()):g} to "
                    f"{float(values.max()):g} (first out of range in row {row}); expected "
                    f"values 0..{scale:g}. Rebuild the file with "
                    "`umm data build avmnist --root DIR`.")
            top = max(top, float(values.max()))
            fractional = fractional or bool((values != values.round()).any())
        if scale is not None:
            values.div_(scale)
        flat[start:start + len(block)] = values
    if scale is not None and floating and top <= 1.0 and fractional:
        raise AVMNISTFormatError(
            f"{path} holds values in [0, 1] only, with fractions: it looks normalised already, "
            f"and the loader divides by {scale:g}. Store the values 0..{scale:g} (multiply the "
            "array by 255 and save it again) or rebuild the file with "
            "`umm data build avmnist --root DIR`.")
    return out


def _split(image: Tensor, audio: Tensor, labels: np.ndarray, name: str, rows: np.ndarray) -> Split:
    return Split({"audio": audio, "image": image}, torch.from_numpy(labels), list(CLASSES), name,
                 {"source_row": rows})


def load(root: str | Path | None = None) -> MultiModalDataset:
    """Load AV-MNIST in the MultiBench format (see the module docstring for files and split rule).

    image ``[N, 1, 28, 28]`` and audio ``[N, 1, 112, 112]``, both divided by 255; classes
    ``"0"`` .. ``"9"``; ``split.meta["source_row"]`` is each sample's row in its source file.
    """
    path = resolve_root(root, NAME)
    opened = {s: open_split(path, multibench_specs(s), s) for s in ("train", "test")}
    hasher = hashlib.sha256()
    tensors = {}
    for s, (image, audio, labels) in opened.items():
        img_spec, aud_spec, _ = multibench_specs(s)
        img = to_float_tensor(image, path / img_spec.rel, 255.0, hasher, (784,)).view(-1, 1, 28, 28)
        aud = to_float_tensor(audio, path / aud_spec.rel, 255.0, hasher, AUDIO_SHAPE)
        hasher.update(labels.tobytes())
        tensors[s] = (img, aud, labels)
    img, aud, labels = tensors["train"]
    n_train = len(labels)
    if n_train < 2:
        raise AVMNISTFormatError(f"{path / 'train_labels.npy'} has {n_train} row; the train "
                                 "files need at least 2 rows (training + validation).")
    n_fit = n_train - validation_rows(n_train)
    rows = np.arange(n_train, dtype=np.int64)
    train = _split(img[:n_fit], aud[:n_fit], labels[:n_fit], "train", rows[:n_fit])
    validation = _split(img[n_fit:], aud[n_fit:], labels[n_fit:], "validation", rows[n_fit:])
    t_img, t_aud, t_labels = tensors["test"]
    test = _split(t_img, t_aud, t_labels, "test", np.arange(len(t_labels), dtype=np.int64))
    return MultiModalDataset(train, validation, test, name=NAME,
                             checksum=hasher.hexdigest()[:16],
                             info={"root": str(path), "format": "multibench",
                                   "split_rule": f"train rows [0, {n_fit}) = train, "
                                                 f"[{n_fit}, {n_train}) = validation"})


def load_smil(root: str | Path | None = None) -> MultiModalDataset:
    """Load the SMIL variant of AV-MNIST written by ``avmnist_build.build_smil``.

    image ``[N, 1, 28, 28]`` (divided by 255) and audio ``[N, 1, 20, 20]`` (standardised MFCCs,
    as stored); 1,050 / 150 / 450 pairs at the default sizes. See :func:`severe_keep`.
    """
    path = resolve_root(root, SMIL_NAME)
    opened = {s: open_split(path, smil_specs(s), s, SMIL_NAME) for s in SMIL_SPLITS}
    hasher = hashlib.sha256()
    splits = []
    for s, (image, audio, labels) in opened.items():
        img_spec, aud_spec, _ = smil_specs(s)
        img = to_float_tensor(image, path / img_spec.rel, 255.0, hasher, SMIL_IMAGE_SHAPE)
        aud = to_float_tensor(audio, path / aud_spec.rel, None, hasher, SMIL_AUDIO_SHAPE)
        hasher.update(labels.tobytes())
        splits.append(_split(img, aud, labels, s, np.arange(len(labels), dtype=np.int64)))
    train, validation, test = splits
    return MultiModalDataset(train, validation, test, name=SMIL_NAME,
                             checksum=hasher.hexdigest()[:16],
                             info={"root": str(path), "format": "smil"})


def severe_keep(audio_per_class: int = 15,
                train_per_class: int = SMIL_TRAIN_PER_CLASS) -> dict[str, float]:
    """``TrainConfig.keep`` for SMIL's "severely missing" setting: audio kept for
    ``audio_per_class`` of ``train_per_class`` training pairs per class (15 or 21 of 105).

    ``training_presence`` then keeps audio for exactly ``round(keep * N)`` training pairs
    (150 or 210 of 1,050), chosen by a seeded permutation of the whole training split.
    """
    if not 0 <= audio_per_class <= train_per_class:
        raise ValueError(f"audio_per_class must lie in [0, {train_per_class}], "
                         f"got {audio_per_class}.")
    return {"audio": audio_per_class / train_per_class}
