"""Vision-language data in general: image + text samples from a Hugging Face ``datasets`` table.

Shared by :mod:`umm_helpers.data.food101` (UPMC Food101, single-label, accuracy) and
:mod:`umm_helpers.data.mmimdb` (MM-IMDB, multi-label, macro-F1); taught in the README section
"Vision-language data". Nothing is ever downloaded by these modules.

Both data sets have two modalities:
* ``image``: decoded with PIL, converted to RGB, resized so that the shorter side is
  ``image_size`` (bilinear), centre-cropped to ``image_size x image_size`` and stored as float32
  in [0, 1], shape ``[N, 3, S, S]`` (memory: ``N * 3 * S * S * 4`` bytes; about 4.4 GB for all
  of Food101 at ``S = 64``);
* ``text``: the raw strings are kept in ``split.meta["text"]`` and the model reads
  ``inputs["text"] = HashingFeaturizer(dim=text_dim)(texts)`` (see :mod:`umm_helpers.core.text`;
  :func:`umm_helpers.methods.feature_cache.cache_features` with a ``SentenceEncoder`` swaps in
  frozen sentence embeddings, and with an image backbone such as ``TorchvisionEncoder`` frozen
  image features).

Real samples are never filled in: an empty text, a missing image file or an unreadable image
raises an error naming the file (or row) and the fix. Missing modalities are simulated by the
course's presence masks (:mod:`umm_helpers.core.missing`), never stored in the data.

The folder is ``root=...`` or, when not given, ``$UMM_DATA_ROOT`` (the data set's own folder,
e.g. ``UMM_DATA_ROOT=/data/upmc_food101``). :func:`from_hf` turns a ``datasets.DatasetDict``
(``image`` = PIL image or file path, ``text``, ``label``) into a :class:`MultiModalDataset`,
including a copy you downloaded from the Hugging Face hub yourself. ``limit`` keeps at most
``limit`` samples of each split, for quick tries; with single-label data it takes rows in
class-interleaved order (the first row of every class, then the second, ...) so that a small try
still sees every class. Everything is deterministic: same files and arguments, identical tensors
and ``checksum``.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from umm_helpers.data.dataset import MultiModalDataset, Split, tensor_checksum
from umm_helpers.data.roots import resolve_data_root
from umm_helpers.data.text_features import HashingFeaturizer
from umm_helpers.settings import progress as progress_bar

if TYPE_CHECKING:  # pragma: no cover
    import datasets

FOOD101 = "food101"
MMIMDB = "mmimdb"
DEFAULT_IMAGE_SIZE = 64
DEFAULT_TEXT_DIM = 512
SPLIT_ALIASES = {"train": "train", "validation": "validation", "valid": "validation",
                 "val": "validation", "dev": "validation", "test": "test"}
HOWTO = {
    FOOD101: ('UPMC Food-101 is distributed on Kaggle as "UPMC Food-101": download it yourself '
              "and unpack it so that ROOT/images/train/<class>/<file>.jpg and "
              "ROOT/texts/train_titles.csv exist."),
    MMIMDB: ("Download mmimdb.tar.gz from the MM-IMDb authors' page (linked from "
             "https://github.com/johnarevalo/gmu-mmimdb) and unpack it so that ROOT/split.json "
             "and ROOT/dataset/<id>.jpeg + ROOT/dataset/<id>.json exist."),
}
MARKERS = {FOOD101: "texts/train_titles.csv", MMIMDB: "split.json"}


class VisionLanguageFormatError(ValueError):
    """A Food101 / MM-IMDB file is missing, unreadable or not in the expected format."""


# --- small shared helpers -----------------------------------------------------------------------

def check_int(name: str, value: Any, low: int, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} = {value!r}: expected an integer >= {low}"
                         f"{' or None' if allow_none else ''}.")


def check_fraction(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
        raise ValueError(f"{name} = {value!r}: expected a number strictly between 0 and 1.")


def nested_hint(path: Path, marker: str) -> str:
    """`` Found <marker> under X: pass root='X'.`` when the data sits one folder deeper."""
    if not path.is_dir():
        return ""
    depth = len(Path(marker).parts)
    found = sorted(p.parents[depth - 1] for p in path.glob(f"*/{marker}"))
    return f" Found {marker} under {found[0]}: pass root='{found[0]}'." if found else ""


def resolve_root(root: str | Path | None, name: str) -> Path:
    """``root`` or ``$UMM_DATA_ROOT`` as an existing folder; raise saying what to do otherwise."""
    return resolve_data_root(root, name, HOWTO[name], VisionLanguageFormatError)


def _resize_crop(img: Any, size: int) -> np.ndarray:
    """RGB, shorter side resized to ``size``, centre crop: float32 ``[3, size, size]`` in [0, 1]."""
    from PIL import Image

    img = img.convert("RGB")
    w, h = img.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    if new != (w, h):
        img = img.resize(new, Image.Resampling.BILINEAR)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    img = img.crop((left, top, left + size, top + size))
    arr = np.asarray(img, dtype=np.uint8)
    return arr.transpose(2, 0, 1).astype(np.float32) / 255.0


def _open_image(value: Any, image_root: Path | None) -> tuple[Any, str | None, bool]:
    """``(PIL image, path or None, opened here)`` of a path, PIL image, HF dict or array."""
    from PIL import Image

    if isinstance(value, dict):  # datasets.Image(decode=False): {"bytes": ..., "path": ...}
        if value.get("bytes"):
            import io

            return Image.open(io.BytesIO(value["bytes"])), value.get("path"), True
        value = value.get("path")
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_absolute() and image_root is not None:
            path = image_root / path
        if not path.is_file():
            raise FileNotFoundError(str(path))
        return Image.open(path), str(path), True
    if isinstance(value, Image.Image):
        return value, getattr(value, "filename", None) or None, False
    if value is None:
        raise FileNotFoundError("None (no image)")
    arr = np.asarray(value)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr), None, True


def decode_image(value: Any, size: int, where: str, fix: str,
                 image_root: Path | None = None) -> np.ndarray:
    """One image as float32 ``[3, size, size]`` in [0, 1]; raise naming the file and ``fix``."""
    try:
        img, path, opened = _open_image(value, image_root)
    except FileNotFoundError as exc:
        raise VisionLanguageFormatError(f"{where}: image file {exc} is missing. {fix}") from exc
    except Exception as exc:  # not an image at all
        raise VisionLanguageFormatError(f"{where}: cannot read the image ({exc}). {fix}") from exc
    try:
        img.load()
        return _resize_crop(img, size)
    except Exception as exc:  # truncated file, odd mode
        named = f" {path}" if path and path not in where else ""
        raise VisionLanguageFormatError(f"{where}: cannot read the image{named} ({exc}). "
                                        f"{fix}") from exc
    finally:
        if opened:
            img.close()


def _decode_all(values: Sequence[Any] | Iterable[Any], n: int, size: int,
                wheres: Sequence[str], fix: str, desc: str,
                image_root: Path | None = None) -> Tensor:
    out = torch.empty((n, 3, size, size), dtype=torch.float32)
    for i, value in enumerate(progress_bar(values, n, desc, unit="img", leave=False)):
        out[i] = torch.from_numpy(decode_image(value, size, wheres[i], fix, image_root))
    return out


def _carve(labels: np.ndarray, fraction: float, seed: int, salt: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, carved)`` positions: stratified by class for ``[N]`` labels, random for ``[N, C]``.

    Per class ``c``: ``round(fraction * n_c)`` rows (at least 1 when ``n_c >= 2``, at most
    ``n_c - 1``), drawn by ``default_rng([seed, salt, c])``. Multi-label: ``round(fraction * N)``
    rows (clipped to [1, N - 1]) drawn by ``default_rng([seed, salt])``. Both sorted.
    """
    n = len(labels)
    carved: list[np.ndarray] = []
    if labels.ndim == 1:
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            k = int(np.floor(fraction * len(idx) + 0.5))
            k = min(max(k, 1 if len(idx) >= 2 else 0), len(idx) - 1)
            rng = np.random.default_rng([seed, salt, int(c)])
            carved.append(rng.permutation(idx)[:k])
    else:
        k = min(max(int(np.floor(fraction * n + 0.5)), 1), n - 1)
        carved.append(np.random.default_rng([seed, salt]).permutation(n)[:k])
    picked = np.sort(np.concatenate(carved)) if carved else np.zeros(0, np.int64)
    mask = np.ones(n, dtype=bool)
    mask[picked] = False
    return np.flatnonzero(mask), picked


