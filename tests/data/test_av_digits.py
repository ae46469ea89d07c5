"""The embedded AV-Digits data set: contents, integrity checks and deterministic rebuild."""
import os
import shutil

import numpy as np
import pytest
import torch

from umm_helpers.data import av_digits, load_dataset
from umm_helpers.data.checksums import DataIntegrityError
from umm_helpers.settings import data_dir


@pytest.fixture(scope="module")
def ds():
    return load_dataset("av-digits")


def test_shapes_sizes_and_ranges(ds):
    assert ds.modalities == ["audio", "image"]
    assert sum(len(s) for s in ds.splits().values()) == 1797
    assert ds.train.inputs["image"].shape[1:] == (1, 8, 8)
    assert ds.train.inputs["audio"].shape[1:] == (1, 32, 32)
    assert ds.classes == list(av_digits.WORDS)
    for split in ds.splits().values():
        for x in split.inputs.values():
            assert x.dtype == torch.float32 and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
        assert split.meta["waveform"].shape == (len(split), 6000)


def test_every_sklearn_digit_used_once_with_its_label(ds):
    from sklearn.datasets import load_digits

    target = load_digits().target
    idx = np.concatenate([s.meta["image_index"] for s in ds.splits().values()])
    assert sorted(idx.tolist()) == list(range(1797))
    for s in ds.splits().values():
        assert np.array_equal(target[s.meta["image_index"]], s.labels.numpy())


def test_splits_stratified(ds):
    for s in ds.splits().values():
        counts = np.bincount(s.labels.numpy(), minlength=10)
        share = counts / counts.sum()
        assert share.min() > 0.08 and share.max() < 0.12


def test_speaker_independent(ds):
    variants = {k: set(s.meta["variant"].tolist()) for k, s in ds.splits().items()}
    speakers = {k: set(s.meta["speaker"].tolist()) for k, s in ds.splits().items()}
    for a, b in [("train", "test"), ("validation", "test"), ("train", "validation")]:
        assert not variants[a] & variants[b], f"voice variants shared by {a} and {b}"
        assert not speakers[a] & speakers[b]
    assert len(variants["test"]) >= 10 and len(variants["train"]) >= 25


def test_waveform_decodes_and_matches_spectrogram(ds):
    from umm_helpers.data import audio

    cfg = av_digits.BuildConfig()
    wave = av_digits.waveform(ds.test, 5)
    assert wave.dtype == np.float32 and wave.shape == (6000,) and np.abs(wave).max() <= 0.95
    spec = audio.quantize(audio.log_mel_db(wave, cfg.rate, cfg.n_mels, cfg.n_fft, cfg.hop),
                          *cfg.db_range)
    stored = (ds.test.inputs["audio"][5, 0].numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(spec, stored)


def test_checksum_of_loaded_data_is_stable(ds):
    assert ds.checksum == load_dataset("av-digits").checksum != ""


@pytest.fixture()
def data_copy(tmp_path):
    shutil.copytree(data_dir(), tmp_path / "data")
    return tmp_path / "data"


def test_corrupt_file_names_file_hashes_and_fix(data_copy):
    path = data_copy / "av-digits" / "test.parquet"
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataIntegrityError) as err:
        load_dataset("av-digits", root=data_copy)
    msg = str(err.value)
    assert str(path) in msg and "expected sha256" in msg and "actual" in msg
    assert "make data" in msg


def test_missing_file_is_named(data_copy):
    (data_copy / "av-digits" / "validation.parquet").unlink()
    with pytest.raises(DataIntegrityError, match=r"validation\.parquet is missing .*make data"):
        load_dataset("av-digits", root=data_copy)


def test_missing_sums_file(data_copy):
    (data_copy / "SHA256SUMS").unlink()
    with pytest.raises(DataIntegrityError, match="SHA256SUMS is missing"):
        load_dataset("av-digits", root=data_copy)


def espeak_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("UMM_REQUIRE_ESPEAK") == "1"


@pytest.mark.slow
def test_rebuild_is_identical_to_shipped(tmp_path):
    if shutil.which("espeak-ng") is None:
        if espeak_required():
            pytest.fail("espeak-ng is required here (CI) to run the rebuild test: "
                        "apt-get install espeak-ng")
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    av_digits.build(tmp_path, progress=False)
    for rel in av_digits.FILES:
        new = av_digits.read_split(tmp_path / rel)
        old = av_digits.read_split(data_dir() / rel)
        assert new.keys() == old.keys()
        for key in old:
            assert np.array_equal(new[key], old[key]), f"{rel}: column {key} differs"
    assert (tmp_path / "SHA256SUMS").exists()
    assert not list(tmp_path.rglob("*.tmp")), "temp files left behind"
