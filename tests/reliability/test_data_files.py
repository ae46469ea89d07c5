"""Data files are checked where they are read: checksum lists, AV-MNIST value ranges, MM-IMDB
ids, AV-Digits labels. Each problem names the file and the fix."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fixtures_avmnist import write_multibench
from fixtures_vision_language import write_mmimdb

from umm_helpers.data import av_digits, avmnist
from umm_helpers.data.checksums import DataIntegrityError, read_sums, verify
from umm_helpers.data.mmimdb import read_mmimdb
from umm_helpers.data.vision_language import VisionLanguageFormatError
from umm_helpers.settings import data_dir
from umm_helpers.tools.cli import main


@pytest.mark.parametrize("line", ["justonefield", "nothex  av-digits/train.parquet",
                                  "0" * 63 + "  short-digest"])
def test_a_malformed_checksum_line_is_named(tmp_path, capsys, line):
    good = (data_dir() / "SHA256SUMS").read_text()
    (tmp_path / "SHA256SUMS").write_text(good + line + "\n")
    number = len(good.splitlines()) + 1
    with pytest.raises(DataIntegrityError, match=rf"SHA256SUMS line {number} is malformed"):
        read_sums(tmp_path)
    with pytest.raises(DataIntegrityError, match="sha256sum"):
        verify(tmp_path, av_digits.FILES, av_digits.REBUILD)
    assert main(["data", "verify", "av-digits", "--out", str(tmp_path)]) == 2
    assert "is malformed" in capsys.readouterr().err


def _float_multibench(root, transform):
    arrays = write_multibench(root, dtype="float32")
    path = root / "audio" / "train_data.npy"
    np.save(path, transform(arrays["audio/train_data.npy"]))
    return path


@pytest.mark.parametrize("transform, fragment", [
    (lambda a: np.where(np.arange(a.shape[0])[:, None, None] == 3, a + 300, a),
     "first out of range in row 3"),
    (lambda a: a - 10.0, "expected values 0..255"),
    (lambda a: a / 255.0, "looks normalised already"),
])
def test_avmnist_values_outside_0_255_or_normalised_are_refused(tmp_path, transform, fragment):
    path = _float_multibench(tmp_path, transform)
    with pytest.raises(avmnist.AVMNISTFormatError, match=fragment) as info:
        avmnist.load(tmp_path)
    assert str(path) in str(info.value)


def test_avmnist_float_files_with_values_0_255_still_load(tmp_path):
    _float_multibench(tmp_path, lambda a: a * 0.999)  # fractions, but in 0..255
    ds = avmnist.load(tmp_path)
    assert float(ds.train.inputs["audio"].max()) <= 1.0


@pytest.mark.parametrize("change, fragment", [
    (lambda s: s["train"].append(s["train"][0]), "more than once"),
    (lambda s: s["test"].append(s["train"][0]), "in both split 'train' and split 'test'"),
    (lambda s: s["dev"].append(s["test"][0]), "in both split 'dev' and split 'test'"),
])
def test_mmimdb_duplicate_and_shared_ids_are_refused(tmp_path, change, fragment):
    write_mmimdb(tmp_path, sizes=(4, 2, 2))
    split = json.loads((tmp_path / "split.json").read_text())
    change(split)
    (tmp_path / "split.json").write_text(json.dumps(split))
    with pytest.raises(VisionLanguageFormatError, match=fragment):
        read_mmimdb(tmp_path)


@pytest.mark.parametrize("bad_label", [10, -1])
def test_av_digits_labels_outside_0_9_are_refused(tmp_path, bad_label):
    shutil.copytree(data_dir() / "av-digits", tmp_path / "av-digits")
    path = tmp_path / "av-digits" / "test.parquet"
    table = pq.read_table(path)
    labels = table.column("label").to_numpy().copy()
    labels[5] = bad_label
    table = table.set_column(table.schema.get_field_index("label"), "label",
                             pa.array(labels, pa.int64()))
    pq.write_table(table, path)
    with pytest.raises(ValueError, match=rf"test\.parquet: labels must be digits 0\.\.9 \(1 rows "
                                         rf"out of range, first row 5 with label {bad_label}\)"):
        av_digits.load(tmp_path, verify_sums=False)