def _limit(labels: np.ndarray, limit: int | None) -> np.ndarray:
    """Positions kept by ``limit``: class-interleaved for ``[N]`` labels, the first ``limit``
    rows for ``[N, C]``; always in their original order."""
    n = len(labels)
    if limit is None or limit >= n:
        return np.arange(n)
    if labels.ndim == 2:
        return np.arange(limit)
    rank = np.zeros(n, dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank[idx] = np.arange(len(idx))
    order = np.lexsort((labels, rank))  # by rank within class, then class
    return np.sort(order[:limit])


# --- Hugging Face datasets -> MultiModalDataset -------------------------------------------------

def _as_splits(dataset_dict: Any) -> dict[str, Any]:
    import datasets

    if isinstance(dataset_dict, datasets.Dataset):
        return {"train": dataset_dict}
    if not isinstance(dataset_dict, Mapping):
        raise TypeError(f"from_hf takes a datasets.DatasetDict (or one datasets.Dataset), got "
                        f"{type(dataset_dict).__name__}.")
    out: dict[str, Any] = {}
    for key, ds in dataset_dict.items():
        canon = SPLIT_ALIASES.get(str(key).lower())
        if canon is None:
            raise ValueError(f"from_hf: unknown split {key!r}; expected 'train', 'test' and "
                             f"optionally 'validation' (also accepted: {sorted(SPLIT_ALIASES)}). "
                             "Drop other splits first, e.g. {k: d[k] for k in ('train', 'test')}.")
        if canon in out:
            raise ValueError(f"from_hf: two splits map to {canon!r} ({sorted(dataset_dict)}); "
                             "keep only one of them.")
        out[canon] = ds
    if "train" not in out:
        raise ValueError(f"from_hf: no 'train' split (splits: {sorted(dataset_dict)}).")
    return out


def _label_kind(feature: Any, values: Sequence[Any]) -> tuple[bool, list[str] | None]:
    """``(multilabel, names from a ClassLabel feature or None)``."""
    names = getattr(feature, "names", None)
    if names is not None:
        return False, list(names)
    inner = getattr(feature, "feature", None)
    if inner is not None and not isinstance(inner, dict):
        inner_names = getattr(inner, "names", None)
        return True, list(inner_names) if inner_names is not None else None
    first = next((v for v in values if v is not None), None)
    return isinstance(first, (list, tuple, np.ndarray)), None


def _infer_classes(multilabel: bool, columns: Mapping[str, Sequence[Any]]) -> list[str]:
    flat: list[Any] = []
    for values in columns.values():
        for v in values:
            if multilabel and isinstance(v, (list, tuple, np.ndarray)):
                flat.extend(v)
            elif v is not None:
                flat.append(v)
    if flat and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in flat):
        return [str(i) for i in range(int(max(flat)) + 1)]
    return sorted({str(v) for v in flat})


