"""The notebook-05 explorer widget, tested without a kernel: set values, read the result."""
from __future__ import annotations

import json

import numpy as np
import pytest
from _engine_data import late_model, tiny_dataset

from umm_helpers.course import explorer as ex
from umm_helpers.course import widgets
from umm_helpers.tools.bench import widget_bench


@pytest.fixture(autouse=True)
def _cpu(cpu):
    """Numbers here are pinned on the CPU."""


@pytest.fixture(scope="module")
def ds():
    return tiny_dataset()


@pytest.fixture(scope="module")
def counted(ds):
    counter = ex.CallCounter()
    models = {}
    for i, key in enumerate([("joint", None), ("ume-mma", 0.0), ("ume-mma", 0.5)]):
        model = late_model(ds, i)
        model.set_prior(ds.train.labels)
        models[key] = counter.wrap(model.eval())
    return ex.ExplorerData.from_models(models, ds.test), counter


def test_starts_at_the_static_defaults(counted):
    data, _ = counted
    ui = widgets.missing_modality_explorer(data, n_samples=8)
    static = ex.explore(data)
    assert ui.result.rates == static.rates and ui.result.method == "ume-mma"
    assert ui.result.accuracies == static.accuracies
    assert ui.p_picker.value == 0.5 and ui.result.key == ("ume-mma", 0.5)
    assert set(ui.sliders) == {"audio", "image"}
    assert bytes(ui.image.value)[:2] == b"\xff\xd8" and "accuracy" in ui.text.value


def test_controls_update_result_text_and_image_without_model_calls(counted):
    data, counter = counted
    ui = widgets.missing_modality_explorer(data, n_samples=8)
    calls = counter.calls
    text, image = ui.text.value, ui.image.value

    ui.sliders["audio"].value = 1.0
    assert ui.result.rates["audio"] == 1.0 and ui.result.lost["audio"] == len(data.labels)
    assert ui.text.value != text and ui.image.value != image
    assert ui.result.accuracy == pytest.approx(
        data.accuracy(("ume-mma", 0.5), {"audio": 1.0, "image": 0.3}))

    ui.sliders["image"].value = 1.0
    assert ui.result.lost["all"] == len(data.labels)
    assert "lost every modality" in ui.text.value

    ui.method_picker.value = "joint"
    assert ui.result.method == "joint" and "<b>joint" in ui.text.value
    ui.p_picker.value = 0.0
    assert ui.result.accuracies["ume-mma"] == pytest.approx(
        data.accuracy(("ume-mma", 0.0), ui.result.rates))
    ui.update()
    assert ui.result.method == "joint"
    assert counter.calls == calls, "a control change must never run a model"


def test_explicit_start_and_three_modalities():
    ds3 = tiny_dataset({"audio": (1, 6, 5), "image": (1, 4, 4), "text": (12,)})
    model = late_model(ds3, 0)
    model.set_prior(ds3.train.labels)
    data = ex.ExplorerData.from_models({("joint", None): model.eval()}, ds3.test)
    ui = widgets.missing_modality_explorer(data, rates={"text": 0.5}, n_samples=4)
    assert ui.result.method == "joint" and ui.result.rates["text"] == 0.5
    assert ui.p_picker.value is None
    ui.sliders["text"].value = 0.9
    assert ui.result.rates == {"audio": 0.0, "image": 0.0, "text": 0.9}


def test_moves_and_latency(counted):
    data, counter = counted
    ui = widgets.missing_modality_explorer(data, n_samples=8)
    moves = widgets.explorer_moves(ui, values_per_slider=3, methods=2)
    assert len(moves) >= 2 * 2 * 2 * 2
    assert {c for c, _ in moves} >= {ui.p_picker, ui.method_picker, *ui.sliders.values()}
    calls = counter.calls
    times = widgets.explorer_latency(ui, moves)
    assert len(times) == len(moves) and all(t > 0 for t in times)
    assert counter.calls == calls


def test_widget_bench_prints_one_json_line(ds, capsys, monkeypatch):
    measured, real = [], widgets.explorer_latency

    def known_times(ui, moves):  # the real updates run; the figures come from these numbers
        measured.append(len(real(ui, moves)))
        return [float(t) for t in range(1, 21)]

    monkeypatch.setattr(widgets, "explorer_latency", known_times)
    out = widget_bench(ds, values_per_slider=3, methods=1)
    line = json.loads(capsys.readouterr().out.strip())
    assert line == out
    assert out["bench"] == "widgets" and out["runs_cached"] == 0 and out["runs"] == 12
    assert out["model_calls_during_updates"] == 0 and measured and measured[0] >= 8
    assert (out["updates"], out["median_ms"], out["p95_ms"], out["max_ms"]) == (20, 10.5, 19.05,
                                                                                 20.0)
    assert np.isfinite(out["precompute_s"])


def test_bad_start_values_raise_at_build(counted):
    data, _ = counted
    with pytest.raises(ValueError, match="unknown method 'umt'"):
        widgets.missing_modality_explorer(data, method="umt")
    with pytest.raises(ValueError, match="outside"):
        widgets.missing_modality_explorer(data, rates={"audio": 2.0})


def test_dependence_dial_moves_only_the_marker():
    ui = widgets.dependence_dial(shared=1.0)
    ui.update()
    first = ui.result
    ui.children[0].value = 2.0
    assert ui.result is not first
    marker = [line for line in ui.result.axes[0].get_lines() if line.get_linestyle() == ":"]
    assert marker and marker[0].get_xdata()[0] == 2.0
    assert widgets.dial_ceilings.cache_info().currsize >= 1  # the curves are computed once
