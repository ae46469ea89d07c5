"""Every method on tiny seeded data: training, presence handling, caching, reuse."""
from __future__ import annotations

import pytest
import torch
from _engine_data import same_weights, three_modal, tiny_dataset
from torch import nn

from umm_helpers.core.encoders import MLPEncoder
from umm_helpers.core.fusion import LateFusionModel
from umm_helpers.engine.config import TrainConfig
from umm_helpers.engine.trainer import classification_loss
from umm_helpers.methods.recipes import distillation_loss
from umm_helpers.methods.registry import METHODS, all_methods
from umm_helpers.methods.run import run_method

CFG = TrainConfig(epochs=2, batch_size=16, device="cpu")


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(autouse=True)
def _env(monkeypatch, runs_root):
    monkeypatch.setenv("UMM_RUNS_DIR", str(runs_root))


def _check_run(run, ds):
    res = run.result
    assert res["method"] and res["checksum"] == ds.checksum
    assert list(res["scores"]) == ["full"] + [f"miss:{m}" for m in ds.modalities]
    assert all(0.0 <= v <= 1.0 for v in res["scores"].values())
    assert sorted(res["sweeps"]) == sorted(ds.modalities + ["any"])
    assert set(res["aurc"]) == set(res["sweeps"]) and res["train_seconds"] > 0
    nothing = {m: torch.zeros(5, dtype=torch.bool) for m in ds.modalities}
    x = {m: ds.test.inputs[m][:5] for m in ds.modalities}
    assert torch.equal(run.model(x, nothing), run.model.prior_logits.expand(5, -1))
    assert not run.model.training


@pytest.mark.parametrize("make", [tiny_dataset, three_modal], ids=["two", "three"])
def test_every_method_trains_scores_and_caches(make):
    ds = make()
    names = all_methods(ds.modalities)
    others = [n for n in METHODS if n != "unimodal"]
    assert names[-len(others):] == others and len(names) == len(others) + len(ds.modalities)
    for name in names:
        run = run_method(name, ds, config=CFG)
        _check_run(run, ds)
        again = run_method(name, ds, config=CFG)
        assert again.cached and again.result == run.result
        assert same_weights(run.model, again.model)
    assert run.result["scores"]["full"] > 0.5  # ume-mma learns (chance is 0.25)


def test_ume_is_the_sum_of_unimodal_models():
    ds = tiny_dataset()
    ume = run_method("ume", ds, config=CFG)
    audio = run_method("unimodal:audio", ds, config=CFG)
    image = run_method("unimodal:image", ds, config=CFG)
    assert audio.cached and image.cached  # trained by ume, reused here
    assert ume.result["scores"]["miss:audio"] == image.result["scores"]["full"]
    assert ume.result["scores"]["miss:image"] == audio.result["scores"]["full"]
    assert ume.result["unimodal_scores"] == {"audio": audio.result["scores"]["full"],
                                             "image": image.result["scores"]["full"]}
    x = {m: ds.test.inputs[m][:7] for m in ds.modalities}
    expected = audio.model(x) + image.model(x)
    assert torch.allclose(ume.model(x), expected, atol=1e-5)


def test_ume_mma_starts_from_cached_unimodal_models_and_fine_tunes():
    ds = tiny_dataset()
    run_method("ume", ds, config=CFG)
    run = run_method("ume-mma", ds, config=CFG)
    reused = [h for h in run.history if "reused" in h]
    assert reused and all(h["reused"] for h in reused)
    assert [h["stage"] for h in run.history if "reused" not in h] == ["finetune"] * 2
    assert run.result["config"]["p_missing"] == 0.5
    ume = run_method("ume", ds, config=CFG)
    assert not same_weights(run.model, ume.model)


def test_training_time_missing_every_method():
    ds = tiny_dataset(seed=1)
    cfg = CFG.replace(keep={"audio": 0.25}, epochs=1)
    for name in all_methods(ds.modalities):
        _check_run(run_method(name, ds, config=cfg, cache=False), ds)
    with pytest.raises(ValueError, match=r"unimodal:audio: only 0 training samples"):
        run_method("unimodal:audio", ds, config=CFG.replace(keep={"audio": 0.0}), cache=False)
    with pytest.raises(ValueError, match=r"TrainConfig.keep names modalities \['video'\]"):
        run_method("joint", ds, config=CFG.replace(keep={"video": 0.5}), cache=False)