def _encode_labels(values: Sequence[Any], classes: list[str], multilabel: bool, split: str,
                   column: str) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}

    def one(v: Any, row: int) -> int | None:
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            if not 0 <= int(v) < len(classes):
                raise VisionLanguageFormatError(
                    f"split {split!r} row {row}, column {column!r}: label {int(v)} is outside "
                    f"0..{len(classes) - 1} ({len(classes)} classes); pass classes=[...] naming "
                    "every class.")
            return int(v)
        return index.get(str(v))

    if multilabel:
        y = np.zeros((len(values), len(classes)), dtype=np.float32)
        for row, v in enumerate(values):
            if v is None or isinstance(v, (str, bytes)):
                raise VisionLanguageFormatError(
                    f"split {split!r} row {row}, column {column!r}: expected a list of labels, "
                    f"got {v!r}.")
            for item in v:
                j = one(item, row)
                if j is not None:  # names outside ``classes`` are ignored (documented)
                    y[row, j] = 1.0
        return y
    out = np.empty(len(values), dtype=np.int64)
    for row, v in enumerate(values):
        j = None if v is None else one(v, row)
        if j is None:
            raise VisionLanguageFormatError(
                f"split {split!r} row {row}, column {column!r}: label {v!r} is not one of the "
                f"{len(classes)} classes ({classes[:5]}{' ...' if len(classes) > 5 else ''}); "
                "pass classes=[...] naming every class, or fix the row.")
        out[row] = j
    return out


