"""ipywidgets builders over pure functions: sliders recompute or recombine, they never train.

ipywidgets is imported inside each builder, so importing this module stays cheap. Each widget
cell of a notebook is followed by a static cell calling the same pure function with the
default values.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

# --- notebook 01: information ceilings of the synthetic task --------------------------------

SIGMA_RANGE = (0.1, 4.0, 0.05)  # min, max, step of the noise sliders


@dataclass(frozen=True)
class CeilingsView:
    """The information budget of the synthetic task at ``(sigma1, sigma2)``: numbers + figure.

    Displaying it (``display(view)`` or as a widget's result) shows the figure and a one-line
    summary of the ceilings.
    """

    sigma1: float
    sigma2: float
    summary: dict[str, float]
    figure: Figure

    def text(self) -> str:
        s = self.summary
        return (f"sigma1={self.sigma1:.2f} sigma2={self.sigma2:.2f} | ceilings (Bayes accuracy): "
                f"x1 only {s['acc_x1']:.3f}, x2 only {s['acc_x2']:.3f}, both "
                f"{s['acc_x1x2']:.3f} | unavoidable loss without x2: "
                f"I(Y;X2|X1) = {s['I_x2_given_x1']:.3f} nats, without x1: "
                f"I(Y;X1|X2) = {s['I_x1_given_x2']:.3f} nats")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.figure)
        print(self.text())


def ceilings_view(sigma1: float, sigma2: float) -> CeilingsView:
    """Pure: the exact ceilings of ``synthetic.make_task(sigma1, sigma2)``. Notebook 01."""
    from umm_helpers.course import plots, theory
    from umm_helpers.data import synthetic

    summary = theory.summary(synthetic.make_task(sigma1, sigma2))
    fig = plots.information_budget(summary, title=f"σ1 = {sigma1:.2f}, σ2 = {sigma2:.2f}")
    return CeilingsView(float(sigma1), float(sigma2), summary, fig)


def ceilings_explorer(sigma1: float | None = None, sigma2: float | None = None) -> Any:
    """Sliders over the two noise levels that recompute :func:`ceilings_view`. Notebook 01.

    Returns an ``ipywidgets.interactive``; its ``.result`` is the current :class:`CeilingsView`.
    """
    from ipywidgets import FloatSlider, interactive

    from umm_helpers.data import synthetic

    lo, hi, step = SIGMA_RANGE

    def slider(name: str, value: float) -> FloatSlider:
        return FloatSlider(value=value, min=lo, max=hi, step=step, description=name,
                           continuous_update=False, readout_format=".2f")

    return interactive(ceilings_view,
                       sigma1=slider("σ1 (x1)", synthetic.SIGMA1 if sigma1 is None else sigma1),
                       sigma2=slider("σ2 (x2)", synthetic.SIGMA2 if sigma2 is None else sigma2))


# --- notebook 08: the dependence dial ---------------------------------------------------------

DIAL_RANGE = (0.0, 3.0, 0.25)  # min, max, step of the shared-nuisance slider


@functools.lru_cache(maxsize=4)
def dial_ceilings(variant: str = "complementary") -> dict[float, dict[str, float]]:
    """Exact ceilings at every slider position, computed once (about 2 s). Notebook 08."""
    from umm_helpers.course import theory
    from umm_helpers.data import synthetic

    lo, hi, step = DIAL_RANGE
    grid = [round(lo + k * step, 4) for k in range(int(round((hi - lo) / step)) + 1)]
    return {s: theory.pattern_ceilings(synthetic.make_task(shared=s, variant=variant))
            for s in grid}


def dial_view(shared: float, variant: str = "complementary") -> Figure:
    """Pure: the exact ceilings of the synthetic family along the dial, marked at ``shared``
    (the slider only moves the marker: the curves are computed once). Notebook 08."""
    from umm_helpers.course import plots

    return plots.ceilings_by_dial(dial_ceilings(variant), marker=float(shared))


def dependence_dial(shared: float = 1.0) -> Any:
    """A slider over the shared-nuisance scale that redraws :func:`dial_view`. Notebook 08.

    Returns an ``ipywidgets.interactive``; its ``.result`` is the current figure.
    """
    from ipywidgets import FloatSlider, fixed, interactive

    lo, hi, step = DIAL_RANGE
    return interactive(dial_view, shared=FloatSlider(
        value=shared, min=lo, max=hi, step=step, description="shared z",
        continuous_update=False, readout_format=".2f"), variant=fixed("complementary"))


# --- notebook 05: the missing-modality explorer ---------------------------------------------

RATE_STEP = 0.05  # step of the missing-rate sliders


def missing_modality_explorer(data: Any, rates: dict[str, float] | None = None,
                              method: str | None = None, p_missing: float | None = None,
                              n_samples: int = 20, continuous_update: bool = True) -> Any:
    """A missing-rate slider per modality, a method and a ``p_missing`` picker. Notebook 05.

    ``data`` is an :class:`umm_helpers.course.explorer.ExplorerData`. Every change calls the pure
    :func:`umm_helpers.course.explorer.explore` (a recombination of precomputed logits: no model
    runs) and redraws only what changed. Returns an ``ipywidgets.interactive`` whose
    ``.result`` is the current ``ExplorerState``; it also carries ``.sliders`` (modality ->
    slider), ``.method_picker``, ``.p_picker``, ``.text`` (HTML), ``.image`` (the figure, as
    JPEG: it encodes ten times faster than PNG) and ``.view`` (the ``ExplorerView``).
    """
    from ipywidgets import HTML, Dropdown, FloatSlider, HBox, Image, Layout, interactive

    from umm_helpers.course import explorer as ex

    start = data.check_rates(ex.default_rates(data) if rates is None else rates)
    method = ex.DEFAULT_METHOD if method is None and ex.DEFAULT_METHOD in data.methods \
        else (method or data.methods[-1])
    data.resolve(method)  # a clear error for an unknown method
    sliders = {m: FloatSlider(value=r, min=0.0, max=1.0, step=RATE_STEP,
                              description=f"{m} missing", continuous_update=continuous_update,
                              readout_format=".2f", style={"description_width": "initial"})
               for m, r in start.items()}
    method_picker = Dropdown(options=data.methods, value=method, description="method")
    p_options = [(f"{p:g}", p) for p in data.p_values] or [("-", None)]
    p_values = [v for _, v in p_options]
    p_start = ex.DEFAULT_P if p_missing is None else float(p_missing)
    p_picker = Dropdown(options=p_options, description="p_missing",
                        value=p_start if p_start in p_values else p_values[0],
                        layout=Layout(width="180px"))
    text = HTML()
    image = Image(format="jpeg", layout=Layout(max_width="100%"))
    # the first state outside the callback, so that bad arguments raise here
    view = ex.ExplorerView(data, ex.explore(data, start, method, p_picker.value),
                           n_samples=n_samples, animated=True)

    def show(method: str, p_missing: float | None, **rates: float) -> Any:
        state = ex.explore(data, rates, method, p_missing)
        image.value = view.update(state).render("jpeg")
        text.value = ex.summary_html(state, n_samples)
        return state

    ui = interactive(show, method=method_picker, p_missing=p_picker, clear_output=False,
                     **sliders)
    ui.children = (HBox(list(sliders.values())), HBox([method_picker, p_picker]), text, image,
                   ui.out)
    ui.sliders, ui.method_picker, ui.p_picker = sliders, method_picker, p_picker
    ui.text, ui.image, ui.view = text, image, view
    return ui


def explorer_moves(ui: Any, values_per_slider: int = 21, methods: int = 2) -> list[tuple]:
    """A tour of the explorer's controls: ``(control, value)`` pairs, every one a change
    (``umm bench --widgets`` and notebook 09 time it).

    For each ``p_missing`` and each of ``methods`` methods (the current one first), every
    slider sweeps its range, alternately up and down, in ``values_per_slider`` steps.
    """
    import numpy as np

    grid = [round(float(v), 2) for v in np.linspace(0, 1, values_per_slider)]
    moves: list[tuple] = []
    state = {id(ui.method_picker): ui.method_picker.value, id(ui.p_picker): ui.p_picker.value}
    state.update({id(s): s.value for s in ui.sliders.values()})

    def move(control: Any, value: Any) -> None:
        if state[id(control)] != value:
            moves.append((control, value))
            state[id(control)] = value

    names = list(ui.method_picker.options)
    picked = [ui.method_picker.value] + [m for m in names if m != ui.method_picker.value]
    for k, (_, p) in enumerate(ui.p_picker.options):
        move(ui.p_picker, p)
        for m in picked[:methods]:
            move(ui.method_picker, m)
            for i, slider in enumerate(ui.sliders.values()):
                for v in (grid if (i + k) % 2 == 0 else grid[::-1]):
                    move(slider, v)
    return moves


def explorer_latency(ui: Any, moves: list[tuple] | None = None) -> list[float]:
    """Milliseconds of each control change of :func:`missing_modality_explorer`.

    Setting a control's value runs the whole update (recombination, redraw, JPEG) before it
    returns, so this is the time a user waits per move, minus the browser round trip.
    """
    import time

    times = []
    for control, value in (moves if moves is not None else explorer_moves(ui)):
        start = time.perf_counter()
        control.value = value
        times.append((time.perf_counter() - start) * 1e3)
    return times
