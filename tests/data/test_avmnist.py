"""AV-MNIST: the MultiBench-format loader, the deterministic builders and the SMIL variant.

Everything runs on tiny synthetic files in the real formats (tests/fixtures_avmnist.py).
"""
import hashlib
import json

import numpy as np
import pytest
import torch
from fixtures_avmnist import (
    write_fsdd,
    write_idx,
    write_mnist,
    write_multibench,
    write_sources,
)

from umm_helpers.data import available_datasets, avmnist, load_dataset
from umm_helpers.data import avmnist_build as ab
from umm_helpers.data.avmnist import AVMNISTFormatError
from umm_helpers.tools.cli import main


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- loader
@pytest.fixture()
def mb(tmp_path):
    root = tmp_path / "avmnist"
    return root, write_multibench(root)


def test_registry_names():
    assert {"avmnist", "avmnist-smil"} <= set(available_datasets())


def test_load_shapes_scaling_and_split_rule(mb):
    root, arrays = mb
    ds = load_dataset("avmnist", root=root)
    assert ds.name == "avmnist" and ds.modalities == ["audio", "image"]
    assert ds.classes == [str(d) for d in range(10)]
    assert {k: len(s) for k, s in ds.splits().items()} == {"train": 22, "validation": 2, "test": 10}
    assert ds.train.inputs["image"].shape == (22, 1, 28, 28)
    assert ds.train.inputs["audio"].shape == (22, 1, 112, 112)
    assert ds.test.inputs["audio"].shape == (10, 1, 112, 112)
    for split in ds.splits().values():
        for x in split.inputs.values():
            assert x.dtype == torch.float32
    img = arrays["image/train_data.npy"].astype(np.float32).reshape(24, 1, 28, 28) / 255.0
    aud = arrays["audio/train_data.npy"].astype(np.float32)[:, None] / 255.0
    assert np.array_equal(ds.train.inputs["image"].numpy(), img[:22])
    assert np.array_equal(ds.validation.inputs["image"].numpy(), img[22:])
    assert np.array_equal(ds.validation.inputs["audio"].numpy(), aud[22:])
    assert np.array_equal(ds.test.labels.numpy(), arrays["test_labels.npy"])
    assert ds.train.labels.dtype == torch.long
    assert ds.validation.meta["source_row"].tolist() == [22, 23]
    assert ds.checksum == load_dataset("avmnist", root=root).checksum != ""


def test_validation_rows_rule():
    assert avmnist.validation_rows(60_000) == 5_000
    assert avmnist.validation_rows(24) == 2
    assert avmnist.validation_rows(18) == 2  # 1.5 rounds up
    assert avmnist.validation_rows(6) == 1
    assert avmnist.validation_rows(2) == 1


def test_chunked_conversion_matches_whole(mb, monkeypatch):
    root, arrays = mb
    whole = load_dataset("avmnist", root=root)
    monkeypatch.setattr(avmnist, "CHUNK_BYTES", 3 * 112 * 112 * 4)  # 3 audio rows per chunk
    chunked = load_dataset("avmnist", root=root)
    for name, split in whole.splits().items():
        for m in split.modalities:
            assert torch.equal(split.inputs[m], chunked.splits()[name].inputs[m])
    assert whole.checksum == chunked.checksum


def test_root_from_env_and_clear_error_without(mb, monkeypatch):
    root, _ = mb
    monkeypatch.setenv("UMM_DATA_ROOT", str(root))
    assert len(load_dataset("avmnist").test) == 10
    monkeypatch.delenv("UMM_DATA_ROOT")
    with pytest.raises(AVMNISTFormatError, match="UMM_DATA_ROOT=/path/to/avmnist"):
        load_dataset("avmnist")
    with pytest.raises(AVMNISTFormatError, match="does not exist"):
        load_dataset("avmnist", root=root / "nope")


