"""MM-IMDB (23 genres, multi-label, scored by macro-F1), read through Hugging Face ``datasets``.

Taught in the README section "Vision-language data"; :mod:`umm_helpers.data.vision_language`
describes the two modalities and :func:`~umm_helpers.data.vision_language.from_hf`.
``mmimdb`` (:func:`load_mmimdb`): MM-IMDB, multi-label over the 23 genres used in the literature
(:data:`MMIMDB_GENRES`), scored by macro-F1. The folder ``root`` as unpacked from the authors'
``mmimdb.tar.gz``::

    split.json            {"train": [ids], "dev": [ids], "test": [ids]}
    dataset/<id>.jpeg     the poster
    dataset/<id>.json     {"plot": [str, ...], "genres": [str, ...], ...}

The text is the *first* plot of ``plot`` (a plain string is accepted too). Labels are multi-hot
float ``[N, len(genres)]``; genres outside ``genres`` are ignored, so a movie with none of them
keeps an all-zero row (it is a negative for every class). ``dev`` is the validation split. Ids
are sorted (as strings) in every split.
``limit`` keeps the first ``limit`` sorted ids of each split.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from umm_helpers.data.dataset import MultiModalDataset
from umm_helpers.data.vision_language import (
    DEFAULT_IMAGE_SIZE,
    DEFAULT_TEXT_DIM,
    HOWTO,
    MARKERS,
    MMIMDB,
    VisionLanguageFormatError,
    check_int,
    from_hf,
    nested_hint,
    resolve_root,
)
from umm_helpers.settings import inside

if TYPE_CHECKING:  # pragma: no cover
    import datasets

MMIMDB_GENRES: tuple[str, ...] = (
    "Drama", "Comedy", "Romance", "Thriller", "Crime", "Action", "Adventure", "Horror",
    "Documentary", "Mystery", "Sci-Fi", "Fantasy", "Family", "Biography", "War", "History",
    "Music", "Animation", "Musical", "Western", "Sport", "Short", "Film-Noir")
MMIMDB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def _read_json(path: Path, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise VisionLanguageFormatError(f"{path} is not a readable JSON file ({exc}); expected "
                                        f"{what}. Re-extract it from mmimdb.tar.gz.") from exc


def read_mmimdb_split(root: Path) -> dict[str, list[str]]:
    """``{"train", "dev", "test"}`` -> sorted ids (as strings) from ``root/split.json``."""
    path = root / "split.json"
    shape = '{"train": [ids], "dev": [ids], "test": [ids]}'
    if not path.is_file():
        raise VisionLanguageFormatError(
            f"{path} is missing; expected {shape}.{nested_hint(root, MARKERS[MMIMDB])} "
            f"{HOWTO[MMIMDB]}")
    data = _read_json(path, shape)
    if not isinstance(data, dict) or any(not isinstance(data.get(k), list)
                                         for k in MMIMDB_SPLITS):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        absent = [k for k in MMIMDB_SPLITS if not isinstance(data, dict) or k not in data]
        raise VisionLanguageFormatError(
            f"{path} must hold the three keys 'train', 'dev' and 'test', each a list of movie "
            f"ids ({shape}); found {keys} (missing or not a list: "
            f"{absent or [k for k in MMIMDB_SPLITS if not isinstance(data[k], list)]}). "
            f"Use the split.json shipped in mmimdb.tar.gz.")
    out = {}
    for key in MMIMDB_SPLITS:
        ids = [str(i) for i in data[key]]
        if not ids:
            raise VisionLanguageFormatError(f"{path}: split {key!r} lists no ids; every split "
                                            "needs at least one movie.")
        odd = [i for i in ids if not i.strip() or any(c in i for c in "/\\") or i.startswith(".")]
        if odd:
            raise VisionLanguageFormatError(
                f"{path}: split {key!r} lists ids that are not plain file names "
                f"({odd[:3]!r}); an id names dataset/<id>.json and dataset/<id>.jpeg inside "
                "the data folder, without '/', '\\' or a leading '.'. Fix split.json.")
        twice = sorted(i for i, k in Counter(ids).items() if k > 1)
        if twice:
            raise VisionLanguageFormatError(
                f"{path}: split {key!r} lists ids more than once ({twice[:5]}); every movie is "
                "one sample. Remove the repeats from split.json.")
        out[key] = sorted(ids)
    keys = list(MMIMDB_SPLITS)
    for a_pos, a in enumerate(keys):
        for b in keys[a_pos + 1:]:
            shared = sorted(set(out[a]) & set(out[b]))
            if shared:
                raise VisionLanguageFormatError(
                    f"{path}: ids {shared[:5]} are in both split {a!r} and split {b!r}; a movie "
                    "in two splits leaks test data into training. Keep each id in one split "
                    "(the split.json shipped in mmimdb.tar.gz does).")
    return out


def _plot_of(meta: Any, path: Path) -> tuple[str, list[str]]:
    if not isinstance(meta, dict):
        raise VisionLanguageFormatError(f"{path}: expected a JSON object with keys 'plot' and "
                                        f"'genres', got {type(meta).__name__}.")
    plot = meta.get("plot")
    first = plot[0] if isinstance(plot, list) and plot else plot
    if not isinstance(first, str) or not first.strip():
        raise VisionLanguageFormatError(
            f"{path}: 'plot' must be a list of strings whose first entry is the text (got "
            f"{plot!r:.80}); every sample needs a non-empty text (missing modalities are "
            "simulated by presence masks, never stored). Fix the file or remove the id from "
            "split.json.")
    genres = meta.get("genres")
    if not isinstance(genres, list) or not all(isinstance(g, str) for g in genres):
        raise VisionLanguageFormatError(f"{path}: 'genres' must be a list of strings, got "
                                        f"{genres!r:.80}. Fix the file or remove the id from "
                                        "split.json.")
    return first.strip(), [g.strip() for g in genres]


def read_mmimdb(root: str | Path | None = None, limit: int | None = None
                ) -> datasets.DatasetDict:
    """The checked MM-IMDB files as a ``datasets.DatasetDict`` (``train``, ``validation`` = dev,
    ``test``). Columns: ``image`` (absolute poster path), ``text`` (first plot), ``label`` (the
    movie's genre names, unfiltered), ``id`` and ``file``. Ids sorted; ``limit`` keeps the first
    ``limit`` ids of each split before any file is read.
    """
    import datasets

    check_int("limit", limit, 1, allow_none=True)
    path = resolve_root(root, MMIMDB)
    splits = read_mmimdb_split(path)
    folder = path / "dataset"
    out = {}
    for key, canon in MMIMDB_SPLITS.items():
        records = []
        for movie in splits[key][:limit]:
            files = [inside(folder, f"{movie}{ext}", f"id {movie!r} in {path / 'split.json'}")
                     for ext in (".json", ".jpeg")]
            absent = [f for f in files if not f.is_file()]
            if absent:
                raise VisionLanguageFormatError(
                    f"id {movie!r} in {path / 'split.json'} (split {key!r}) has no file "
                    f"{absent[0]}; each id needs dataset/<id>.json and dataset/<id>.jpeg. "
                    f"Re-extract mmimdb.tar.gz or remove the id from split.json.")
            text, genres = _plot_of(_read_json(files[0], "{'plot': [...], 'genres': [...]}"),
                                    files[0])
            records.append({"image": str(files[1]), "text": text, "label": genres,
                            "id": movie, "file": f"dataset/{movie}.jpeg"})
        features = datasets.Features({
            "image": datasets.Value("string"), "text": datasets.Value("string"),
            "label": datasets.Sequence(datasets.Value("string")),
            "id": datasets.Value("string"), "file": datasets.Value("string")})
        out[canon] = datasets.Dataset.from_dict(
            {k: [r[k] for r in records] for k in features}, features=features)
    return datasets.DatasetDict(out)


def load_mmimdb(root: str | Path | None = None, image_size: int = DEFAULT_IMAGE_SIZE,
                text_dim: int = DEFAULT_TEXT_DIM, genres: Sequence[str] | None = None,
                limit: int | None = None) -> MultiModalDataset:
    """MM-IMDB: poster ``[N, 3, S, S]`` and plot ``[N, text_dim]``, multi-label (macro-F1).

    Labels are multi-hot float ``[N, len(genres)]`` over ``genres`` (default
    :data:`MMIMDB_GENRES`, the 23 genres of the literature); other genres are ignored and a movie
    with none of them keeps an all-zero row. ``split.meta`` holds ``text``, ``id`` and ``file``.
    """
    genre_list = list(MMIMDB_GENRES if genres is None else genres)
    if (not genre_list or not all(isinstance(g, str) and g for g in genre_list)
            or len(set(genre_list)) != len(genre_list)):
        raise ValueError(f"genres must be a non-empty list of distinct genre names, got "
                         f"{genres!r}.")
    path = resolve_root(root, MMIMDB)
    hf = read_mmimdb(path, limit)
    return from_hf(hf, classes=genre_list, image_size=image_size, text_dim=text_dim,
                   limit=limit, name=MMIMDB,
                   info={"root": str(path), "format": "mmimdb", "genres": genre_list,
                         "validation": "split.json 'dev'"})



__all__ = ["MMIMDB", "MMIMDB_GENRES", "read_mmimdb_split", "read_mmimdb", "load_mmimdb"]
