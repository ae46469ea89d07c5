"""The missing-modality explorer of notebook 05, in one namespace.

The explorer lives in two modules; this one re-exports both, so notebooks keep writing
``from umm_helpers.course import explorer`` and ``explorer.explore(...)``:

- :mod:`umm_helpers.course.explorer_model`: the pure part, no matplotlib. Which runs
  (:func:`run_keys`, :func:`load_runs`), their logits per presence pattern
  (:class:`ExplorerData`), and everything shown for one setting (:func:`explore` ->
  :class:`ExplorerState`, :func:`summary_text`); :class:`CallCounter` shows that only
  building an ``ExplorerData`` calls a model.
- :mod:`umm_helpers.course.explorer_view`: the figure (:class:`ExplorerView`,
  :func:`explorer_figure`), redrawn in full or blitted.

The ipywidgets front end is ``umm_helpers.course.widgets.missing_modality_explorer``;
``umm bench --widgets`` (:func:`umm_helpers.tools.bench.widget_bench`) times it.
"""
from __future__ import annotations

from umm_helpers.course.explorer_model import (
    CURVE_STEP,
    DEFAULT_METHOD,
    DEFAULT_P,
    DEFAULT_RATE,
    P_VALUES,
    CallCounter,
    ExplorerData,
    ExplorerState,
    RunKey,
    accuracies,
    cached_run,
    confusion_matrix,
    default_rates,
    explore,
    explorer_methods,
    load_runs,
    predictions,
    prior_class,
    run_config,
    run_keys,
    run_label,
    summary_html,
    summary_text,
)
from umm_helpers.course.explorer_view import ExplorerView, explorer_figure

__all__ = ["CURVE_STEP", "DEFAULT_METHOD", "DEFAULT_P", "DEFAULT_RATE", "P_VALUES",
           "CallCounter", "ExplorerData", "ExplorerState", "ExplorerView", "RunKey",
           "accuracies", "cached_run", "confusion_matrix", "default_rates", "explore",
           "explorer_figure", "explorer_methods", "load_runs", "predictions", "prior_class",
           "run_config", "run_keys", "run_label", "summary_html", "summary_text"]
