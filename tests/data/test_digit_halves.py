"""Digit-Halves: two halves of one handwritten digit sharing a stain; checksums and rebuild."""
import shutil

import numpy as np
import pytest

from umm_helpers.data import digit_halves, load_dataset
from umm_helpers.data.checksums import DataIntegrityError
from umm_helpers.settings import data_dir


@pytest.fixture(scope="module")
def ds():
    return load_dataset("digit-halves")


def test_shapes_sizes_and_labels(ds):
    from sklearn.datasets import load_digits

    assert ds.modalities == ["left", "right"] and ds.num_classes == 10
    assert [len(s) for s in ds.splits().values()] == [1078, 269, 450]
    digits = load_digits()
    idx = np.concatenate([s.meta["digit_index"] for s in ds.splits().values()])
    assert sorted(idx.tolist()) == list(range(1797))
    for s in ds.splits().values():
        assert s.inputs["left"].shape[1:] == (1, 8, 4)
        assert np.array_equal(digits.target[s.meta["digit_index"]], s.labels.numpy())


def test_halves_come_from_one_instance_and_share_the_stain(ds):
    """left - right equals the clean halves' difference up to the independent sensor noise:
    the stain cancels; each half alone is far from its clean image (the stain stays)."""
    from sklearn.datasets import load_digits

    cfg = digit_halves.BuildConfig()
    clean = load_digits().images[ds.test.meta["digit_index"]] / 16.0
    left, right = (ds.test.inputs[m][:, 0].numpy() for m in ("left", "right"))
    residual = (left - right) - (clean[:, :, :4] - clean[:, :, 4:])
    assert residual.std() == pytest.approx(np.sqrt(2) * cfg.noise, rel=0.05)
    stain = left - clean[:, :, :4]
    assert stain.std() == pytest.approx(np.hypot(cfg.stain, cfg.noise), rel=0.05)


def test_corrupt_file_names_the_file_and_the_fix(tmp_path):
    shutil.copytree(data_dir(), tmp_path / "d")
    (tmp_path / "d" / "digit-halves" / "test.parquet").write_bytes(b"oops")
    with pytest.raises(DataIntegrityError, match=r"digit-halves/test.parquet.*umm data build"):
        digit_halves.load(tmp_path / "d")


def test_rebuild_gives_the_shipped_arrays(tmp_path):
    shutil.copytree(data_dir(), tmp_path / "d")
    digit_halves.build(tmp_path / "d")
    for rel in digit_halves.FILES:
        got = digit_halves.read_split(tmp_path / "d" / rel)
        want = digit_halves.read_split(data_dir() / rel)
        assert got.keys() == want.keys()
        assert all(np.array_equal(got[k], want[k]) for k in want), rel
    assert (tmp_path / "d" / "SHA256SUMS").read_text() == (data_dir() / "SHA256SUMS").read_text()