def _scalar_columns(ds: Any, skip: set[str]) -> list[str]:
    import datasets

    return [c for c, f in ds.features.items()
            if c not in skip and isinstance(f, datasets.Value)]


def from_hf(dataset_dict: datasets.DatasetDict | datasets.Dataset | Mapping[str, Any],
            image_column: str = "image", text_column: str = "text", label_column: str = "label",
            *, classes: Sequence[str] | None = None, image_size: int = DEFAULT_IMAGE_SIZE,
            text_dim: int = DEFAULT_TEXT_DIM, val_fraction: float = 0.1,
            test_fraction: float = 0.2, limit: int | None = None, seed: int = 0,
            name: str = FOOD101, image_root: str | Path | None = None,
            info: Mapping[str, Any] | None = None) -> MultiModalDataset:
    """A :class:`MultiModalDataset` (``image``, ``text``) from Hugging Face ``datasets`` splits.

    ``dataset_dict`` is a ``DatasetDict`` (or a plain mapping) with a ``train`` split, a
    ``test`` split and optionally ``validation`` (``valid``, ``val`` and ``dev`` are accepted),
    or one ``Dataset``. Nothing is downloaded: load a hub copy yourself first. Columns:

    * ``image_column``: PIL images (a ``datasets.Image`` feature), ``{"bytes", "path"}`` dicts,
      arrays, or file paths (relative ones are resolved against ``image_root``);
    * ``text_column``: non-empty strings;
    * ``label_column``: single-label: ``ClassLabel`` ints (classes = its names, in its order),
      other ints, or class-name strings (classes = sorted names); multi-label: lists of names
      or ints (a ``Sequence``/``List`` feature) -> multi-hot ``[N, C]``, where names outside
      ``classes`` are ignored. ``classes=[...]`` overrides the class list.

    A missing test split is carved from train (``test_fraction``), then a missing validation
    split (``val_fraction``), stratified by class for single-label data, seeded by ``seed``.
    ``limit`` keeps at most that many rows per split (class-interleaved for single-label data).
    Other plain columns (strings, numbers) are kept as ``split.meta`` arrays.
    """
    import datasets  # noqa: F401  (the point of this adapter: data comes in as HF datasets)

    check_int("image_size", image_size, 1)
    check_int("text_dim", text_dim, 1)
    check_int("limit", limit, 1, allow_none=True)
    check_int("seed", seed, 0)
    check_fraction("val_fraction", val_fraction)
    check_fraction("test_fraction", test_fraction)
    parts = _as_splits(dataset_dict)
    _check_columns(parts, (image_column, text_column, label_column))
    label_values = {s: list(ds[label_column]) for s, ds in parts.items()}
    multilabel, feature_names = _label_kind(parts["train"].features[label_column],
                                            label_values["train"])
    class_list = ([str(c) for c in classes] if classes is not None else
                  feature_names if feature_names is not None else
                  _infer_classes(multilabel, label_values))
    if not class_list or len(set(class_list)) != len(class_list):
        raise ValueError(f"from_hf: classes must be a non-empty list of distinct names, got "
                         f"{class_list[:10]}.")
    labels = {s: _encode_labels(v, class_list, multilabel, s, label_column)
              for s, v in label_values.items()}
    rows, sources, carved = _carve_missing_splits(parts, labels, multilabel, test_fraction,
                                                  val_fraction, seed)
    featurizer = HashingFeaturizer(dim=text_dim)
    text_hash = hashlib.sha256(json.dumps({"classes": class_list, "image_size": image_size,
                                           "featurizer": featurizer.identity}).encode())
    columns = (image_column, text_column, label_column)
    splits = []
    for split in ("train", "validation", "test"):
        src_rows = rows[split][_limit(labels[sources[split]][rows[split]], limit)]
        splits.append(_build_split(parts[sources[split]], split, sources[split], src_rows,
                                   labels[sources[split]], columns, class_list, featurizer,
                                   text_hash, image_size, name, image_root))
    checksum = f"{tensor_checksum(*splits)}-t{text_hash.hexdigest()[:8]}"
    details = {"format": "datasets", **dict(info or {}), "image_size": image_size,
               "text_featurizer": featurizer.identity, "classes": len(class_list),
               "multilabel": multilabel, "sizes": {s.name: len(s) for s in splits},
               "limit": limit, "seed": seed, "carved": carved}
    train, validation, test = splits
    return MultiModalDataset(train, validation, test, name=name, checksum=checksum, info=details)


