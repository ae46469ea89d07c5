"""Names are data, not paths: a data set, method or modality name maps to one folder inside its
root (run cache, feature cache, ``compare``'s tables, ``umm run``'s result), checkpoints are only
cleared inside the cache, and files named by Food101 / MM-IMDB rows lie inside the data folder."""
from __future__ import annotations

import csv
import json

import pytest
from fixtures_vision_language import write_food101, write_mmimdb
from torch import nn

from umm_helpers.data import MultiModalDataset
from umm_helpers.data.food101 import read_food101
from umm_helpers.data.mmimdb import read_mmimdb
from umm_helpers.data.vision_language import VisionLanguageFormatError
from umm_helpers.engine.config import TrainConfig
from umm_helpers.methods.cache import RunCache
from umm_helpers.methods.compare import compare
from umm_helpers.methods.feature_cache import cache_features
from umm_helpers.methods.run import run_method
from umm_helpers.settings import folder_name, is_inside
from umm_helpers.tools.cli import result_path

ESCAPES = ["../../escape", "/tmp/absolute", "..", ".", "a/../../b", "x\\..\\y", "名前 with space"]


def _files_under(path):
    return sorted(p for p in path.rglob("*") if p.is_file())


@pytest.fixture
def deep_runs(tmp_path, monkeypatch):
    """The runs folder two levels down, so that '../../x' from it would still be in tmp_path."""
    runs = tmp_path / "a" / "b" / "runs"
    monkeypatch.setenv("UMM_RUNS_DIR", str(runs))
    return runs


@pytest.mark.parametrize("name", ESCAPES)
def test_folder_name_never_leaves_its_root(name, tmp_path):
    folder = tmp_path / folder_name(name)
    assert folder.parent == tmp_path and folder.name not in ("", ".", "..")
    assert is_inside(folder, tmp_path)
    assert folder_name(name) == folder_name(name)
    assert len({folder_name(n) for n in ESCAPES}) == len(ESCAPES)  # distinct names stay distinct


def test_plain_names_keep_their_folder():
    assert folder_name("av-digits") == "av-digits"
    assert folder_name("unimodal:image") == "unimodal_image"


def test_a_data_set_named_like_a_path_stays_in_the_runs_folder(ds, cpu, deep_runs, tmp_path):
    bad = MultiModalDataset(ds.train, ds.validation, ds.test, name="../../escape")
    cfg = TrainConfig(epochs=1, batch_size=16)
    run = run_method("unimodal:image", bad, config=cfg)
    assert is_inside(run.path, deep_runs / "cache")
    frozen = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    feats = cache_features(bad, {"image": frozen}, device="cpu")
    assert is_inside(feats.info["features"]["image"]["path"], deep_runs / "features")
    table = compare(bad.name, "unimodal:image", [0], dataset=bad, config=cfg)
    assert is_inside(table.csv_path, deep_runs) and is_inside(table.markdown_path, deep_runs)
    assert is_inside(result_path(bad.name, "unimodal:image", 0), deep_runs)
    assert not (tmp_path / "a" / "escape").exists() and not (tmp_path / "escape").exists()
    assert all(is_inside(p, deep_runs) for p in _files_under(tmp_path))


def test_checkpoints_are_only_cleared_inside_the_cache(tmp_path):
    cache = RunCache(tmp_path / "cache")
    outside = tmp_path / "elsewhere"
    (outside / "ckpt-keep").mkdir(parents=True)
    with pytest.raises(ValueError, match="not inside the run cache"):
        cache.clear_checkpoints(outside)
    with pytest.raises(ValueError, match="not inside the run cache"):
        cache.clear_checkpoints(cache.root / ".." / "elsewhere")
    assert (outside / "ckpt-keep").is_dir()
    inside = cache.folder("../../elsewhere", "joint", "k")
    assert is_inside(inside, cache.root)


def _rewrite_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


@pytest.mark.parametrize("file", ["../../../secret.jpg", "../test/sushi/x.jpg", "/etc/hostname"])
def test_food101_rows_cannot_name_files_outside_the_data_folder(tmp_path, file):
    root = tmp_path / "food"
    rows = write_food101(root, train_per_class=2, test_per_class=1)
    (tmp_path / "secret.jpg").write_bytes((root / "images" / "train" / rows["train"][0][2]
                                           / rows["train"][0][0]).read_bytes())
    _rewrite_csv(root / "texts" / "train_titles.csv",
                 [(file, "a title", rows["train"][0][2])] + [list(r) for r in rows["train"][1:]])
    with pytest.raises(VisionLanguageFormatError, match="not a relative path inside"):
        read_food101(root)


@pytest.mark.parametrize("movie", ["../../secret", "/tmp/secret", "sub/0000001"])
def test_mmimdb_ids_cannot_name_files_outside_the_data_folder(tmp_path, movie):
    root = tmp_path / "mmimdb"
    write_mmimdb(root, sizes=(3, 1, 1))
    split = json.loads((root / "split.json").read_text())
    split["train"].append(movie)
    (root / "split.json").write_text(json.dumps(split))
    with pytest.raises(VisionLanguageFormatError, match="not plain file names"):
        read_mmimdb(root)

