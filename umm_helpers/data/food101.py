"""UPMC Food101 (101 classes, scored by accuracy), read through Hugging Face ``datasets``.

Taught in the README section "Vision-language data"; :mod:`umm_helpers.data.vision_language`
describes the two modalities and :func:`~umm_helpers.data.vision_language.from_hf`.
``food101`` (:func:`load_food101`): UPMC Food101, 101 classes, scored by accuracy. The folder
``root`` in the layout the data is commonly distributed in (Kaggle, "UPMC Food-101")::

    images/train/<class_name>/<file>.jpg     images/test/<class_name>/<file>.jpg
    texts/train_titles.csv                   texts/test_titles.csv

Each CSV row is ``image_file_name,text,class_name`` (no header; a text holding a comma must be
quoted, as standard CSV writers do). A first row that is a header (``image_file_name`` /
``image`` / ..., ``text`` / ``title``, ``class_name`` / ``label`` / ...) is recognised and
skipped; any other first row is data. One sample per CSV row; image files without a row are
ignored. Classes are the sorted class folder names of ``images/train`` and ``images/test``.
Rows are sorted by (class, file name). The validation split is carved from the train rows,
stratified by class: ``round(val_fraction * n_c)`` rows of each class ``c`` (at least one when
the class has two or more rows, never all of them), chosen by a generator seeded with
``(seed, class index)``; test = the test CSV.
``limit`` keeps the first rows of every class in turn (see ``from_hf``), after the validation
split is carved.
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from umm_helpers.data.dataset import MultiModalDataset
from umm_helpers.data.vision_language import (
    DEFAULT_IMAGE_SIZE,
    DEFAULT_TEXT_DIM,
    FOOD101,
    HOWTO,
    MARKERS,
    VisionLanguageFormatError,
    check_fraction,
    from_hf,
    nested_hint,
    resolve_root,
)
from umm_helpers.settings import inside

if TYPE_CHECKING:  # pragma: no cover
    import datasets

FOOD101_SPLITS = ("train", "test")
_HEADER_WORDS = ({"image_file_name", "image", "image_name", "file", "filename", "file_name",
                  "image_path", "img", "path"},
                 {"text", "title", "titles", "caption"},
                 {"class_name", "class", "label", "category", "classname"})


def _is_header(fields: Sequence[str]) -> bool:
    return len(fields) == 3 and all(f.strip().lower() in words
                                    for f, words in zip(fields, _HEADER_WORDS))


def _read_titles(path: Path, split: str) -> list[tuple[int, str, str, str]]:
    """``(line, file, text, class)`` rows of one titles CSV (header skipped when recognised)."""
    if not path.is_file():
        raise VisionLanguageFormatError(
            f"{path} is missing; expected a CSV with rows image_file_name,text,class_name for "
            f"the {split} images. {HOWTO[FOOD101]}")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            raw = [(reader.line_num, row) for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise VisionLanguageFormatError(f"{path} is not a readable UTF-8 CSV file ({exc}); "
                                        "expected rows image_file_name,text,class_name.") from exc
    out = []
    for k, (line, row) in enumerate(raw):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if k == 0 and _is_header(row):
            continue
        if len(row) != 3:
            raise VisionLanguageFormatError(
                f"{path} line {line}: expected 3 fields image_file_name,text,class_name, found "
                f"{len(row)} ({row!r}). Quote a text that holds a comma (\"...\"), as standard "
                "CSV writers do, or fix the row.")
        file, text, cls = (s.strip() for s in row)
        if not text:
            raise VisionLanguageFormatError(
                f"{path} line {line}: the text of {file!r} is empty; every sample needs a text "
                "(missing modalities are simulated by presence masks, never stored). Give it a "
                "title or remove the row.")
        if not file or not cls:
            raise VisionLanguageFormatError(f"{path} line {line}: empty image file name or class "
                                            f"name ({row!r}); fix or remove the row.")
        out.append((line, file, text, cls))
    if not out:
        raise VisionLanguageFormatError(f"{path} has no rows; expected rows "
                                        "image_file_name,text,class_name.")
    return out


def food101_classes(root: Path) -> list[str]:
    """Sorted class folder names under ``root/images/train`` and ``root/images/test``."""
    names: set[str] = set()
    for split in FOOD101_SPLITS:
        folder = root / "images" / split
        if not folder.is_dir():
            raise VisionLanguageFormatError(
                f"{folder} is missing; expected one folder per class holding its {split} images "
                f"(ROOT/images/{split}/<class_name>/<file>.jpg)."
                f"{nested_hint(root, MARKERS[FOOD101])} {HOWTO[FOOD101]}")
        names |= {p.name for p in folder.iterdir() if p.is_dir()}
    if not names:
        raise VisionLanguageFormatError(f"{root / 'images'} holds no class folders; expected "
                                        f"images/train/<class_name>/<file>.jpg. {HOWTO[FOOD101]}")
    return sorted(names)


def read_food101(root: str | Path | None = None) -> datasets.DatasetDict:
    """The checked UPMC Food101 files as a ``datasets.DatasetDict`` (``train``, ``test``).

    Columns: ``image`` (absolute file path), ``text``, ``label`` (``ClassLabel`` over the sorted
    class folders), ``file`` (path relative to ``root``) and ``csv_line``. Rows sorted by
    (class, file name). Every listed image is checked to exist; nothing is decoded.
    """
    import datasets

    path = resolve_root(root, FOOD101)
    classes = food101_classes(path)
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for split in FOOD101_SPLITS:
        csv_path = path / "texts" / f"{split}_titles.csv"
        if not csv_path.is_file() and not (path / "texts").is_dir():
            raise VisionLanguageFormatError(
                f"{csv_path} is missing (no texts/ folder in {path})."
                f"{nested_hint(path, MARKERS[FOOD101])} {HOWTO[FOOD101]}")
        rows = _read_titles(csv_path, split)
        records = []
        seen: dict[str, int] = {}
        for line, file, text, cls in rows:
            where = f"{csv_path} line {line}"
            if cls not in index or not (path / "images" / split / cls).is_dir():
                raise VisionLanguageFormatError(
                    f"{where}: class {cls!r} has no image folder {path / 'images' / split / cls}; "
                    f"the classes are the folders of images/train and images/test "
                    f"({len(classes)} found). Fix the class name or add the folder.")
            try:  # a row names a file inside images/<split>/ only: no '..', no absolute path
                image = inside(path / "images" / split, file if "/" in file else f"{cls}/{file}",
                               f"{where}: image file")
            except ValueError as exc:
                raise VisionLanguageFormatError(str(exc)) from None
            rel = image.relative_to(path)
            if not image.is_file():
                raise VisionLanguageFormatError(
                    f"{where}: image file {image} is missing. Put the image there, or remove "
                    "the row from the CSV.")
            if rel.as_posix() in seen:
                raise VisionLanguageFormatError(
                    f"{where}: image {rel.as_posix()} is listed twice (also on line "
                    f"{seen[rel.as_posix()]}); remove one of the rows.")
            seen[rel.as_posix()] = line
            records.append((cls, file, str(image), text, rel.as_posix(), line))
        records.sort(key=lambda r: (r[0], r[1]))
        features = datasets.Features({
            "image": datasets.Value("string"), "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=classes), "file": datasets.Value("string"),
            "csv_line": datasets.Value("int64")})
        out[split] = datasets.Dataset.from_dict(
            {"image": [r[2] for r in records], "text": [r[3] for r in records],
             "label": [index[r[0]] for r in records],
             "file": [r[4] for r in records], "csv_line": [r[5] for r in records]},
            features=features)
    return datasets.DatasetDict(out)


def load_food101(root: str | Path | None = None, image_size: int = DEFAULT_IMAGE_SIZE,
                 text_dim: int = DEFAULT_TEXT_DIM, val_fraction: float = 0.1,
                 limit: int | None = None, seed: int = 0) -> MultiModalDataset:
    """UPMC Food101: image ``[N, 3, S, S]`` and text ``[N, text_dim]``, single-label (accuracy).

    See the module docstring for the folder layout, the stratified validation carve
    (``val_fraction`` of each class's train rows, seeded by ``seed``) and ``limit``.
    ``split.meta`` holds ``text``, ``file`` (relative to ``root``) and ``csv_line``.
    """
    check_fraction("val_fraction", val_fraction)
    path = resolve_root(root, FOOD101)
    hf = read_food101(path)
    return from_hf(hf, image_size=image_size, text_dim=text_dim, val_fraction=val_fraction,
                   limit=limit, seed=seed, name=FOOD101,
                   info={"root": str(path), "format": "upmc-food101",
                         "validation": f"carved from train, {val_fraction:g} of each class, "
                                       f"seed {seed}"})



__all__ = ["FOOD101", "food101_classes", "read_food101", "load_food101"]