def test_unimodal_trains_only_on_present_samples(monkeypatch):
    import umm_helpers.methods.recipes as methods

    seen = []
    real_fit = methods.fit

    def spy(model, data, config, **kw):
        seen.append((len(data[0]), data[0].modalities, dict(config.keep)))
        return real_fit(model, data, config, **kw)

    monkeypatch.setattr(methods, "fit", spy)
    ds = tiny_dataset(seed=2)
    run_method("unimodal:audio", ds, config=CFG.replace(keep={"audio": 0.25}), cache=False)
    assert seen == [(round(0.25 * len(ds.train)), ["audio"], {})]


def test_same_seed_same_weights_without_cache():
    ds = tiny_dataset(seed=3)
    a = run_method("joint-mma", ds, config=CFG, cache=False)
    b = run_method("joint-mma", ds, config=CFG, cache=False)
    c = run_method("joint-mma", ds, config=CFG.replace(seed=1), cache=False)
    assert same_weights(a.model, b.model) and not same_weights(a.model, c.model)
    assert a.path is None


def test_distillation_counts_present_samples_only():
    ds = tiny_dataset()
    torch.manual_seed(0)
    student = LateFusionModel({"audio": MLPEncoder(48), "image": MLPEncoder(16)}, 4,
                              {"audio": 64, "image": 64}).eval()
    teachers = {"audio": MLPEncoder(48).eval(), "image": MLPEncoder(16).eval()}
    x = {m: ds.train.inputs[m][:8] for m in ds.modalities}
    y = ds.train.labels[:8]
    none = {"audio": torch.zeros(8).bool(), "image": torch.ones(8).bool()}
    loss = distillation_loss({"audio": teachers["audio"]}, 10.0)
    assert torch.equal(loss(student, x, none, y), classification_loss(student(x, none), y))
    some = {"audio": torch.tensor([1, 0, 0, 0, 0, 0, 0, 0]).bool(), "image": none["image"]}
    mse = (student.features(x)["audio"][0] - teachers["audio"](x["audio"])[0]).pow(2).mean()
    got = loss(student, x, some, y) - classification_loss(student(x, some), y)
    assert torch.allclose(got, 10.0 * mse, atol=1e-5)


def test_custom_encoders_plug_in_and_change_the_key():
    ds = tiny_dataset()
    default = run_method("joint", ds, config=CFG)

    def small_image() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU())

    custom = run_method("joint", ds, encoders={"image": small_image}, config=CFG)
    assert custom.result["key"] != default.result["key"] and not custom.cached
    assert custom.model.heads["image"].in_features == 8
    module = run_method("joint", ds, encoders={"image": small_image()}, config=CFG)
    assert module.result["key"] not in (default.result["key"], custom.result["key"])
    with pytest.raises(ValueError, match="encoders has modality 'video'"):
        run_method("joint", ds, encoders={"video": small_image}, config=CFG)


def test_unknown_method_lists_available():
    with pytest.raises(ValueError, match=r"unknown method 'late'.*'unimodal:audio'.*'ume-mma'"):
        run_method("late", tiny_dataset(), config=CFG)
    with pytest.raises(ValueError, match="unknown method 'unimodal:video'"):
        run_method("unimodal:video", tiny_dataset(), config=CFG)


