"""The explorer's pure recombination (notebook 05): tiny seeded data, untrained tiny models."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from _engine_data import late_model, three_modal, tiny_dataset
from matplotlib.figure import Figure

from umm_helpers.core.missing import MaskTable, array_to_presence
from umm_helpers.core.scoring import evaluate, predict_logits, score_logits
from umm_helpers.course import explorer as ex
from umm_helpers.engine.config import TrainConfig
from umm_helpers.tools.bench import untrained_models


@pytest.fixture(autouse=True)
def _cpu(cpu):
    """Numbers here are pinned on the CPU."""


def _model(ds, seed):
    model = late_model(ds, seed)
    model.set_prior(ds.train.labels)
    return model.eval()


@pytest.fixture(scope="module")
def ds():
    return tiny_dataset()


@pytest.fixture(scope="module")
def models(ds):
    return {("joint", None): _model(ds, 0), ("ume-mma", 0.0): _model(ds, 1),
            ("ume-mma", 0.5): _model(ds, 2)}


@pytest.fixture(scope="module")
def data(ds, models):
    return ex.ExplorerData.from_models(models, ds.test)


def test_data_describes_the_runs(data, ds):
    assert data.methods == ["joint", "ume-mma"]
    assert data.p_values == [0.0, 0.5]
    assert data.modalities == ("audio", "image")
    assert data.classes == ds.classes and len(data.labels) == len(ds.test)
    assert ex.run_label(("ume-mma", 0.5)) == "ume-mma (p=0.5)"
    assert ex.run_label(("joint", None)) == "joint"


def test_resolve_ignores_p_for_methods_without_mma_and_falls_back(data):
    assert data.resolve("joint", 0.25) == ("joint", None)
    assert data.resolve("ume-mma", 0.0) == ("ume-mma", 0.0)
    assert data.resolve("ume-mma", 0.25) == ("ume-mma", 0.5)
    assert data.resolve("ume-mma", None) == ("ume-mma", 0.5)
    with pytest.raises(ValueError, match="unknown method 'umt'"):
        data.resolve("umt", 0.5)


def test_rates_are_checked(data):
    assert data.check_rates({"audio": 0.2}) == {"audio": 0.2, "image": 0.0}
    with pytest.raises(ValueError, match="rates name modalities"):
        data.check_rates({"text": 0.1})
    with pytest.raises(ValueError, match="outside"):
        data.check_rates({"audio": 1.5})


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.7, 1.0])
def test_single_modality_rate_matches_evaluate(data, ds, models, rate):
    for key, model in models.items():
        expected = evaluate(model, ds.test, [f"rate:audio:{rate:g}"], seed=0)
        assert data.accuracy(key, {"audio": rate}) == pytest.approx(
            expected[f"rate:audio:{rate:g}"])


@pytest.mark.parametrize("rates", [{"audio": 0.3, "image": 0.6}, {"audio": 1.0, "image": 1.0},
                                   {"audio": 0.5, "image": 1.0}])
def test_two_rates_match_running_the_model_on_the_same_masks(data, ds, models, rates):
    table = MaskTable.create(len(ds.test), ds.modalities, 0)
    pres = table.rates_presence(rates)
    state = ex.explore(data, rates, "ume-mma", 0.0)
    for method, key in [("joint", ("joint", None)), ("ume-mma", ("ume-mma", 0.0))]:
        logits = predict_logits(models[key], ds.test, array_to_presence(pres, ds.modalities))
        assert state.accuracies[method] == pytest.approx(score_logits(logits, ds.test.labels))
        if method == "ume-mma":
            assert np.array_equal(state.predictions, logits.argmax(dim=1).numpy())
    assert np.array_equal(state.presence, pres)


def test_state_is_consistent(data, ds):
    state = ex.explore(data, {"audio": 0.4, "image": 0.25}, "joint", 0.5)
    n = len(ds.test)
    cm = state.confusion
    assert cm.shape == (ds.num_classes, ds.num_classes) and cm.sum() == n
    assert np.array_equal(cm.sum(axis=1), np.bincount(ds.test.labels.numpy(),
                                                       minlength=ds.num_classes))
    assert np.trace(cm) / n == pytest.approx(state.accuracy)
    assert state.accuracy == pytest.approx(float((state.predictions == state.labels).mean()))
    assert np.array_equal(ex.predictions(data, state.rates, "joint"), state.predictions)
    assert ex.accuracies(data, state.rates, 0.5) == state.accuracies
    lost = state.lost
    assert lost["audio"] == int((~state.presence[:, 0]).sum())
    assert lost["all"] == int((~state.presence).all(axis=1).sum())
    assert state.run_labels == {"joint": "joint", "ume-mma": "ume-mma (p=0.5)"}


def test_curves_pass_through_the_current_point(data):
    rates = {"audio": 0.35, "image": 0.6}
    state = ex.explore(data, rates, "ume-mma", 0.0)
    assert list(state.curve_rates[:3]) == [0.0, 0.05, 0.1] and state.curve_rates[-1] == 1.0
    for mod, r in rates.items():
        i = int(np.argmin(np.abs(state.curve_rates - r)))
        assert state.curves[mod]["ume-mma"][i] == pytest.approx(state.accuracy)
        for m in data.methods:
            assert len(state.curves[mod][m]) == len(state.curve_rates)
    # the image curve at image rate 0 is the audio-only sweep point
    assert state.curves["image"]["joint"][0] == pytest.approx(
        data.accuracy(("joint", None), {"audio": 0.35}))


def test_losing_every_modality_gives_the_training_prior(data, ds):
    state = ex.explore(data, {"audio": 1.0, "image": 1.0}, "joint")
    majority = int(np.bincount(ds.train.labels.numpy()).argmax())
    assert state.lost["all"] == len(ds.test)
    assert (state.predictions == majority).all()
    assert (ex.prior_class(data, ("joint", None)) == majority).all()
    assert "lost every modality" in ex.summary_text(state)


def test_confusion_matrix_counts():
    cm = ex.confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_updates_never_call_a_model(ds):
    counter = ex.CallCounter()
    models = {("joint", None): counter.wrap(_model(ds, 0))}
    data = ex.ExplorerData.from_models(models, ds.test)
    after_compute = counter.calls
    assert after_compute == 4  # 2 modalities -> 4 patterns, one batch each
    for r in np.linspace(0, 1, 7):
        ex.explore(data, {"audio": r, "image": 1 - r}, "joint")
    assert counter.calls == after_compute


def test_figure_and_renders(data):
    state = ex.explore(data)
    assert state.rates == {"audio": ex.DEFAULT_RATE, "image": ex.DEFAULT_RATE}
    fig = ex.explorer_figure(data, state, n_samples=8, cols=4)
    assert isinstance(fig, Figure)
    view = ex.ExplorerView(data, state, n_samples=8, cols=4, animated=True)
    first = view.render("png")
    assert first.startswith(b"\x89PNG")
    assert view.render("jpeg").startswith(b"\xff\xd8")
    view.update(ex.explore(data, {"audio": 1.0, "image": 0.0}, "joint"))
    assert view.render("png") != first
    with pytest.raises(ValueError, match="fmt must be"):
        view.render("gif")
    html = ex.summary_html(state, 8)
    assert "<b>ume-mma" in html and "wrong among the 8 samples" in html


@pytest.mark.parametrize("animated", [False, True])
def test_curves_can_be_told_apart_and_the_confusion_matrix_has_a_colour_bar(ds, animated):
    models = {(m, None): _model(ds, i) for i, m in enumerate(
        ["unimodal:audio", "unimodal:image", "early", "concat", "joint", "ume"])}
    data = ex.ExplorerData.from_models(models, ds.test)
    view = ex.ExplorerView(data, ex.explore(data, method="joint"), n_samples=4, cols=4,
                           animated=animated)
    methods = data.methods
    for mod, lines in view.lines.items():
        looks = {(line.get_color(), line.get_linestyle(), line.get_marker())
                 for line in lines.values()}
        assert len(looks) == len(methods), f"two curves of the {mod} panel look alike"
        assert len({line.get_linestyle() for line in lines.values()}) > 1
        assert lines["joint"].get_linewidth() > lines["ume"].get_linewidth()  # picked: thick
    assert [t.get_text() for t in view.legend.get_texts()] == methods
    assert view.colorbar.mappable is view.conf and view.colorbar.vmax == 1.0
    assert view.render("png").startswith(b"\x89PNG")


def test_three_modalities():
    ds3 = three_modal()
    data = ex.ExplorerData.from_models({("joint", None): _model(ds3, 0)}, ds3.test)
    state = ex.explore(data, {"text": 0.5}, "joint")
    assert state.presence.shape == (len(ds3.test), 3)
    assert set(state.curves) == {"audio", "image", "text"}
    assert isinstance(ex.explorer_figure(data, state, n_samples=4, cols=4), Figure)


def test_multilabel_is_refused():
    ds = tiny_dataset(multilabel=True)
    with pytest.raises(ValueError, match="single-label"):
        ex.ExplorerData.from_models({("joint", None): _model(ds, 0)}, ds.test)


def test_run_keys_and_methods():
    assert ex.explorer_methods(["image", "audio"]) == [
        "unimodal:audio", "unimodal:image", "early", "concat", "joint", "joint-mma", "ume",
        "ume-mma", "pattern-heads"]  # every registered method but umt
    keys = ex.run_keys(["joint", "joint-mma", "ume-mma"])
    assert keys == [("joint", None), ("joint-mma", 0.5), ("ume-mma", 0.0), ("ume-mma", 0.25),
                    ("ume-mma", 0.5), ("ume-mma", 0.75)]
    assert ex.run_config(("ume-mma", 0.25)).p_missing == 0.25
    assert ex.run_config(("joint", None)) == TrainConfig(seed=0)


def test_cached_run_finds_what_run_method_saved(ds):
    from umm_helpers.methods.run import run_method

    config = TrainConfig(epochs=1, p_missing=0.25)
    assert ex.cached_run("ume-mma", ds, config) is None
    assert ex.cached_run("joint", ds, config) is None
    trained = run_method("joint", ds, config=config)
    found = ex.cached_run("joint", ds, config)
    assert found is not None and found.cached
    assert found.result["key"] == trained.result["key"]
    # p_missing does not change the joint run: the same cache entry
    assert ex.cached_run("joint", ds, TrainConfig(epochs=1)) is not None
    runs = ex.load_runs(ds, [("joint", None)], TrainConfig(epochs=1))
    assert runs[("joint", None)].cached
    data = ex.ExplorerData.from_runs(runs, ds.test)
    assert data.accuracy(("joint", None), {}) == pytest.approx(trained.result["scores"]["full"])


def test_untrained_models_cover_every_method(ds):
    keys = ex.run_keys(ex.explorer_methods(ds.modalities))
    models = untrained_models(ds, keys)
    data = ex.ExplorerData.from_models(models, ds.test)
    assert data.methods == ex.explorer_methods(ds.modalities)
    assert len(ex.accuracies(data, {})) == len(ex.explorer_methods(ds.modalities)) == 9


def test_model_part_does_not_import_matplotlib():
    code = ("import sys, umm_helpers.course.explorer_model; "
            "assert 'matplotlib' not in sys.modules, 'explorer_model imported matplotlib'")
    subprocess.run([sys.executable, "-c", code], check=True)
