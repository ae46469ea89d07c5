"""The frozen-encoder feature cache: exact features, reuse from disk, training on the vectors."""
from __future__ import annotations

import pytest
import torch
from _engine_data import tiny_dataset
from torch import nn

from umm_helpers.core.encoders import ConvEncoder, MLPEncoder, TorchvisionEncoder
from umm_helpers.engine.config import TrainConfig
from umm_helpers.methods.feature_cache import (
    cache_features,
    encode,
    feature_path,
    freeze,
)
from umm_helpers.methods.run import run_method


def _encoders(seed: int = 0) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    return {"audio": ConvEncoder(channels=(4, 8), out_features=12),
            "image": ConvEncoder(channels=(4,), out_features=10)}


def _direct(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    was = encoder.training
    encoder.eval()
    with torch.no_grad():
        out = encoder(x)
    encoder.train(was)
    return out


def _calls(encoder: nn.Module) -> list[int]:
    counter: list[int] = []
    encoder.register_forward_hook(lambda *_: counter.append(1))
    return counter


def test_cached_features_equal_a_direct_forward_pass(tmp_path):
    ds = tiny_dataset()
    enc = _encoders()
    enc["image"].train()
    cached = cache_features(ds, enc, batch_size=32, device="cpu")
    assert cached.modalities == ds.modalities and cached.name == ds.name
    assert cached.checksum != ds.checksum and cached.info["base_checksum"] == ds.checksum
    for k, split in cached.splits().items():
        for m, width in (("audio", 12), ("image", 10)):
            feats = split.inputs[m]
            assert feats.shape == (len(split), width) and feats.dtype == torch.float32
            expected = _direct(enc[m], ds.splits()[k].inputs[m])
            torch.testing.assert_close(feats, expected, rtol=1e-5, atol=1e-6)
        assert torch.equal(split.labels, ds.splits()[k].labels)
    assert enc["image"].training, "the encoder's training flag is restored"
    info = cached.info["features"]
    for m in ("audio", "image"):
        path = tmp_path / "runs" / "features" / "tiny" / f"{info[m]['key']}.safetensors"
        assert info[m]["path"] == str(path) and path.exists() and not info[m]["loaded"]
    assert not list((tmp_path / "runs").rglob("*.tmp")), "temp files left behind"


def test_second_call_loads_from_disk_without_the_encoder():
    ds = tiny_dataset()
    enc = _encoders()
    first = cache_features(ds, enc, device="cpu")
    calls = {m: _calls(e) for m, e in enc.items()}
    second = cache_features(ds, enc, device="cpu")
    assert all(not c for c in calls.values()), "encoder called although features were on disk"
    assert all(r["loaded"] for r in second.info["features"].values())
    assert second.checksum == first.checksum
    for k in ("train", "validation", "test"):
        for m in ds.modalities:
            assert torch.equal(first.splits()[k].inputs[m], second.splits()[k].inputs[m])
    # other weights, another key: computed again
    other = _encoders(seed=1)
    counter = _calls(other["image"])
    third = cache_features(ds, {"image": other["image"]}, device="cpu")
    assert counter and not third.info["features"]["image"]["loaded"]
    assert third.info["features"]["image"]["key"] != first.info["features"]["image"]["key"]
    assert torch.equal(third.train.inputs["audio"], ds.train.inputs["audio"]), "untouched"
    # cache=False never touches the disk; refresh=True recomputes
    assert cache_features(ds, enc, device="cpu", cache=False).info["features"]["audio"][
        "path"] is None
    assert not cache_features(ds, enc, device="cpu", refresh=True).info["features"]["audio"][
        "loaded"]


def test_corrupt_cache_file_is_recomputed():
    ds = tiny_dataset()
    enc = _encoders()
    first = cache_features(ds, {"image": enc["image"]}, device="cpu")
    path = first.info["features"]["image"]["path"]
    with open(path, "wb") as f:
        f.write(b"not a safetensors file")
    with pytest.warns(UserWarning, match="unreadable"):
        again = cache_features(ds, {"image": enc["image"]}, device="cpu")
    assert not again.info["features"]["image"]["loaded"]
    assert torch.equal(again.test.inputs["image"], first.test.inputs["image"])


def test_torchvision_resnet18_features():
    ds = tiny_dataset({"audio": (6,), "image": (1, 16, 16)}, n=(8, 4, 4), noise=0.5)
    torch.manual_seed(0)
    resnet = freeze(TorchvisionEncoder("resnet18", in_channels=1, weights=None))
    cached = cache_features(ds, {"image": resnet}, batch_size=3, device="cpu")
    for k, split in cached.splits().items():
        assert split.inputs["image"].shape == (len(split), 512)
        torch.testing.assert_close(split.inputs["image"],
                                   _direct(resnet, ds.splits()[k].inputs["image"]),
                                   rtol=1e-4, atol=1e-5)
    counter = _calls(resnet)
    assert cache_features(ds, {"image": resnet}, device="cpu").info["features"]["image"]["loaded"]
    assert not counter


def test_a_method_trains_on_cached_features():
    ds = tiny_dataset()
    cached = cache_features(ds, _encoders(), device="cpu")
    cfg = TrainConfig(epochs=3, batch_size=16, device="cpu")
    run = run_method("ume-mma", cached, config=cfg)
    assert isinstance(run.model.encoders["image"], MLPEncoder)
    assert list(run.result["scores"]) == ["full", "miss:audio", "miss:image"]
    assert run.result["checksum"] == cached.checksum
    assert run.result["scores"]["full"] > 0.4  # chance is 0.25
    again = run_method("ume-mma", cache_features(ds, _encoders(), device="cpu"), config=cfg)
    assert again.cached


class _Lengths(nn.Module):
    """A toy 'text encoder' reading strings from split.meta['text']."""

    meta_key = "text"

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, texts):
        lengths = torch.tensor([[float(len(t)), float(t.count(" "))] for t in texts])
        return lengths.to(self.scale.device) * self.scale


def test_encoder_reading_metadata_strings():
    ds = tiny_dataset({"audio": (4,), "text": (3,)}, n=(10, 4, 6))
    for split in ds.splits().values():
        split.meta["text"] = [f"sample {i} " + "x" * i for i in range(len(split))]
    cached = cache_features(ds, {"text": _Lengths()}, batch_size=4, device="cpu")
    assert cached.test.inputs["text"].shape == (6, 2)
    assert cached.test.inputs["text"][3].tolist() == [float(len("sample 3 xxx")), 2.0]
    assert cached.train.meta["text"] == ds.train.meta["text"]


def test_errors_are_clear():
    ds = tiny_dataset()
    with pytest.raises(ValueError, match="encoders has modalities"):
        cache_features(ds, {"video": nn.Identity()})
    with pytest.raises(ValueError, match=r"\[B, F\]"):
        encode(nn.Identity(), ds.train.inputs["image"], device="cpu")
    with pytest.raises(TypeError, match="nn.Module"):
        cache_features(ds, {"image": 3})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="lacks"):
        cache_features(ds, {"image": _Lengths()})  # reads meta['text'], which tiny lacks
    assert feature_path("a:b", {"x": 1}).parent.name == "a_b"
