"""A user's own encoder class is the documented extension point: classes calling ``super()``,
``functools.partial`` of them and lambdas capturing local classes all get a stable identity and
train, with or without the run cache."""
from __future__ import annotations

import functools

import pytest
from torch import nn

from umm_helpers.engine.config import TrainConfig
from umm_helpers.methods.identity import encoder_identity
from umm_helpers.methods.run import run_method


class MyEncoder(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(width), nn.ReLU())

    def forward(self, x):
        return self.net(x)


class Wider(MyEncoder):
    def __init__(self):
        super().__init__(width=12)


def _local_factory(width: int):
    class Local(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(width))

        def forward(self, x):
            return self.net(x)

    return lambda: Local()


FACTORIES = {
    "class with super()": MyEncoder,
    "subclass": Wider,
    "partial": functools.partial(MyEncoder, width=6),
    "lambda over a local class": _local_factory(5),
}


@pytest.mark.parametrize("label", sorted(FACTORIES))
def test_identity_of_user_factories_is_stable_and_distinct(label):
    factory = FACTORIES[label]
    first = encoder_identity(factory)
    assert first == encoder_identity(factory) and " at 0x" not in first
    others = {encoder_identity(f) for k, f in FACTORIES.items() if k != label}
    assert first not in others
    assert encoder_identity(_local_factory(5)) != encoder_identity(_local_factory(7))


def test_a_self_referencing_function_has_an_identity():
    def make():
        return make if False else MyEncoder()

    assert encoder_identity(make) == encoder_identity(make)


@pytest.mark.parametrize("cache", [False, True])
def test_user_factories_train_with_and_without_the_cache(ds, cpu, cache):
    cfg = TrainConfig(epochs=1, batch_size=16)
    encoders = {"image": FACTORIES["class with super()"],
                "audio": FACTORIES["lambda over a local class"]}
    run = run_method("joint", ds, encoders=encoders, config=cfg, cache=cache)
    assert 0 <= run.result["scores"]["full"] <= 1
    if cache:
        assert run_method("joint", ds, encoders=encoders, config=cfg).cached
