"""Linear probes on frozen encoder features (notebook 02)."""
import numpy as np
import pytest
import torch
from torch import nn

from umm_helpers.core.fusion import LateFusionModel
from umm_helpers.course import probes
from umm_helpers.data import MultiModalDataset


@pytest.fixture(scope="module")
def ds():
    rng = np.random.default_rng(0)

    def part(n):
        y = np.arange(n) % 3
        signal = np.eye(3)[y][:, :, None] * 3.0  # class one-hot in the first 3 features
        vec = np.concatenate([signal, rng.normal(size=(n, 5, 1))], axis=1)[:, :, 0]
        return {"a": vec.astype(np.float32), "b": rng.normal(size=(n, 8)).astype(np.float32)}, y

    return MultiModalDataset.from_arrays(part(90), part(30), part(60), classes=["x", "y", "z"])


def late_model(seed=0):
    torch.manual_seed(seed)
    enc = {m: nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU()) for m in "ab"}
    return LateFusionModel(enc, 3, {"a": 16, "b": 16})


def test_encoder_features_shape_state_and_no_change(ds):
    model = late_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    feats = probes.encoder_features(model, ds.train, "a")
    assert feats.shape == (90, 16) and feats.dtype == np.float64
    assert model.training and model.encoders["a"].training, "train/eval state restored"
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed (BatchNorm stats must not update)"
    direct = probes.encoder_features(model.encoders["a"], ds.train, "a", batch_size=7)
    np.testing.assert_allclose(direct, feats, rtol=1e-6, atol=1e-6)


def test_linear_probe_separable_vs_noise(ds):
    y_tr, y_te = ds.train.labels.numpy(), ds.test.labels.numpy()
    def probe(m):
        x_tr, x_te = ds.train.inputs[m].numpy(), ds.test.inputs[m].numpy()
        return probes.linear_probe(x_tr, y_tr, x_te, y_te)

    good, noise = probe("a"), probe("b")
    assert good == 1.0
    assert noise < 0.6
    again = probe("a")
    assert again == good, "deterministic"


def test_probe_accuracy_on_a_model(ds):
    model = late_model()
    acc_a = probes.probe_accuracy(model, ds, "a")
    acc_b = probes.probe_accuracy(model, ds, "b")
    assert 0.0 <= acc_b <= acc_a <= 1.0
    assert acc_a > 0.8, "a random ReLU layer keeps the linear signal of modality a"


def test_errors_name_the_problem(ds):
    model = late_model()
    with pytest.raises(ValueError, match="no encoder for modality 'c'"):
        probes.encoder_features(model, ds.train, "c")
    with pytest.raises(TypeError, match="nn.Module"):
        probes.encoder_features("not a model", ds.train, "a")
    with pytest.raises(ValueError, match="same F"):
        probes.linear_probe(np.zeros((4, 2)), np.zeros(4), np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="single-label"):
        probes.linear_probe(np.zeros((4, 2)), np.zeros((4, 2)), np.zeros((4, 2)), np.zeros(4))
