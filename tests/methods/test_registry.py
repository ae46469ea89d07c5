"""The registry: methods as data, and what reads it."""
from __future__ import annotations

import pytest

from umm_helpers.engine.config import TrainConfig
from umm_helpers.methods.registry import (
    METHODS,
    all_methods,
    get_method,
    method_colors,
    method_config,
    method_options,
)


def test_every_method_is_described_completely():
    for name, method in METHODS.items():
        assert method.name == name and method.summary and method.notebook
        assert method.architecture in ("late", "concat", "early", "patterns")
        assert method.color.startswith("#") and callable(method.train)
    assert {n for n, m in METHODS.items() if m.uses_mma} == {"joint-mma", "ume-mma",
                                                             "pattern-heads"}
    assert {n for n, m in METHODS.items() if m.uses_unimodal} == {"ume", "umt", "ume-mma",
                                                                  "pattern-heads"}
    assert len({m.color for m in METHODS.values()}) == len(METHODS)


def test_method_config_uses_the_mma_default_only_where_mma_is_used():
    c = TrainConfig(p_missing=0.2)
    assert method_config("joint", c).p_missing is None
    assert method_config("joint-mma", TrainConfig()).p_missing == 0.5
    assert method_config("ume-mma", c).p_missing == 0.2
    assert method_config("ume", c) == method_config("unimodal:audio", c)


def test_options_have_defaults_and_checks():
    assert method_options("umt", None) == {"distill_weight": 1.0}
    assert method_options("ume-mma", {"finetune_epochs": 3}) == {
        "finetune_lr_scale": 0.3, "finetune_epochs": 3, "mma": "drop-one"}
    assert method_options("joint-mma", {"mma": "subsets"}) == {"mma": "subsets"}
    with pytest.raises(ValueError, match=r"option mma = 'any' .* one of \['drop-one', 'subsets'\]"):
        method_options("ume-mma", {"mma": "any"})
    with pytest.raises(ValueError, match=r"method 'ume' has no option 'mma'"):
        method_options("ume", {"mma": "subsets"})
    assert method_options("unimodal:audio", {}) == {}
    with pytest.raises(ValueError, match=r"has no option 'lr'; its options: none"):
        method_options("joint", {"lr": 1.0})
    with pytest.raises(ValueError, match=r"distill_weight = -1 .* expected a number >= 0"):
        method_options("umt", {"distill_weight": -1})


def test_lookup_names_and_modalities():
    assert get_method("unimodal:image", ["audio", "image"])[1] == ["image"]
    assert get_method("ume", ["audio", "image"])[1] == ["audio", "image"]
    with pytest.raises(ValueError, match=r"unknown method 'unimodal'"):
        get_method("unimodal", ["audio"])
    names = all_methods(["image", "audio"])
    assert names[:2] == ["unimodal:audio", "unimodal:image"] and "unimodal" not in names
    colors = method_colors(names)
    assert colors["unimodal:audio"] == METHODS["unimodal"].color != colors["unimodal:image"]
    assert len(set(colors.values())) == len(names)
