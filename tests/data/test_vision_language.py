"""UPMC Food101 and MM-IMDB adapters (through Hugging Face ``datasets``), on tiny local folders.

Everything runs on synthetic files in the real layouts (tests/fixtures_vision_language.py);
nothing is downloaded.
"""
from __future__ import annotations

import csv
import json
import re

import datasets
import numpy as np
import pytest
import torch
from fixtures_vision_language import FOOD_CLASSES, write_food101, write_mmimdb
from PIL import Image

from umm_helpers.data import available_datasets, load_dataset
from umm_helpers.data import vision_language as vl
from umm_helpers.data.mmimdb import MMIMDB_GENRES
from umm_helpers.data.vision_language import VisionLanguageFormatError

S, D = 16, 64  # small images and text vectors keep every test fast


@pytest.fixture()
def food(tmp_path):
    root = tmp_path / "food101"
    return root, write_food101(root)


@pytest.fixture()
def imdb(tmp_path):
    root = tmp_path / "mmimdb"
    return root, write_mmimdb(root)


def food101(root, **kw):
    return load_dataset("food101", root=root, image_size=kw.pop("image_size", S),
                        text_dim=kw.pop("text_dim", D), **kw)


def mmimdb(root, **kw):
    return load_dataset("mmimdb", root=root, image_size=kw.pop("image_size", S),
                        text_dim=kw.pop("text_dim", D), **kw)


def same(a, b):
    for name, split in a.splits().items():
        other = b.splits()[name]
        for m in split.modalities:
            assert torch.equal(split.inputs[m], other.inputs[m]), (name, m)
        assert torch.equal(split.labels, other.labels)
        assert list(split.meta["text"]) == list(other.meta["text"])
    assert a.checksum == b.checksum != ""


def rewrite_csv(path, edit):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows = edit(rows)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


# --------------------------------------------------------------------------- Food101
def test_registry_names():
    assert {"food101", "mmimdb"} <= set(available_datasets())


def test_food101_shapes_classes_and_splits(food):
    root, rows = food
    ds = food101(root)
    assert ds.name == "food101" and ds.modalities == ["image", "text"]
    assert ds.classes == sorted(FOOD_CLASSES) and not ds.multilabel
    assert {k: len(s) for k, s in ds.splits().items()} == {"train": 27, "validation": 3,
                                                           "test": 12}
    for split in ds.splits().values():
        assert split.inputs["image"].shape == (len(split), 3, S, S)
        assert split.inputs["text"].shape == (len(split), D)
        assert split.inputs["image"].dtype == split.inputs["text"].dtype == torch.float32
        assert split.labels.dtype == torch.long
        x = split.inputs["image"]
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.std()) > 0.05
        norms = split.inputs["text"].norm(dim=1)
        assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
        files = list(split.meta["file"])
        keys = [(f.split("/")[2], f) for f in files]
        assert keys == sorted(keys)  # sorted by (class, file)
        assert [ds.classes[int(y)] for y in split.labels] == [k[0] for k in keys]
    written = {(f"images/test/{c}/{f}"): (t, c) for f, t, c in rows["test"]}
    for f, t, y in zip(ds.test.meta["file"], ds.test.meta["text"], ds.test.labels):
        assert written[f] == (t, ds.classes[int(y)])
    assert any("," in t for t in ds.train.meta["text"])  # quoted commas survive
    assert ds.info["format"] == "upmc-food101" and ds.info["image_size"] == S
    assert ds.info["text_featurizer"] == vl.HashingFeaturizer(dim=D).identity
    assert ds.info["sizes"] == {"train": 27, "validation": 3, "test": 12}


def test_food101_determinism_and_checksum(food, tmp_path):
    root, _ = food
    a = food101(root)
    same(a, food101(root))
    write_food101(tmp_path / "copy")
    same(a, food101(tmp_path / "copy"))  # the seeded fixture writes the same folder again
    rewrite_csv(root / "texts/test_titles.csv",
                lambda rows: [rows[0][:1] + ["a different title"] + rows[0][2:]] + rows[1:])
    b = food101(root)
    assert b.checksum != a.checksum
    assert torch.equal(a.test.inputs["image"], b.test.inputs["image"])
    assert list(a.test.meta["text"]) != list(b.test.meta["text"])
    assert food101(root, seed=1).checksum != b.checksum  # another validation carve