def test_interrupted_method_resumes_from_stage_checkpoint(monkeypatch):
    import umm_helpers.methods.recipes as methods

    ds = tiny_dataset(seed=4)
    cfg = CFG.replace(epochs=3)
    reference = run_method("joint", ds, config=cfg, cache=False)
    real_fit = methods.fit

    def crash_after_first_epoch(model, data, config, **kw):
        real_fit(model, data, config.replace(epochs=1), **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(methods, "fit", crash_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_method("joint", ds, config=cfg)
    monkeypatch.setattr(methods, "fit", real_fit)
    run = run_method("joint", ds, config=cfg)
    assert [h["epoch"] for h in run.history] == [1, 2, 3]
    assert same_weights(run.model, reference.model)
    assert not list(run.path.glob("ckpt-*"))


def test_multilabel_methods_use_macro_f1():
    ds = tiny_dataset(multilabel=True)
    for name in ("concat", "ume-mma"):
        run = run_method(name, ds, config=CFG.replace(epochs=1), cache=False)
        assert run.result["metric"] == "macro_f1"
        _check_run(run, ds)


def test_method_options_change_the_run_and_are_checked():
    ds = tiny_dataset()
    base = run_method("ume-mma", ds, config=CFG)
    assert base.result["options"] == {"finetune_lr_scale": 0.3, "finetune_epochs": None,
                                      "mma": "drop-one"}
    short = run_method("ume-mma", ds, config=CFG, options={"finetune_epochs": 1})
    assert short.result["key"] != base.result["key"]
    assert [h["stage"] for h in short.history if "reused" not in h] == ["finetune"]
    with pytest.raises(ValueError, match=r"method 'joint' has no option 'distill_weight'"):
        run_method("joint", ds, config=CFG, options={"distill_weight": 2.0})
    with pytest.raises(ValueError, match=r"option finetune_epochs = 0 of method 'ume-mma'"):
        run_method("ume-mma", ds, config=CFG, options={"finetune_epochs": 0})


def test_pattern_heads_start_as_ume_and_route_every_pattern(monkeypatch):
    """Before fine-tuning, the per-pattern model is exactly ume on every presence pattern."""
    import umm_helpers.methods.recipes as recipes
    from umm_helpers.core.patterns import PatternLogits

    ds = three_modal()
    ume = run_method("ume", ds, config=CFG)  # the uni-modal runs are now in the cache
    monkeypatch.setattr(recipes.Recipe, "fit", lambda self, *a, **k: None)  # no fine-tuning
    start = run_method("pattern-heads", ds, config=CFG, options={"finetune_epochs": 1})
    assert len(start.model.heads) == 7
    a, b = PatternLogits.compute(ume.model, ds.test), PatternLogits.compute(start.model, ds.test)
    assert torch.allclose(a.logits, b.logits, atol=1e-4)


def test_pattern_heads_fine_tune_and_cache():
    ds = tiny_dataset()
    run = run_method("pattern-heads", ds, config=CFG)
    _check_run(run, ds)
    assert [h["stage"] for h in run.history if "reused" not in h] == ["finetune"] * 2
    assert run.result["config"]["p_missing"] == 0.5
    assert run_method("pattern-heads", ds, config=CFG).cached
    other = run_method("pattern-heads", ds, config=CFG.replace(p_missing=0.25))
    assert other.result["key"] != run.result["key"]


@pytest.mark.parametrize("name", ["ume-mma", "joint-mma"])
def test_mma_rule_option_decides_which_patterns_fine_tuning_sees(monkeypatch, name):
    """With three modalities, drop-one MMA never leaves a single modality; ``mma="subsets"``
    does. The rule is part of the run's identity. Notebook 07."""
    import umm_helpers.methods.recipes as recipes
    from umm_helpers.core.missing import mma_presence, presence_to_array

    ds = three_modal()
    seen: dict[str, set[int]] = {}
    presence_fns: list = []
    monkeypatch.setattr(recipes.Recipe, "fit",
                        lambda self, *a, presence_fn=None, **k: presence_fns.append(presence_fn))
    for rule in ("drop-one", "subsets"):
        run_method(name, ds, config=CFG.replace(p_missing=1.0), cache=False,
                   options={"mma": rule})
        fn = presence_fns[-1]  # the last stage: fine-tuning (ume-mma) or the only one
        full = {m: torch.ones(4000, dtype=torch.bool) for m in ds.modalities}
        g = torch.Generator().manual_seed(0)
        # drop-one is the engine's own MMA (no presence_fn)
        out = mma_presence(full, 1.0, g) if fn is None else fn(full, g)
        seen[rule] = set(presence_to_array(out).sum(axis=1).tolist())
    assert seen == {"drop-one": {2}, "subsets": {1, 2}}
    monkeypatch.undo()
    keys = {rule: run_method(name, ds, config=CFG, options={"mma": rule}).result["key"]
            for rule in ("drop-one", "subsets")}
    assert keys["drop-one"] != keys["subsets"]
    assert run_method(name, ds, config=CFG).result["key"] == keys["drop-one"]  # the default
