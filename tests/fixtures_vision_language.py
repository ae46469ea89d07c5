"""Tiny UPMC Food101 and MM-IMDB folders in the real layouts, written into a temp folder.

Food101: ``images/{train,test}/<class>/<file>.jpg`` plus ``texts/{train,test}_titles.csv``
(rows ``image_file_name,text,class_name``, no header). MM-IMDB: ``split.json`` plus
``dataset/<id>.jpeg`` and ``dataset/<id>.json``. Images are small JPEGs drawn with numpy + PIL:
a class (or first-genre) colour, a class-dependent pattern and seeded noise. Everything is
seeded, so two calls write byte-identical folders.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

FOOD_CLASSES = ("apple_pie", "baklava", "sushi")
FOOD_COLOURS = {"apple_pie": (200, 130, 50), "baklava": (230, 200, 90), "sushi": (235, 235, 240)}
FOOD_WORDS = {"apple_pie": ("apple pie", "cinnamon", "crust"),
              "baklava": ("baklava", "honey", "pistachio"),
              "sushi": ("sushi", "salmon", "rice")}
FILLERS = ("recipe", "easy", "homemade", "best", "quick", "classic", "my", "simple")
GENRES = ("Drama", "Comedy", "Horror", "Sci-Fi")
GENRE_COLOURS = {"Drama": (90, 60, 160), "Comedy": (250, 210, 40), "Horror": (150, 20, 20),
                 "Sci-Fi": (30, 160, 200), "Reality-TV": (120, 120, 120)}


def draw(colour: tuple[int, int, int], pattern: int, size: tuple[int, int],
         rng: np.random.Generator) -> Image.Image:
    """An RGB image ``size = (width, height)``: colour, stripes/checks/disc, noise."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.array(colour, dtype=np.float64)[None, None, :] * np.ones((h, w, 1))
    if pattern % 3 == 0:
        mask = (xx // 3) % 2 == 0
    elif pattern % 3 == 1:
        mask = ((xx // 4) + (yy // 4)) % 2 == 0
    else:
        mask = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(w, h) / 3) ** 2
    base[mask] *= 0.55
    base += rng.normal(0, 12, size=base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def save_jpeg(path: Path, img: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="JPEG", quality=90)
    return path


def food_title(cls: str, rng: np.random.Generator) -> str:
    words = FOOD_WORDS[cls]
    parts = [str(rng.choice(FILLERS)), str(words[0])]
    if rng.random() < 0.5:
        parts.append(str(rng.choice(words[1:])))
    title = " ".join(parts)
    if rng.random() < 0.3:
        title = f"{title}, with a twist"  # a comma inside the text: the CSV quotes it
    return title


def write_food101(root: Path, train_per_class: int = 10, test_per_class: int = 4,
                  classes: tuple[str, ...] = FOOD_CLASSES, header: bool = False,
                  seed: int = 0) -> dict[str, list[tuple[str, str, str]]]:
    """A UPMC Food101 folder; returns ``{split: [(file, text, class), ...]}`` as written.

    CSV rows are written in a shuffled (seeded) order, not sorted, as real files may be.
    """
    rng = np.random.default_rng(seed)
    rows: dict[str, list[tuple[str, str, str]]] = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        written = []
        for c, cls in enumerate(classes):
            for k in range(per_class):
                file = f"{cls}_{split}_{k:03d}.jpg"
                size = (int(rng.integers(20, 40)), int(rng.integers(20, 40)))
                save_jpeg(root / "images" / split / cls / file,
                          draw(FOOD_COLOURS.get(cls, (100, 100, 100)), c, size, rng))
                written.append((file, food_title(cls, rng), cls))
        order = rng.permutation(len(written))
        rows[split] = [written[i] for i in order]
        csv_path = root / "texts" / f"{split}_titles.csv"
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if header:
                writer.writerow(["image_file_name", "text", "class_name"])
            writer.writerows(rows[split])
    return rows


def write_mmimdb(root: Path, sizes: tuple[int, int, int] = (14, 4, 6),
                 seed: int = 0) -> dict[str, dict]:
    """An MM-IMDB folder; returns ``{id: {"split", "plot", "genres"}}`` as written.

    Movie ``0000003`` (train) has only the unlisted genre ``Reality-TV``; some others carry it
    next to listed genres. Ids are written to split.json in a shuffled order.
    """
    rng = np.random.default_rng(seed)
    movies: dict[str, dict] = {}
    ids = [f"{k:07d}" for k in range(1, sum(sizes) + 1)]
    split_of = ["train"] * sizes[0] + ["dev"] * sizes[1] + ["test"] * sizes[2]
    for k, (movie, split) in enumerate(zip(ids, split_of)):
        if movie == "0000003":
            genres = ["Reality-TV"]
        else:
            first = GENRES[k % len(GENRES)]
            extra = [g for g in GENRES if g != first and rng.random() < 0.3]
            genres = [first, *extra] + (["Reality-TV"] if rng.random() < 0.2 else [])
        plot = (f"A {genres[0].lower()} story about " + " ".join(
            str(rng.choice(("a detective", "two friends", "a robot", "a family", "ghosts",
                            "the city", "a wedding", "space"))) for _ in range(3)) + ".")
        movies[movie] = {"split": split, "plot": [plot, "A second, longer plot summary."],
                         "genres": genres}
        folder = root / "dataset"
        folder.mkdir(parents=True, exist_ok=True)
        size = (int(rng.integers(20, 36)), int(rng.integers(28, 44)))  # posters: tall
        save_jpeg(folder / f"{movie}.jpeg", draw(GENRE_COLOURS[genres[0]], k, size, rng))
        (folder / f"{movie}.json").write_text(json.dumps(
            {"title": f"Movie {movie}", "plot": movies[movie]["plot"], "genres": genres,
             "year": 1990 + k}, indent=1))
    split = {s: [m for m in ids if movies[m]["split"] == s] for s in ("train", "dev", "test")}
    split = {s: [v[i] for i in rng.permutation(len(v))] for s, v in split.items()}
    (root / "split.json").write_text(json.dumps(split))
    return movies