def test_food101_stratified_validation_carve(food):
    root, rows = food
    ds = food101(root, val_fraction=0.2)
    assert np.bincount(ds.validation.labels.numpy()).tolist() == [2, 2, 2]
    assert np.bincount(ds.train.labels.numpy()).tolist() == [8, 8, 8]
    train, val = set(ds.train.meta["file"]), set(ds.validation.meta["file"])
    assert not train & val
    assert train | val == {f"images/train/{c}/{f}" for f, _, c in rows["train"]}
    again = food101(root, val_fraction=0.2)
    assert list(again.validation.meta["file"]) == list(ds.validation.meta["file"])
    other = food101(root, val_fraction=0.2, seed=3)
    assert np.bincount(other.validation.labels.numpy()).tolist() == [2, 2, 2]
    assert set(other.validation.meta["file"]) != val
    with pytest.raises(ValueError, match="val_fraction"):
        food101(root, val_fraction=1.0)


def test_food101_header_row_limit_and_env_root(tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    write_food101(plain)
    write_food101(tmp_path / "header", header=True)
    a, b = food101(plain), food101(tmp_path / "header")
    assert a.checksum == b.checksum
    assert b.train.meta["csv_line"].min() >= 2  # line 1 was the header
    small = food101(plain, limit=4)
    assert {k: len(s) for k, s in small.splits().items()} == {"train": 4, "validation": 3,
                                                              "test": 4}
    assert sorted(np.bincount(small.train.labels.numpy(), minlength=3).tolist()) == [1, 1, 2]
    assert set(small.train.meta["file"]) <= set(a.train.meta["file"])
    monkeypatch.setenv("UMM_DATA_ROOT", str(plain))
    assert load_dataset("food101", image_size=S, text_dim=D).checksum == a.checksum


def test_food101_resize_and_centre_crop():
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :10] = (255, 0, 0)   # left quarter red: cropped away
    wide[:, 10:30] = (0, 0, 255)  # centre blue
    wide[:, 30:] = (0, 255, 0)
    out = vl.decode_image(Image.fromarray(wide), 10, "test", "")
    assert out.shape == (3, 10, 10) and out.dtype == np.float32
    inner = out[:, :, 1:-1]  # bilinear filtering blurs the outermost columns a little
    assert np.allclose(inner[2], 1.0, atol=0.02) and np.allclose(inner[:2], 0.0, atol=0.02)
    grey = vl.decode_image(Image.new("L", (7, 9), 51), 4, "test", "")
    assert grey.shape == (3, 4, 4) and np.allclose(grey, 0.2, atol=1e-6)


# --------------------------------------------------------------------------- from_hf
def _pil_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, size=(12 + i % 3, 14, 3)).astype(np.uint8))
            for i in range(n)]


def test_from_hf_datasetdict_with_classlabel_and_pil_images():
    names = ["zebra", "apple"]  # a ClassLabel's own order is kept, not sorted
    features = datasets.Features({"image": datasets.Image(), "text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=names),
                                  "title_id": datasets.Value("int64")})

    def part(n, seed):
        return datasets.Dataset.from_dict(
            {"image": _pil_rows(n, seed), "text": [f"dish {i} {names[i % 2]}" for i in range(n)],
             "label": [i % 2 for i in range(n)], "title_id": list(range(n))}, features=features)

    dd = datasets.DatasetDict({"train": part(12, 0), "test": part(5, 1)})
    ds = vl.from_hf(dd, image_size=8, text_dim=D, val_fraction=0.25)
    assert ds.classes == names and ds.name == "food101"
    assert {k: len(s) for k, s in ds.splits().items()} == {"train": 8, "validation": 4, "test": 5}
    assert np.bincount(ds.validation.labels.numpy()).tolist() == [2, 2]
    assert ds.train.inputs["image"].shape == (8, 3, 8, 8)
    assert ds.test.meta["title_id"].tolist() == [0, 1, 2, 3, 4]
    assert ds.info["carved"]["validation"].startswith("4 of the train rows")
    same(ds, vl.from_hf(dd, image_size=8, text_dim=D, val_fraction=0.25))
    # a hub copy with a 'valid' split and string labels: classes are the sorted names
    strings = datasets.Dataset.from_dict({"img": _pil_rows(6), "caption": ["a b"] * 6,
                                          "food": ["soup", "cake", "pie"] * 2})
    ds2 = vl.from_hf({"train": strings, "valid": strings, "test": strings},
                     image_column="img", text_column="caption", label_column="food",
                     image_size=8, text_dim=D)
    assert ds2.classes == ["cake", "pie", "soup"] and len(ds2.validation) == 6
    assert ds2.train.labels.tolist() == [2, 0, 1, 2, 0, 1]