__all__ = ["FOOD101", "MMIMDB", "VisionLanguageFormatError", "decode_image", "from_hf",
           "resolve_root"]


def _check_columns(parts: Mapping[str, Any], columns: Sequence[str]) -> None:
    """Refuse a split that lacks the image, text or label column, naming the columns it has."""
    for split, ds in parts.items():
        absent = [c for c in columns if c not in ds.column_names]
        if absent:
            raise VisionLanguageFormatError(
                f"split {split!r} has no column {absent[0]!r} (columns: {ds.column_names}); pass "
                "image_column=, text_column= and label_column= naming its image, text and label "
                "columns.")


def _carve_missing_splits(parts: Mapping[str, Any], labels: Mapping[str, np.ndarray],
                          multilabel: bool, test_fraction: float, val_fraction: float, seed: int
                          ) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    """Rows of each split and the split they come from: a missing test split is carved from
    train, then a missing validation split (stratified by class when single-label)."""
    rows = {s: np.arange(len(v)) for s, v in labels.items()}
    sources = {s: s for s in parts}
    carved: dict[str, str] = {}
    for target, fraction, salt in (("test", test_fraction, 2), ("validation", val_fraction, 1)):
        if target in parts:
            continue
        if len(rows["train"]) < 2:
            raise VisionLanguageFormatError(
                f"split 'train' has {len(rows['train'])} row(s); carving a {target} split needs "
                f"at least 2 (give a {target!r} split or more training rows).")
        keep, pick = _carve(labels["train"][rows["train"]], fraction, seed, salt)
        rows[target], rows["train"] = rows["train"][pick], rows["train"][keep]
        sources[target] = "train"
        carved[target] = (f"{len(pick)} of the train rows, {fraction:g} per class, seed {seed}"
                          if not multilabel else f"{len(pick)} train rows, seed {seed}")
    return rows, sources, carved


def _build_split(src: Any, split: str, source: str, src_rows: np.ndarray, labels: np.ndarray,
                 columns: tuple[str, str, str], class_list: list[str],
                 featurizer: HashingFeaturizer, text_hash: Any, image_size: int, name: str,
                 image_root: str | Path | None) -> Split:
    """One split: texts checked and featurised (and hashed into ``text_hash``), images
    decoded, labels and the other plain columns as ``meta``."""
    image_column, text_column, label_column = columns
    if len(src_rows) == 0:
        raise VisionLanguageFormatError(f"split {split!r} is empty: every split needs at "
                                        "least one sample.")
    sub = src.select(src_rows.tolist())
    texts = sub[text_column]
    where = [f"split {source!r} row {int(r)}" for r in src_rows]
    for w, t in zip(where, texts):
        if not isinstance(t, str) or not t.strip():
            raise VisionLanguageFormatError(
                f"{w}, column {text_column!r}: the text is {t!r}; every sample needs a "
                "non-empty text (missing modalities are simulated by presence masks, never "
                "stored). Give it a text or drop the row.")
    scalar = _scalar_columns(sub, {image_column, text_column, label_column})
    meta: dict[str, Any] = {c: np.asarray(sub[c]) for c in scalar}
    if "file" in meta:
        where = [f"{f} ({w})" for f, w in zip(meta["file"], where)]
    root = Path(image_root) if image_root is not None else None
    images = _decode_all((r[image_column] for r in sub.select_columns([image_column])),
                         len(sub), image_size, where,
                         "Fix or replace the image, or drop the row.",
                         f"{name} {split}: decoding images", root)
    for t in texts:
        text_hash.update(t.encode("utf-8") + b"\x00")
    meta = {"text": np.array(texts, dtype=str), **meta}
    return Split({"image": images, "text": featurizer(list(texts))},
                 torch.from_numpy(labels[src_rows]), list(class_list), split, meta)
