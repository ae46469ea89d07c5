"""The data contract: MultiModalDataset.from_arrays and its errors."""
import numpy as np
import pytest
import torch

from umm_helpers.data import MultiModalDataset, load_dataset


def arrays(n=20, seed=0, d=4):
    rng = np.random.default_rng(seed)
    return ({"image": rng.normal(size=(n, 1, 3, 3)), "audio": rng.normal(size=(n, d))},
            rng.integers(0, 3, size=n))


def make(**over):
    parts = {"train": arrays(20, 0), "validation": arrays(8, 1), "test": arrays(10, 2)}
    parts.update(over)
    return MultiModalDataset.from_arrays(**parts, classes=["a", "b", "c"])


def test_from_arrays_builds_float_tensors_and_long_labels():
    ds = make()
    assert ds.modalities == ["audio", "image"]
    assert len(ds.train) == 20 and len(ds.validation) == 8 and len(ds.test) == 10
    assert ds.train.inputs["image"].dtype == torch.float32
    assert ds.train.labels.dtype == torch.long
    assert ds.classes == ["a", "b", "c"] and ds.num_classes == 3
    assert ds.summary()["shapes"] == {"audio": [4], "image": [1, 3, 3]}


def test_checksum_is_stable_and_data_sensitive():
    assert make().checksum == make().checksum
    x, y = arrays(20, 0)
    x["audio"][0, 0] += 1.0
    assert make(train=(x, y)).checksum != make().checksum


def test_to_device_and_subset_keep_alignment():
    ds = make().to("cpu")
    sub = ds.test.subset([3, 1])
    assert torch.equal(sub.labels, ds.test.labels[[3, 1]])
    assert torch.equal(sub.inputs["audio"], ds.test.inputs["audio"][[3, 1]])


def test_default_class_names_and_multilabel():
    rng = np.random.default_rng(0)
    part = lambda n: ({"text": rng.normal(size=(n, 5))}, rng.integers(0, 2, size=(n, 4)))
    ds = MultiModalDataset.from_arrays(part(6), part(3), part(3))
    assert ds.multilabel and ds.classes == ["0", "1", "2", "3"]
    assert ds.train.labels.dtype == torch.float32


def test_different_sample_counts_are_named():
    x, y = arrays(20)
    x["audio"] = x["audio"][:19]
    with pytest.raises(ValueError, match=r"split 'train': modalities have different sample "
                                         r"counts \(audio: 19, image: 20; labels: 20\)"):
        make(train=(x, y))


def test_labels_out_of_range():
    x, y = arrays(20)
    y[4] = 7
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\] for 3 classes, found "
                                         r"values from 0 to 7"):
        make(train=(x, y))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_names_modality_and_sample(bad):
    x, y = arrays(10, 2)
    x["image"][6, 0, 1, 1] = bad
    with pytest.raises(ValueError, match=r"split 'test': modality 'image' contains 1 NaN or "
                                         r"inf values \(first in sample 6\)"):
        make(test=(x, y))


def test_empty_split():
    x, y = arrays(0)
    with pytest.raises(ValueError, match="split 'validation' is empty"):
        make(validation=(x, y))


def test_modality_missing_from_one_split():
    x, y = arrays(10)
    del x["audio"]
    with pytest.raises(ValueError, match=r"split 'test' has modalities \['image'\] but split "
                                         r"'train' has \['audio', 'image'\] "
                                         r"\(missing: \['audio'\]"):
        make(test=(x, y))


def test_shape_mismatch_between_splits():
    x, y = arrays(10, d=5)
    with pytest.raises(ValueError, match="modality 'audio' has sample shape"):
        make(test=(x, y))


@pytest.mark.parametrize("name", ["Image", "a:b", "any", ""])
def test_bad_modality_names(name):
    x, y = arrays(5)
    x[name] = x.pop("audio")
    with pytest.raises(ValueError, match="modality name"):
        make(test=(x, y))


def test_unknown_dataset_lists_available():
    with pytest.raises(ValueError, match=r"unknown data set 'nope'; available: \[.*'av-digits'"):
        load_dataset("nope")