def test_from_hf_single_dataset_multilabel_and_errors(tmp_path):
    one = datasets.Dataset.from_dict({"image": _pil_rows(20), "text": ["x y"] * 20,
                                      "label": [["b", "a"], ["c"], [], ["a", "zz"]] * 5})
    ds = vl.from_hf(one, classes=["a", "b", "c"], image_size=8, text_dim=D)
    assert ds.multilabel and ds.train.labels.shape[1] == 3
    assert {k: len(s) for k, s in ds.splits().items()} == {"train": 14, "validation": 2,
                                                           "test": 4}
    assert ds.info["carved"]["test"] == "4 train rows, seed 0"
    path = tmp_path / "a.png"
    Image.new("RGB", (9, 9), (10, 20, 30)).save(path)
    paths = datasets.Dataset.from_dict({"image": ["a.png", "a.png"], "text": ["t", "u"],
                                        "label": [0, 1]})
    ds = vl.from_hf({"train": paths, "validation": paths, "test": paths}, image_size=4,
                    text_dim=D, image_root=tmp_path)
    assert ds.classes == ["0", "1"]
    assert np.allclose(ds.test.inputs["image"][:, 0].numpy(), 10 / 255, atol=1e-6)
    with pytest.raises(VisionLanguageFormatError, match=r"no column 'label'.*label_column="):
        vl.from_hf({"train": paths.rename_column("label", "y"), "test": paths})
    with pytest.raises(VisionLanguageFormatError,
                       match=r"split 'test' row 1, column 'text'.*non-empty text"):
        vl.from_hf({"train": paths, "validation": paths,
                    "test": paths.map(lambda r, i: {"text": "" if i else "t"},
                                      with_indices=True)},
                   image_size=4, text_dim=D, image_root=tmp_path)
    with pytest.raises(VisionLanguageFormatError, match=r"image file .*b\.png is missing"):
        bad = paths.map(lambda r: {"image": "b.png"})
        vl.from_hf({"train": paths, "validation": paths, "test": bad}, image_size=4,
                   text_dim=D, image_root=tmp_path)
    with pytest.raises(VisionLanguageFormatError, match="label 'pizza' is not one of"):
        vl.from_hf({"train": paths.map(lambda r: {"label": "pizza"}),
                    "test": paths.map(lambda r: {"label": "soup"})}, classes=["soup"])
    with pytest.raises(ValueError, match="unknown split 'extra'"):
        vl.from_hf({"train": paths, "test": paths, "extra": paths})


# --------------------------------------------------------------------------- Food101 errors
def _no_csv(root):
    (root / "texts/test_titles.csv").unlink()


def _no_image_folder(root):
    import shutil

    shutil.rmtree(root / "images/test")


def _columns(root):
    rewrite_csv(root / "texts/train_titles.csv", lambda rows: rows[:4] + [rows[4] + ["extra"]]
                + rows[5:])


def _unknown_class(root):
    rewrite_csv(root / "texts/train_titles.csv",
                lambda rows: rows + [["pizza_1.jpg", "a pizza", "pizza"]])


def _missing_image(root):
    (root / "images/train/sushi/sushi_train_001.jpg").unlink()


def _unreadable_image(root):
    (root / "images/test/baklava/baklava_test_002.jpg").write_bytes(b"not a jpeg")


def _truncated_image(root):
    path = root / "images/train/apple_pie/apple_pie_train_004.jpg"
    path.write_bytes(path.read_bytes()[:40])


def _empty_text(root):
    rewrite_csv(root / "texts/test_titles.csv",
                lambda rows: rows[:2] + [[rows[2][0], "  ", rows[2][2]]] + rows[3:])


def _duplicate(root):
    rewrite_csv(root / "texts/train_titles.csv", lambda rows: rows + [rows[0]])


@pytest.mark.parametrize("damage, patterns", [
    (_no_csv, [r"texts/test_titles\.csv is missing", "image_file_name,text,class_name",
               "Kaggle"]),
    (_no_image_folder, [r"images/test is missing", r"images/test/<class_name>/<file>\.jpg"]),
    (_columns, [r"train_titles\.csv line 5: expected 3 fields", "found 4", "Quote a text"]),
    (_unknown_class, [r"train_titles\.csv line 31: class 'pizza' has no image folder",
                      r"images/train/pizza", "add the folder"]),
    (_missing_image, [r"train_titles\.csv line \d+: image file \S+sushi_train_001\.jpg is "
                      "missing", "remove the row"]),
    (_unreadable_image, [r"images/test/baklava/baklava_test_002\.jpg", "cannot read the image",
                         "Fix or replace the image"]),
    (_truncated_image, [r"images/train/apple_pie/apple_pie_train_004\.jpg",
                        "cannot read the image"]),
    (_empty_text, [r"test_titles\.csv line 3: the text of '\S+\.jpg' is empty",
                   "presence masks", "remove the row"]),
    (_duplicate, [r"train_titles\.csv line 31: image \S+ is listed twice", "line \\d+"]),
], ids=["no-csv", "no-image-folder", "columns", "unknown-class", "missing-image", "unreadable",
        "truncated", "empty-text", "duplicate"])
