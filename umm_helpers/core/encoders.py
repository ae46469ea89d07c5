"""Per-modality encoders: any ``nn.Module`` mapping ``[B, ...]`` to ``[B, F]`` plugs in.

Taught in notebook 02 (uni-modal pretraining); notebook 06 swaps in a torchvision backbone.
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from umm_helpers.data import MultiModalDataset

EncoderFactory = Callable[[], nn.Module]


class _HalvePool(nn.Module):
    """Max-pool by 2 along each spatial axis still longer than ``min_size``."""

    def __init__(self, min_size: int) -> None:
        super().__init__()
        self.min_size = int(min_size)

    def forward(self, x: Tensor) -> Tensor:
        kh = 2 if x.shape[-2] > self.min_size else 1
        kw = 2 if x.shape[-1] > self.min_size else 1
        if kh == 1 and kw == 1:
            return x
        return F.max_pool2d(x, (kh, kw), ceil_mode=True)


class ConvEncoder(nn.Module):
    """Small CNN for ``[C, H, W]`` inputs (8x8 digits, 32xT spectrograms, 112x112 images).

    Input BatchNorm, conv-BN-ReLU blocks that halve each spatial axis while it is longer than
    ``grid``, adaptive average pooling to a ``grid x grid`` map (so any input size works and
    coarse position, e.g. the frequency band of a spectrogram, is kept), then a linear layer to
    ``out_features``. ``channels_last`` memory format (on by default) makes these small
    convolutions markedly faster on CPU and GPU. Notebook 02.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (16, 32, 64),
                 out_features: int = 64, grid: int = 4, channels_last: bool = True) -> None:
        super().__init__()
        if in_channels < 1 or not channels or grid < 1:
            raise ValueError("ConvEncoder needs in_channels >= 1, grid >= 1 and at least one "
                             "block.")
        layers: list[nn.Module] = [nn.BatchNorm2d(in_channels)]
        prev = in_channels
        for width in channels:
            layers += [nn.Conv2d(prev, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True), _HalvePool(grid)]
            prev = width
        layers += [nn.AdaptiveAvgPool2d(grid), nn.Flatten(),
                   nn.Linear(prev * grid * grid, out_features), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)
        self.out_features = int(out_features)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)


class MLPEncoder(nn.Module):
    """MLP for vector inputs ``[D]`` (any trailing shape is flattened). Notebook 02."""

    def __init__(self, in_features: int, hidden: Sequence[int] = (128,), out_features: int = 64
                 ) -> None:
        super().__init__()
        if in_features < 1:
            raise ValueError(f"MLPEncoder needs in_features >= 1, got {in_features}.")
        layers: list[nn.Module] = [nn.Flatten(), nn.BatchNorm1d(in_features)]
        prev = in_features
        for width in list(hidden) + [out_features]:
            layers += [nn.Linear(prev, width), nn.ReLU(inplace=True)]
            prev = width
        self.net = nn.Sequential(*layers)
        self.out_features = int(out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


# a Conv2d's size attributes are 2-tuples (torch annotates them as tuple[int, ...])
_Pair = tuple[int, int]


def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    """Swap the first ``Conv2d`` for one taking ``in_channels`` (pretrained: mean-init)."""
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                if child.in_channels == in_channels:
                    return
                new = nn.Conv2d(in_channels, child.out_channels,
                                cast(_Pair, child.kernel_size), cast(_Pair, child.stride),
                                cast("str | _Pair", child.padding), cast(_Pair, child.dilation),
                                child.groups, child.bias is not None, child.padding_mode)
                with torch.no_grad():
                    mean = child.weight.mean(dim=1, keepdim=True)
                    new.weight.copy_(mean.expand_as(new.weight) * (child.in_channels / in_channels))
                    if child.bias is not None:
                        assert new.bias is not None  # built with bias=True just above
                        new.bias.copy_(child.bias)
                setattr(parent, child_name, new)
                return
    raise ValueError(f"{type(model).__name__} has no Conv2d layer to adapt.")


class TorchvisionEncoder(nn.Module):
    """A torchvision classification backbone as a feature encoder (notebook 06).

    The first convolution is replaced to accept ``in_channels`` and the classifier is dropped.
    Pretrained weights are used only when ``weights`` is given (e.g. ``"IMAGENET1K_V1"``);
    nothing is downloaded otherwise.
    """

    def __init__(self, name: str = "resnet18", in_channels: int = 3,
                 weights: str | None = None) -> None:
        super().__init__()
        import torchvision

        self.backbone = torchvision.models.get_model(name, weights=weights)
        _replace_first_conv(self.backbone, in_channels)
        self.out_features: int | None = None
        for attr in ("fc", "classifier", "head", "heads"):
            head = getattr(self.backbone, attr, None)
            if isinstance(head, nn.Module):
                linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
                if linears:
                    self.out_features = int(linears[0].in_features)
                setattr(self.backbone, attr, nn.Identity())
                break
        self.name = name

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(self.backbone(x), 1)


def default_encoder(sample_shape: Sequence[int]) -> nn.Module:
    """ConvEncoder for ``[C, H, W]`` samples, MLPEncoder for ``[D]`` (or flattened ``[T, D]``)."""
    shape = tuple(int(s) for s in sample_shape)
    if len(shape) == 3:
        return ConvEncoder(in_channels=shape[0])
    if len(shape) in (1, 2):
        return MLPEncoder(in_features=int(torch.Size(shape).numel()))
    raise ValueError(f"no default encoder for sample shape {shape}: pass encoders="
                     "{modality: factory} with a module mapping [B, ...] to [B, F].")


def default_encoders(dataset: MultiModalDataset) -> dict[str, EncoderFactory]:
    """``{modality: factory}`` of default encoders for a data set (notebook 02)."""
    return {m: functools.partial(default_encoder, tuple(dataset.train.inputs[m].shape[1:]))
            for m in dataset.modalities}


_CPU = torch.device("cpu")


def module_device(module: nn.Module, default: torch.device | None = _CPU
                  ) -> torch.device | None:
    """The device of ``module``'s first parameter or buffer, else ``default``."""
    for t in itertools.chain(module.parameters(), module.buffers()):
        return t.device
    return default


def freeze(module: nn.Module) -> nn.Module:
    """Put ``module`` in eval mode with ``requires_grad=False`` everywhere; return it."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def feature_dim(module: nn.Module, sample_shape: Sequence[int]) -> int:
    """Feature size F of ``module``, found by a dry forward pass on two zero samples."""
    device = module_device(module)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.zeros((2, *sample_shape), device=device))
    finally:
        module.train(was_training)
    if out.ndim != 2 or out.shape[0] != 2:
        raise ValueError(f"encoder {type(module).__name__} maps a batch of shape "
                         f"{(2, *sample_shape)} to {tuple(out.shape)}; an encoder must return "
                         "[B, F] features.")
    return int(out.shape[1])