def test_float_sources_are_accepted_and_checked_for_nan(tmp_path):
    arrays = write_multibench(tmp_path, dtype="float32")
    ds = load_dataset("avmnist", root=tmp_path)
    assert np.allclose(ds.test.inputs["image"].numpy().reshape(10, 784),
                       arrays["image/test_data.npy"] / 255.0)
    bad = arrays["audio/train_data.npy"].copy()
    bad[3, 5, 7] = np.nan
    np.save(tmp_path / "audio/train_data.npy", bad)
    with pytest.raises(AVMNISTFormatError, match=r"audio/train_data\.npy contains 1 NaN .*row 3"):
        load_dataset("avmnist", root=tmp_path)


def _missing(root):
    (root / "audio/test_data.npy").unlink()


def _shape(root):
    np.save(root / "image/train_data.npy", np.zeros((24, 28, 28), np.uint8))


def _dtype(root):
    np.save(root / "audio/test_data.npy", np.zeros((10, 112, 112), np.int16))


def _label_range(root):
    np.save(root / "train_labels.npy", np.arange(24) % 11)


def _label_dtype(root):
    np.save(root / "test_labels.npy", np.full(10, 2.5))


def _counts(root):
    np.save(root / "train_labels.npy", np.arange(23) % 10)


def _corrupt(root):
    (root / "image/test_data.npy").write_bytes(b"not numpy")


@pytest.mark.parametrize("damage, patterns", [
    (_missing, [r"audio/test_data\.npy is missing", r"\(N, 112, 112\)", "umm data build avmnist"]),
    (_shape, [r"image/train_data\.npy has shape \(24, 28, 28\)", r"\(N, 784\)"]),
    (_dtype, [r"audio/test_data\.npy has dtype int16", "uint8 or float32 or float64"]),
    (_label_range, [r"train_labels\.npy: labels must lie in 0\.\.9", "from 0 to 10",
                    "2 rows out of range"]),
    (_label_dtype, [r"test_labels\.npy: float labels must be whole numbers 0\.\.9",
                    r"shape \(N,\) with dtype integer"]),
    (_counts, ["train files disagree", r"image/train_data\.npy: 24 rows",
               r"audio/train_data\.npy: 24 rows", r"train_labels\.npy: 23 rows"]),
    (_corrupt, [r"image/test_data\.npy is not a readable \.npy array", r"\(N, 784\)"]),
], ids=["missing", "shape", "dtype", "label-range", "label-dtype", "counts", "corrupt"])
def test_bad_files_are_named_with_what_was_expected(mb, damage, patterns):
    root, _ = mb
    damage(root)
    with pytest.raises(AVMNISTFormatError) as err:
        load_dataset("avmnist", root=root)
    import re

    for pattern in patterns:
        assert re.search(pattern, str(err.value)), (pattern, str(err.value))
    with pytest.raises(AVMNISTFormatError):
        avmnist.check_files(root)