def test_food101_errors_name_the_file_and_the_fix(food, damage, patterns):
    root, _ = food
    damage(root)
    with pytest.raises(VisionLanguageFormatError) as err:
        food101(root)
    for pattern in patterns:
        assert re.search(pattern, str(err.value)), (pattern, str(err.value))


def test_food101_root_errors(tmp_path, food):
    root, _ = food
    with pytest.raises(VisionLanguageFormatError,
                       match=r"root='/path/to/food101'.*UMM_DATA_ROOT=.*Kaggle.*UPMC Food-101"):
        load_dataset("food101")
    with pytest.raises(VisionLanguageFormatError, match="does not exist.*Kaggle"):
        food101(tmp_path / "nope")
    with pytest.raises(VisionLanguageFormatError,
                       match=re.escape(f"pass root='{root}'")):
        food101(tmp_path)  # one folder too high


# --------------------------------------------------------------------------- MM-IMDB
def test_mmimdb_multihot_labels_splits_and_texts(imdb):
    root, movies = imdb
    ds = mmimdb(root)
    assert ds.name == "mmimdb" and ds.multilabel and ds.classes == list(MMIMDB_GENRES)
    assert len(ds.classes) == 23
    assert {k: len(s) for k, s in ds.splits().items()} == {"train": 14, "validation": 4,
                                                           "test": 6}
    for split, key in (("train", "train"), ("validation", "dev"), ("test", "test")):
        part = ds.splits()[split]
        ids = list(part.meta["id"])
        assert ids == sorted(m for m, v in movies.items() if v["split"] == key)
        assert part.labels.shape == (len(part), 23) and part.labels.dtype == torch.float32
        assert part.inputs["image"].shape == (len(part), 3, S, S)
        for movie, text, y in zip(ids, part.meta["text"], part.labels):
            assert text == movies[movie]["plot"][0]  # the first plot
            want = {g for g in movies[movie]["genres"] if g in MMIMDB_GENRES}
            assert {ds.classes[j] for j in torch.nonzero(y).flatten().tolist()} == want
    row = list(ds.train.meta["id"]).index("0000003")  # only 'Reality-TV': all-zero row
    assert float(ds.train.labels[row].sum()) == 0.0
    assert ds.info["format"] == "mmimdb" and ds.info["genres"] == list(MMIMDB_GENRES)
    same(ds, mmimdb(root))
    custom = mmimdb(root, genres=["Horror", "Drama"], limit=3)
    assert custom.classes == ["Horror", "Drama"] and custom.train.labels.shape == (3, 2)
    assert list(custom.train.meta["id"]) == ["0000001", "0000002", "0000003"]
    assert custom.checksum != ds.checksum
    (root / "dataset/0000016.json").write_text(json.dumps(
        {"plot": ["A new plot."], "genres": ["Comedy"]}))
    changed = mmimdb(root)
    assert changed.checksum != ds.checksum
    assert torch.equal(changed.validation.inputs["image"], ds.validation.inputs["image"])
    with pytest.raises(ValueError, match="distinct genre names"):
        mmimdb(root, genres=["Drama", "Drama"])


def _split_missing(root):
    (root / "split.json").unlink()


def _split_keys(root):
    data = json.loads((root / "split.json").read_text())
    data.pop("dev")
    (root / "split.json").write_text(json.dumps(data))


def _id_without_files(root):
    data = json.loads((root / "split.json").read_text())
    data["test"].append("9999999")
    (root / "split.json").write_text(json.dumps(data))


def _no_poster(root):
    (root / "dataset/0000005.jpeg").unlink()


def _bad_json(root):
    (root / "dataset/0000002.json").write_text("{not json")


def _empty_plot(root):
    (root / "dataset/0000017.json").write_text(json.dumps({"plot": [""], "genres": ["Drama"]}))


def _bad_genres(root):
    (root / "dataset/0000020.json").write_text(json.dumps({"plot": ["x"], "genres": "Drama"}))


def _bad_poster(root):
    (root / "dataset/0000002.jpeg").write_bytes(b"\x00" * 20)


