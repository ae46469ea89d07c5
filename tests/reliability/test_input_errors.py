"""Bad input gets a named error before any work: labels, dtypes, class names, label kinds,
devices and encoder factories (``from_arrays``, ``TrainConfig``, ``run_method``)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from umm_helpers.data import MultiModalDataset
from umm_helpers.data.dataset import MAX_INFERRED_CLASSES
from umm_helpers.engine.config import TrainConfig
from umm_helpers.methods.run import run_method


def _split(n=6, labels=None, **inputs):
    x = inputs or {"image": np.arange(n * 3, dtype=np.float32).reshape(n, 3)}
    return x, (np.arange(n) % 2 if labels is None else labels)


def _make(train=None, validation=None, test=None, **kw):
    return MultiModalDataset.from_arrays(train or _split(), validation or _split(),
                                         test or _split(), **kw)


def test_one_huge_label_is_refused_before_any_class_name_is_built():
    labels = np.array([0, 1, 2, 3_000_000, 1, 0])
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"split 'train'.*3000001 classes.*MAX_INFERRED_CLASSES"):
        _make(train=_split(labels=labels))
    assert time.perf_counter() - start < 1.0
    # naming the classes is the fix; a label outside them is still an error naming the split
    with pytest.raises(ValueError, match=r"split 'train': labels must lie in \[0, 3\]"):
        _make(train=_split(labels=labels), classes=["a", "b", "c", "d"])
    assert MAX_INFERRED_CLASSES >= 1000


@pytest.mark.parametrize("train_kind, test_kind", [("multi", "single"), ("single", "multi")])
def test_label_kind_must_agree_between_splits(train_kind, test_kind):
    multi = np.eye(6, 2, dtype=np.float32)
    single = np.arange(6) % 2
    pick = {"multi": multi, "single": single}
    with pytest.raises(ValueError, match=r"split '(validation|test)' has .* labels but split "
                                         r"'train' has .* labels"):
        _make(train=_split(labels=pick[train_kind]), validation=_split(labels=pick[test_kind]),
              test=_split(labels=pick[test_kind]))
    # and the splits of a data set built by hand are checked too
    good = _make()
    other = _make(train=_split(labels=multi), validation=_split(labels=multi),
                  test=_split(labels=multi))
    with pytest.raises(ValueError, match="same kind of labels"):
        MultiModalDataset(good.train, good.validation, other.test)


def test_multilabel_columns_must_agree_between_splits():
    with pytest.raises(ValueError, match=r"split 'test' has multi-label \[N, 3\] labels"):
        _make(train=_split(labels=np.eye(6, 2)), validation=_split(labels=np.eye(6, 2)),
              test=_split(labels=np.eye(6, 3)))


@pytest.mark.parametrize("values, fragment", [
    (np.array([["a", "b", "c"]] * 6), "holds strings"),
    (np.array([[object()] * 3] * 6, dtype=object), "holds Python objects"),
    (np.ones((6, 3), dtype=np.complex64), "holds complex numbers"),
    (torch.ones(6, 3, dtype=torch.complex64), "holds complex numbers"),
    ([[1.0, 2.0], [3.0]] * 3, "not a rectangular array"),
    (np.zeros((6, 0), dtype=np.float32), "no values per sample"),
])
def test_inputs_that_are_not_real_numbers_are_named(values, fragment):
    with pytest.raises(ValueError, match=rf"split 'train': modality 'image' .*{fragment}"):
        _make(train=_split(image=values))


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int16, np.uint8, np.bool_])
def test_real_inputs_of_any_dtype_become_float32_with_their_values(dtype):
    values = (np.arange(18).reshape(6, 3) % 3).astype(dtype)
    ds = _make(train=_split(image=values))
    assert ds.train.inputs["image"].dtype == torch.float32
    assert np.array_equal(ds.train.inputs["image"].numpy(), values.astype(np.float32))


def test_bfloat16_tensors_become_float32_and_train(cpu):
    x = torch.randn(8, 3).to(torch.bfloat16)
    y = torch.arange(8) % 2
    ds = MultiModalDataset.from_arrays(({"image": x}, y), ({"image": x}, y), ({"image": x}, y))
    assert ds.train.inputs["image"].dtype == torch.float32
    assert torch.equal(ds.train.inputs["image"], x.float())
    run = run_method("unimodal:image", ds, config=TrainConfig(epochs=1, batch_size=4),
                     cache=False)
    assert run.result["scores"]["full"] >= 0


@pytest.mark.parametrize("classes, error, fragment", [
    ("abc", TypeError, "classes must be a list of class names"),
    (["a", "a"], ValueError, r"classes names some classes more than once \(\['a'\]\)"),
    ([0, 1], TypeError, "classes must hold non-empty strings"),
    ([], ValueError, "classes is empty"),
])
def test_class_names_are_checked(classes, error, fragment):
    with pytest.raises(error, match=fragment):
        _make(classes=classes)


@pytest.mark.parametrize("name", ["", 3, None])
def test_the_data_set_name_is_checked(name):
    with pytest.raises(TypeError, match="name must be a non-empty string"):
        _make(name=name)


@pytest.mark.parametrize("device, fragment", [
    ("tpu", r"TrainConfig\.device = 'tpu' is invalid"),
    (3, r"TrainConfig\.device = 3 is invalid"),
    ("cuda:99", r"TrainConfig\.device = 'cuda:99' but"),
])
def test_a_device_this_machine_lacks_is_named_before_any_work(ds, device, fragment):
    with pytest.raises(ValueError, match=fragment):
        run_method("unimodal:image", ds, config=TrainConfig(epochs=1, device=device))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_says_so(ds, monkeypatch):
    with pytest.raises(ValueError, match=r"TrainConfig\.device = 'cuda' but no CUDA GPU.*'cpu'"):
        TrainConfig(device="cuda").validate()
    monkeypatch.setenv("UMM_DEVICE", "cuda")  # the environment switch is checked as well
    with pytest.raises(ValueError, match=r"UMM_DEVICE = 'cuda' but no CUDA GPU"):
        run_method("unimodal:image", ds, config=TrainConfig(epochs=1))
    monkeypatch.setenv("UMM_DEVICE", "tpu")
    with pytest.raises(ValueError, match=r"UMM_DEVICE = 'tpu' is not a device"):
        run_method("unimodal:image", ds, config=TrainConfig(epochs=1))


def test_an_encoder_factory_returning_no_module_is_named(ds, cpu):
    cfg = TrainConfig(epochs=1, batch_size=16)
    with pytest.raises(TypeError, match=r"encoders\['image'\] returned int; an encoder factory "
                                        "must return an nn.Module"):
        run_method("unimodal:image", ds, encoders={"image": lambda: 3}, config=cfg, cache=False)
    with pytest.raises(TypeError, match=r"encoders\['image'\] is str"):
        run_method("unimodal:image", ds, encoders={"image": "resnet"}, config=cfg, cache=False)