# --------------------------------------------------------------------------- sources
def test_idx_roundtrip_plain_and_gz(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(ab.read_idx(write_idx(tmp_path / "a", a)), a)
    assert np.array_equal(ab.read_idx(write_idx(tmp_path / "b", a, gz=True)), a)
    (tmp_path / "c").write_bytes((tmp_path / "a").read_bytes()[:-1])
    with pytest.raises(ab.SourceError, match="truncated"):
        ab.read_idx(tmp_path / "c")


def test_fsdd_listing_is_sorted_and_ignores_other_files(tmp_path):
    write_fsdd(tmp_path)
    recs = ab.list_fsdd(tmp_path)
    assert len(recs) == 60
    keys = [(r.digit, r.speaker, r.index) for r in recs]
    assert keys == sorted(keys) and keys[0] == (0, "alice", 0)


def test_esc50_listing_reads_the_csv(tmp_path):
    from fixtures_avmnist import write_esc50

    write_esc50(tmp_path, meta=False)
    clips = ab.list_esc50(tmp_path)
    assert [p.name for p in clips] == sorted(p.name for p in clips) and len(clips) == 3
    (clips[1]).unlink()
    with pytest.raises(ab.SourceError, match="1 of them missing"):
        ab.list_esc50(tmp_path)


def test_download_only_when_absent_and_allowed(tmp_path, monkeypatch):
    import urllib.request

    calls = []

    def fake_mnist(root, train, download):
        calls.append((root, train, download))
        write_mnist(tmp_path / "src", 1, 1)

    def no_network(*args, **kwargs):
        raise AssertionError("the network must not be used")

    monkeypatch.setattr(ab, "_torchvision_mnist", lambda: fake_mnist)
    monkeypatch.setattr(urllib.request, "urlretrieve", no_network)
    with pytest.raises(ab.SourceError, match="--download"):
        ab.ensure_mnist(tmp_path / "src", download=False)
    assert calls == []
    ab.ensure_mnist(tmp_path / "src", download=True)
    assert [c[1:] for c in calls] == [(True, True), (False, True)]
    calls.clear()
    write_fsdd(tmp_path / "src")
    ab.download_sources(tmp_path / "src")  # everything present: nothing is fetched
    assert calls == []


# --------------------------------------------------------------------------- PCA rule
def test_pca_rule_counts_components():
    ratio = np.array([0.1] * 10)
    assert ab.PCARule("variance", 0.25).n_components(ratio) == 3
    assert ab.PCARule("variance", 0.2).n_components(ratio) == 2  # exactly reached: stop
    assert ab.PCARule("variance", 1.0).n_components(ratio) == 10
    assert ab.PCARule("components", 196).n_components(ratio) == 10
    assert ab.PCARule("components", 4).n_components(ratio) == 4
    assert ab.PCARule("none").n_components(ratio) == 10
    for kind, value in [("variance", 0.0), ("variance", 1.5), ("components", 0),
                        ("components", 2.5), ("other", 1)]:
        with pytest.raises(ValueError):
            ab.PCARule(kind, value)


def test_pca_is_fit_on_train_only_and_projects():
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((2, 16))
    train = 100 + rng.standard_normal((200, 2)) @ basis * 20
    mean, comps, ratio = ab.fit_pca(train, ab.PCARule("components", 2))
    assert comps.shape == (2, 16) and ratio[:2].sum() > 0.999
    assert np.allclose(comps @ comps.T, np.eye(2))
    test = 100 + rng.standard_normal((5, 2)) @ basis * 20
    out = ab.apply_pca(test, mean, comps)
    assert out.dtype == np.uint8 and np.abs(out.astype(float) - np.clip(test, 0, 255)).max() <= 0.51
    mean2, comps2, _ = ab.fit_pca(train, ab.PCARule("variance", 0.25))
    assert len(comps2) == 1 and np.allclose(mean2, train.mean(axis=0))


# --------------------------------------------------------------------------- MultiBench builder
@pytest.fixture(scope="module")
def source(tmp_path_factory):
    src = tmp_path_factory.mktemp("avmnist-src")
    return src, write_sources(src, train_per_class=10, test_per_class=5)


def test_build_is_deterministic_and_loads(source, tmp_path):
    src, mnist = source
    cfg = ab.BuildConfig(noise=True, pca=ab.PCARule("variance", 0.5))
    a = ab.build(tmp_path / "a", src, cfg, progress=False)
    ab.build(tmp_path / "b", src, cfg, progress=False)
    assert [p.relative_to(tmp_path / "a").as_posix() for p in a] == [
        *avmnist.MULTIBENCH_FILES, "build_info.json"]
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert not list((tmp_path / "a").rglob("*.tmp"))
    ab.build(tmp_path / "c", src, ab.BuildConfig(noise=True, seed=1, pca=ab.PCARule("none")),
             progress=False)
    key = "audio/train_data.npy"
    assert digest(tmp_path / "c")[key] != digest(tmp_path / "a")[key]
    ds = load_dataset("avmnist", root=tmp_path / "a")
    assert {k: len(s) for k, s in ds.splits().items()} == {"train": 92, "validation": 8, "test": 50}
    assert np.array_equal(np.load(tmp_path / "a/train_labels.npy"), mnist["train"][1])
    info = json.loads((tmp_path / "a/build_info.json").read_text())
    assert info["config"]["noise"] and info["sources"]["esc50_clips"] == 3
    assert info["sources"]["fsdd_recordings"] == 60 and info["rows"] == {"train": 100, "test": 50}
    mean, comps, _ = ab.fit_pca(mnist["train"][0], cfg.pca)
    assert info["pca_components"] == len(comps) < 784
    assert np.array_equal(np.load(tmp_path / "a/image/test_data.npy"),
                          ab.apply_pca(mnist["test"][0], mean, comps))


def test_build_pairs_audio_by_label_with_fsdd_split(source, tmp_path):
    src, mnist = source
    cfg = ab.BuildConfig(pca=ab.PCARule("none"))
    ab.build(tmp_path, src, cfg, progress=False)
    specs = {}
    for r in ab.list_fsdd(src):
        spec = ab.spectrogram_112(ab.load_speech(r.path, cfg.clip_samples)[0], cfg)
        specs[spec.tobytes()] = r
    for split in ("train", "test"):
        audio = np.load(tmp_path / f"audio/{split}_data.npy")
        assert audio.shape == (len(mnist[split][1]), 112, 112) and audio.dtype == np.uint8
        assert np.array_equal(np.load(tmp_path / f"image/{split}_data.npy"),
                              mnist[split][0].reshape(-1, 784))
        used = [specs[row.tobytes()] for row in audio]
        assert [r.digit for r in used] == mnist[split][1].tolist()
        assert all((r.index < 5) == (split == "test") for r in used)
        assert audio.std() > 10  # a real spectrogram, not a constant


def test_spectrogram_shape_rule():
    wave_ = np.sin(np.arange(8000) * 0.3)
    spec = ab.spectrogram_112(wave_)
    assert spec.shape == (112, 112) and spec.dtype == np.uint8
    assert abs(int(np.argmax(spec.sum(axis=1))) - 0.3 / (2 * np.pi) * 222) <= 1
    with pytest.raises(ValueError, match=r"\(112, 112\)"):
        ab.spectrogram_112(wave_, ab.BuildConfig(hop=80))


# --------------------------------------------------------------------------- SMIL variant
@pytest.fixture(scope="module")
def smil(tmp_path_factory):
    src = tmp_path_factory.mktemp("smil-src")
    mnist = write_sources(src, train_per_class=125, test_per_class=50, noise=False)
    root = tmp_path_factory.mktemp("smil")
    ab.build_smil(root, src, progress=False)
    return src, mnist, root


def test_smil_sizes_shapes_and_determinism(smil, tmp_path):
    src, _, root = smil
    ds = load_dataset("avmnist-smil", root=root)
    assert {k: len(s) for k, s in ds.splits().items()} == {"train": 1050, "validation": 150,
                                                           "test": 450}
    for split, per_class in (("train", 105), ("validation", 15), ("test", 45)):
        assert np.bincount(ds.splits()[split].labels.numpy()).tolist() == [per_class] * 10
    assert ds.train.inputs["image"].shape[1:] == (1, 28, 28)
    assert ds.train.inputs["audio"].shape[1:] == (1, 20, 20)
    mfcc = ds.train.inputs["audio"].numpy()
    assert np.allclose(mfcc.mean(axis=(0, 1, 3)), 0, atol=1e-3)
    ab.build_smil(tmp_path, src, progress=False)
    assert digest(tmp_path) == digest(root)


def test_smil_pairs_by_label_from_disjoint_pools(smil):
    src, mnist, root = smil
    cfg = ab.SMILConfig()
    by_image = {}
    for split in ("train", "test"):
        for img, y in zip(*mnist[split]):
            by_image[img.tobytes()] = (split, int(y))
    recs = ab.list_fsdd(src)
    info = json.loads((root / "build_info.json").read_text())
    mu = np.array(info["mfcc_mean"])[:, None]
    sd = np.array(info["mfcc_std"])[:, None]
    feats = np.stack([(ab.mfcc(ab.load_speech(r.path, cfg.clip_samples)[0], cfg) - mu) / sd
                      for r in recs])
    names = {}
    for split in ("train", "validation", "test"):
        images = np.load(root / f"image/{split}_data.npy")
        audio = np.load(root / f"audio/{split}_data.npy")
        labels = np.load(root / f"{split}_labels.npy")
        source_split = "test" if split == "test" else "train"
        assert all(by_image[im.tobytes()] == (source_split, int(y))
                   for im, y in zip(images, labels))
        error = np.stack([np.abs(audio - f).reshape(len(audio), -1).max(axis=1) for f in feats],
                         axis=1)
        best = error.argmin(axis=1)
        assert error[np.arange(len(audio)), best].max() < 1e-3
        assert [recs[k].digit for k in best] == labels.tolist()
        names[split] = {recs[k].path.name for k in best}
    assert not names["train"] & names["test"] and not names["validation"] & names["test"]
    assert not names["train"] & names["validation"]


def test_smil_severely_missing_setting():
    from umm_helpers.core.missing import training_presence
    from umm_helpers.engine.config import TrainConfig

    assert avmnist.severe_keep(15) == {"audio": 15 / 105}
    for per_class, kept in ((15, 150), (21, 210)):
        keep = avmnist.severe_keep(per_class)
        TrainConfig(keep=keep).validate()
        present = training_presence(1050, ["audio", "image"], keep, seed=0)
        assert int(present["audio"].sum()) == kept and bool(present["image"].all())
    with pytest.raises(ValueError):
        avmnist.severe_keep(106)


# --------------------------------------------------------------------------- CLI
def test_cli_builds_verifies_and_describes(source, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UMM_PROGRESS", "0")
    src, _ = source
    root = tmp_path / "avmnist"
    assert main(["data", "build", "avmnist", "--root", str(root), "--source", str(src)]) == 0
    assert "image/train_data.npy" in capsys.readouterr().out
    assert main(["data", "verify", "avmnist", "--root", str(root)]) == 0
    assert "avmnist" in capsys.readouterr().out
    assert main(["data", "info", "avmnist", "--root", str(root)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sizes"] == {"train": 92, "validation": 8, "test": 50}
    (root / "test_labels.npy").unlink()
    assert main(["data", "verify", "avmnist", "--root", str(root)]) == 2
    assert "test_labels.npy is missing" in capsys.readouterr().err


def test_cli_builds_smil_and_reports_missing_sources(smil, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UMM_PROGRESS", "0")
    src, _, _ = smil
    root = tmp_path / "smil"
    assert main(["data", "build", "avmnist-smil", "--root", str(root), "--source", str(src)]) == 0
    capsys.readouterr()
    assert main(["data", "info", "avmnist-smil", "--root", str(root)]) == 0
    assert json.loads(capsys.readouterr().out)["sizes"]["test"] == 450
    assert main(["data", "build", "avmnist", "--root", str(tmp_path / "x"),
                 "--source", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "MNIST is missing" in err and "--download" in err


def test_whole_number_float_labels_are_accepted(mb):
    root, _ = mb
    labels = np.load(root / "test_labels.npy")
    np.save(root / "test_labels.npy", labels.astype(np.float64))
    ds = load_dataset("avmnist", root=root)
    assert ds.test.labels.dtype == torch.long
    assert ds.test.labels.tolist() == labels.tolist()