@pytest.mark.parametrize("damage, patterns", [
    (_split_missing, [r"split\.json is missing", r'"dev": \[ids\]', "mmimdb.tar.gz"]),
    (_split_keys, [r"split\.json must hold the three keys", r"missing or not a list: \['dev'\]"]),
    (_id_without_files, [r"id '9999999' in \S+split\.json \(split 'test'\) has no file "
                         r"\S+9999999\.json", "remove the id from split.json"]),
    (_no_poster, [r"id '0000005' .* has no file \S+0000005\.jpeg", "Re-extract"]),
    (_bad_json, [r"dataset/0000002\.json is not a readable JSON file", "Re-extract"]),
    (_empty_plot, [r"dataset/0000017\.json: 'plot' must be", "presence masks",
                   "remove the id"]),
    (_bad_genres, [r"dataset/0000020\.json: 'genres' must be a list of strings"]),
    (_bad_poster, [r"dataset/0000002\.jpeg", "cannot read the image"]),
], ids=["no-split", "split-keys", "id-without-files", "no-poster", "bad-json", "empty-plot",
        "bad-genres", "bad-poster"])
def test_mmimdb_errors_name_the_file_and_the_fix(imdb, damage, patterns):
    root, _ = imdb
    damage(root)
    with pytest.raises(VisionLanguageFormatError) as err:
        mmimdb(root)
    for pattern in patterns:
        assert re.search(pattern, str(err.value)), (pattern, str(err.value))


def test_mmimdb_root_errors(tmp_path, imdb):
    root, _ = imdb
    with pytest.raises(VisionLanguageFormatError,
                       match=r"UMM_DATA_ROOT=/path/to/mmimdb.*mmimdb\.tar\.gz"):
        load_dataset("mmimdb")
    with pytest.raises(VisionLanguageFormatError, match=re.escape(f"pass root='{root}'")):
        mmimdb(tmp_path)


# --------------------------------------------------------------------------- with the course
@pytest.mark.parametrize("which", ["food101", "mmimdb"])
def test_end_to_end_ume_missing_protocol_and_feature_cache(which, food, imdb):
    from umm_helpers.core.encoders import TorchvisionEncoder
    from umm_helpers.core.missing import condition_presence, standard_conditions
    from umm_helpers.core.scoring import evaluate
    from umm_helpers.engine.config import TrainConfig
    from umm_helpers.methods.feature_cache import cache_features, freeze
    from umm_helpers.methods.run import run_method

    ds = food101(food[0]) if which == "food101" else mmimdb(imdb[0])
    run = run_method("ume", ds, config=TrainConfig(epochs=2, batch_size=8, seed=0), cache=False)
    scores = run.result["scores"]
    assert set(scores) == {"full", "miss:text", "miss:image"}
    assert run.result["metric"] == ("accuracy" if which == "food101" else "macro_f1")
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert standard_conditions(ds.modalities) == ["full", "miss:image", "miss:text"]
    more = evaluate(run.model, ds.test, ["rate:text:0.5", "rate:any:0.5", "miss:text"])
    assert more["miss:text"] == scores["miss:text"] and all(0 <= v <= 1 for v in more.values())
    present = condition_presence("rate:text:0.5", len(ds.test), ds.modalities)
    assert int(present["text"].sum()) < len(ds.test) and bool(present["image"].all())

    torch.manual_seed(0)
    encoder = freeze(TorchvisionEncoder("resnet18", in_channels=3))
    cached = cache_features(ds, {"image": encoder}, batch_size=16, device="cpu", cache=False)
    assert cached.train.inputs["image"].shape == (len(ds.train), 512)
    assert torch.equal(cached.test.inputs["text"], ds.test.inputs["text"])
    assert list(cached.test.meta["text"]) == list(ds.test.meta["text"])
    assert cached.checksum != ds.checksum and cached.multilabel == ds.multilabel


def test_cli_verifies_and_describes_vision_language_folders(tmp_path, capsys):
    from umm_helpers.tools.cli import main

    write_food101(tmp_path / "food")
    write_mmimdb(tmp_path / "imdb")
    assert main(["data", "verify", "food101", "--root", str(tmp_path / "food")]) == 0
    assert "rows per split: {'train': 30, 'test': 12}" in capsys.readouterr().out
    assert main(["data", "verify", "mmimdb", "--root", str(tmp_path / "imdb")]) == 0
    assert "'train': 14" in capsys.readouterr().out
    assert main(["data", "info", "food101", "--root", str(tmp_path / "food")]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "food101"
    with pytest.raises(SystemExit, match="umm data verify\\|info NAME --root DIR"):
        main(["data", "build", "food101", "--root", str(tmp_path / "food")])
    assert main(["data", "verify", "mmimdb", "--root", str(tmp_path / "nowhere")]) != 0
    assert "nowhere does not exist" in capsys.readouterr().err
