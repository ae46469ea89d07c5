"""Encoders: shapes, defaults, feature-dimension inference, torchvision adapter."""
from __future__ import annotations

import pytest
import torch
from _engine_data import three_modal
from torch import nn

from umm_helpers.core.encoders import (
    ConvEncoder,
    MLPEncoder,
    TorchvisionEncoder,
    default_encoder,
    default_encoders,
    feature_dim,
)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 32, 47), (3, 112, 112), (2, 1, 50)])
def test_conv_encoder_any_spatial_size(shape):
    enc = ConvEncoder(in_channels=shape[0])
    out = enc(torch.randn(3, *shape))
    assert out.shape == (3, 64) and enc.out_features == 64
    assert isinstance(enc.net[0], nn.BatchNorm2d)


def test_conv_encoder_halves_only_down_to_the_grid():
    enc = ConvEncoder(1, channels=(4, 4, 4), grid=4, channels_last=False)
    sizes = []
    for layer in enc.net:
        if type(layer).__name__ == "_HalvePool":
            layer.register_forward_hook(lambda mod, inp, out: sizes.append(tuple(out.shape[2:])))
    enc(torch.randn(2, 1, 8, 8))
    assert sizes == [(4, 4), (4, 4), (4, 4)]
    sizes.clear()
    enc(torch.randn(2, 1, 32, 50))
    assert sizes == [(16, 25), (8, 13), (4, 7)]


def test_mlp_encoder_and_defaults():
    assert MLPEncoder(12)(torch.randn(4, 12)).shape == (4, 64)
    assert isinstance(default_encoder((1, 8, 8)), ConvEncoder)
    assert isinstance(default_encoder((12,)), MLPEncoder)
    assert default_encoder((5, 6))(torch.randn(2, 5, 6)).shape == (2, 64)
    with pytest.raises(ValueError, match="no default encoder for sample shape"):
        default_encoder((1, 2, 3, 4))


def test_default_encoders_are_fresh_per_call():
    ds = three_modal()
    factories = default_encoders(ds)
    assert sorted(factories) == ["audio", "image", "text"]
    a, b = factories["image"](), factories["image"]()
    assert a is not b and isinstance(factories["text"](), MLPEncoder)


def test_feature_dim_dry_run_keeps_mode():
    enc = ConvEncoder(1, channels=(8, 16), out_features=24)
    enc.train()
    assert feature_dim(enc, (1, 8, 8)) == 24
    assert enc.training
    assert feature_dim(nn.Sequential(nn.Flatten(), nn.Linear(6, 5)), (2, 3)) == 5
    with pytest.raises(ValueError, match=r"must return \[B, F\]"):
        feature_dim(nn.Identity(), (1, 8, 8))


def test_torchvision_adapter_any_channel_count():
    enc = TorchvisionEncoder("resnet18", in_channels=1)
    assert enc.backbone.conv1.in_channels == 1
    assert enc.out_features == 512
    assert enc(torch.randn(2, 1, 32, 32)).shape == (2, 512)
    assert feature_dim(enc, (1, 32, 32)) == 512
