"""The explorer's pure part (notebook 05): which runs, their pattern logits, one state per setting.

Every run is evaluated once per presence pattern
(:class:`~umm_helpers.core.patterns.PatternLogits`); after that, a setting of the sliders (a
missing rate per modality, a method, a ``p_missing``) is only a seeded choice of pattern per
sample plus an argmax. Nothing here trains or runs a model after
:meth:`ExplorerData.from_models`, and nothing here draws (that is
:mod:`umm_helpers.course.explorer_view`), so importing it leaves matplotlib out.

Each modality m is lost independently at its rate (``MaskTable.rates_presence``), so a sample
can lose every modality; it then gets the training-label prior. Masks come from one seeded
table, so every method is scored on the same samples and masks are nested as a rate grows.
Which methods train with MMA, and at which default ``p_missing``, is read from the registry
(:data:`umm_helpers.methods.registry.METHODS`).
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from umm_helpers.core.missing import MaskTable
from umm_helpers.core.patterns import PatternLogits
from umm_helpers.data import MultiModalDataset, Split
from umm_helpers.engine.config import TrainConfig
from umm_helpers.methods import run as methods_run
from umm_helpers.methods.registry import METHODS, MMA_DEFAULT, Method, all_methods
from umm_helpers.methods.run import EVAL_SEED, Run

P_VALUES = (0.0, 0.25, 0.5, 0.75)
CURVE_STEP = 0.05
DEFAULT_RATE = 0.3
DEFAULT_METHOD = "ume-mma"
DEFAULT_P = METHODS[DEFAULT_METHOD].mma_default

RunKey = tuple[str, float | None]
"""A run: ``(method, p_missing)``, with ``p_missing`` None for methods without MMA."""


def _method(name: str) -> Method | None:
    """The registry entry of ``name`` (``unimodal:<m>`` -> ``unimodal``), None if unknown."""
    return METHODS.get(name.partition(":")[0])


def _mma_default(name: str) -> float:
    """The ``p_missing`` method ``name`` trains at by default (the registry's)."""
    method = _method(name)
    # an unknown name given only through from_models has no entry: the registry-wide default
    return method.mma_default if method is not None and method.mma_default is not None \
        else MMA_DEFAULT


def explorer_methods(modalities: Sequence[str]) -> list[str]:
    """The methods notebook 05 shows by default: all of them but ``umt`` (notebook 06)."""
    return [m for m in all_methods(list(modalities)) if m != "umt"]


def run_keys(methods: Sequence[str], p_values: Sequence[float] = P_VALUES,
             swept: Sequence[str] = ("ume-mma",), default_p: float | None = None
             ) -> list[RunKey]:
    """The runs behind the explorer: one per method, one per ``p_missing`` for ``swept`` ones.

    MMA methods that are not swept use ``default_p`` (None: the method's registry default).
    """
    keys: list[RunKey] = []
    for name in methods:
        method = _method(name)
        if method is not None and method.mma_default is not None:
            ps = p_values if name in swept else [
                method.mma_default if default_p is None else default_p]
            keys += [(name, float(p)) for p in ps]
        else:
            keys.append((name, None))
    return keys


def run_config(key: RunKey, config: TrainConfig | None = None) -> TrainConfig:
    """The ``TrainConfig`` of run ``key``: ``config`` (default: seed 0) at its ``p_missing``."""
    base = config if config is not None else TrainConfig(seed=0)
    return base.replace(p_missing=key[1]) if key[1] is not None else base


def load_runs(dataset: MultiModalDataset, keys: Sequence[RunKey],
              config: TrainConfig | None = None) -> dict[RunKey, Run]:
    """``{key: Run}`` from ``run_method`` (the run cache; trains what is not cached yet)."""
    return {k: methods_run.run_method(k[0], dataset, config=run_config(k, config)) for k in keys}


def cached_run(name: str, dataset: MultiModalDataset, config: TrainConfig | None = None
               ) -> Run | None:
    """The cached ``Run`` of ``run_method(name, dataset, config=config)``, or None (no training)."""
    return methods_run.cached_run(name, dataset, config=config)


def run_label(key: RunKey) -> str:
    """``"ume-mma (p=0.5)"`` or ``"joint"``."""
    return key[0] if key[1] is None else f"{key[0]} (p={key[1]:g})"


@dataclass
class ExplorerData:
    """Everything the explorer recombines: per-run pattern logits, the test split and masks.

    ``patterns[(method, p_missing)]`` holds the logits of that run for every presence pattern
    on ``split`` (the test split); ``table`` is the seeded mask table of that split.
    """

    split: Split
    patterns: dict[RunKey, PatternLogits]
    table: MaskTable
    curve_rates: np.ndarray = field(
        default_factory=lambda: np.round(np.arange(0, 1 + 1e-9, CURVE_STEP), 2))
    _curves: dict[tuple, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.patterns:
            raise ValueError("ExplorerData needs at least one run.")
        if self.split.multilabel:
            raise ValueError("the explorer shows accuracy and a confusion matrix, so it needs "
                             "single-label data (labels [N]); this split is multi-label.")
        mods = tuple(sorted(self.split.modalities))
        for key, pl in self.patterns.items():
            if pl.modalities != mods or pl.logits.shape[1] != len(self.split):
                raise ValueError(f"run {run_label(key)} was evaluated on modalities "
                                 f"{list(pl.modalities)} and {pl.logits.shape[1]} samples; the "
                                 f"split has {list(mods)} and {len(self.split)}.")
        if self.table.modalities != mods or len(self.table) != len(self.split):
            raise ValueError("the mask table does not match the split (modalities or size).")

    def __repr__(self) -> str:
        return (f"ExplorerData({len(self.patterns)} runs of {self.methods}, "
                f"{len(self.split)} samples, modalities {list(self.modalities)})")

    @classmethod
    def from_models(cls, models: Mapping[RunKey, nn.Module], split: Split,
                    seed: int = EVAL_SEED) -> ExplorerData:
        """Evaluate every model once per presence pattern (the only model calls)."""
        patterns = {(str(k[0]), None if k[1] is None else float(k[1])):
                    PatternLogits.compute(model, split) for k, model in models.items()}
        return cls(split, patterns, MaskTable.create(len(split), split.modalities, seed))

    @classmethod
    def from_runs(cls, runs: Mapping[RunKey, Run], split: Split,
                  seed: int = EVAL_SEED) -> ExplorerData:
        """Same as :meth:`from_models` for ``Run`` objects of ``run_method``."""
        return cls.from_models({k: r.model for k, r in runs.items()}, split, seed)

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.table.modalities

    @property
    def classes(self) -> list[str]:
        return list(self.split.classes)

    @property
    def labels(self) -> np.ndarray:
        return self.split.labels.detach().cpu().numpy()

    @property
    def methods(self) -> list[str]:
        """Method names in the order the runs were given."""
        return list(dict.fromkeys(k[0] for k in self.patterns))

    @property
    def p_values(self) -> list[float]:
        """Every ``p_missing`` for which some run exists."""
        return sorted({k[1] for k in self.patterns if k[1] is not None})

    def resolve(self, method: str, p_missing: float | None = None) -> RunKey:
        """The run shown for ``method`` at ``p_missing``.

        Methods without MMA ignore ``p_missing``; an MMA method without a run at that value
        falls back to its run at its registry default (0.5), else its first run.
        """
        if method not in self.methods:
            raise ValueError(f"unknown method {method!r}; the explorer has {self.methods}.")
        if (method, None) in self.patterns:
            return (method, None)
        ps = [k[1] for k in self.patterns if k[0] == method]
        for p in ([] if p_missing is None else [float(p_missing)]) + [_mma_default(method)]:
            if p in ps:
                return (method, p)
        return (method, ps[0])

    def check_rates(self, rates: Mapping[str, float]) -> dict[str, float]:
        """Rates for every modality (missing entries are 0), checked to lie in [0, 1]."""
        unknown = sorted(set(rates) - set(self.modalities))
        if unknown:
            raise ValueError(f"rates name modalities {unknown}; the data has "
                             f"{list(self.modalities)}.")
        out = {m: float(rates.get(m, 0.0)) for m in self.modalities}
        for m, r in out.items():
            if not 0.0 <= r <= 1.0:
                raise ValueError(f"missing rate of {m!r} is {r}, outside [0, 1].")
        return out

    def presence(self, rates: Mapping[str, float]) -> np.ndarray:
        """Boolean ``[N, M]`` presence: modality m lost independently at ``rates[m]``."""
        return self.table.rates_presence(self.check_rates(rates))

    def accuracy(self, key: RunKey, rates: Mapping[str, float]) -> float:
        return self.patterns[key].accuracy_for_rates(self.check_rates(rates), self.table)

    def curve(self, key: RunKey, modality: str, rates: Mapping[str, float]) -> np.ndarray:
        """Accuracy over ``curve_rates`` for ``modality``, the other rates held at ``rates``."""
        rates = self.check_rates(rates)
        others = tuple((m, round(r, 6)) for m, r in rates.items() if m != modality)
        ck = (key, modality, others)
        if ck not in self._curves:
            # a slider tour visits a few thousand settings at most; bound the memory anyway
            if len(self._curves) > 4096:
                self._curves.clear()
            pl = self.patterns[key]
            self._curves[ck] = np.array([pl.accuracy_for_rates({**rates, modality: float(r)},
                                                               self.table)
                                         for r in self.curve_rates])
        return self._curves[ck]


@dataclass
class ExplorerState:
    """What the explorer shows for one setting (see :func:`explore`)."""

    rates: dict[str, float]
    method: str
    p_missing: float | None
    key: RunKey
    presence: np.ndarray
    accuracies: dict[str, float]
    run_labels: dict[str, str]
    predictions: np.ndarray
    labels: np.ndarray
    confusion: np.ndarray
    curve_rates: np.ndarray
    curves: dict[str, dict[str, np.ndarray]]
    classes: list[str]

    @property
    def accuracy(self) -> float:
        """Accuracy of the picked method."""
        return self.accuracies[self.method]

    @property
    def lost(self) -> dict[str, int]:
        """Samples lacking each modality, and ``"all"``: samples lacking every modality."""
        out = {m: int((~self.presence[:, j]).sum()) for j, m in enumerate(sorted(self.rates))}
        out["all"] = int((~self.presence).all(axis=1).sum())
        return out


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int
                     ) -> np.ndarray:
    """Counts ``[C, C]``: row = true class, column = predicted class."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(predictions, dtype=np.int64)
    return np.bincount(y * num_classes + p, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def accuracies(data: ExplorerData, rates: Mapping[str, float],
               p_missing: float | None = None) -> dict[str, float]:
    """Accuracy of every method (MMA methods at ``p_missing``) under the same masks."""
    pres = data.presence(rates)
    return {m: data.patterns[data.resolve(m, p_missing)].score(pres) for m in data.methods}


def predictions(data: ExplorerData, rates: Mapping[str, float], method: str,
                p_missing: float | None = None) -> np.ndarray:
    """Predicted class ``[N]`` of ``method`` when each modality is lost at its rate."""
    logits = data.patterns[data.resolve(method, p_missing)].predict(data.presence(rates))
    return logits.argmax(dim=1).numpy()


def prior_class(data: ExplorerData, key: RunKey) -> np.ndarray:
    """Predicted class of every sample when every modality is missing (pattern 0)."""
    return data.patterns[key].logits[0].argmax(dim=1).numpy()


def default_rates(data: ExplorerData) -> dict[str, float]:
    """The explorer's starting point: every modality missing at :data:`DEFAULT_RATE`."""
    return {m: DEFAULT_RATE for m in data.modalities}


def explore(data: ExplorerData, rates: Mapping[str, float] | None = None,
            method: str = DEFAULT_METHOD, p_missing: float | None = DEFAULT_P) -> ExplorerState:
    """Everything the explorer shows for one setting; no model is called. Notebook 05.

    ``rates`` maps modality -> missing rate (each modality is lost independently; absent
    entries are 0). Returns the accuracy of every method, the picked method's predictions and
    confusion matrix, and per modality the accuracy-vs-rate curve of every method with the
    other rates held where they are.
    """
    rates = data.check_rates(default_rates(data) if rates is None else rates)
    key = data.resolve(method, p_missing)
    pres = data.presence(rates)
    keys = {m: data.resolve(m, p_missing) for m in data.methods}
    accs = {m: data.patterns[k].score(pres) for m, k in keys.items()}
    pred = data.patterns[key].predict(pres).argmax(dim=1).numpy()
    labels = data.labels
    curves = {mod: {m: data.curve(k, mod, rates) for m, k in keys.items()}
              for mod in data.modalities}
    return ExplorerState(rates, method, p_missing, key, pres, accs,
                         {m: run_label(k) for m, k in keys.items()}, pred, labels,
                         confusion_matrix(labels, pred, len(data.classes)), data.curve_rates,
                         curves, data.classes)


def summary_text(state: ExplorerState) -> str:
    """One line: who lost what, and the picked method's accuracy."""
    n = len(state.labels)
    lost = state.lost
    parts = [f"{m} missing for {lost[m]}/{n}" for m in sorted(state.rates)]
    return (", ".join(parts) + f"; {lost['all']} samples lost every modality and get the "
            f"training-label prior. {state.run_labels[state.method]}: accuracy "
            f"{state.accuracy:.3f}")


def summary_html(state: ExplorerState, n_samples: int = 20) -> str:
    """The widget's text: :func:`summary_text`, every accuracy, the wrong shown samples."""
    accs = " · ".join((f"<b>{html.escape(m)} {a:.3f}</b>" if m == state.method else
                       f"{html.escape(m)} {a:.3f}") for m, a in state.accuracies.items())
    n = min(n_samples, len(state.labels))
    c = state.classes
    wrong = ", ".join(f"#{i} {c[int(state.labels[i])]}→{c[int(state.predictions[i])]}"
                      for i in range(n) if state.predictions[i] != state.labels[i])
    return (f"<div style='font-size:90%'>{html.escape(summary_text(state))}<br>"
            f"accuracy: {accs}<br>wrong among the {n} samples shown (true→predicted): "
            f"{html.escape(wrong) or 'none'}</div>")


class CallCounter:
    """Counts forward calls of models: notebook 09 shows the explorer's sliders never call one."""

    def __init__(self) -> None:
        self.calls = 0

    def wrap(self, model: nn.Module) -> nn.Module:
        forward = model.forward

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return forward(*args, **kwargs)

        model.forward = counted
        return model


__all__ = ["CURVE_STEP", "DEFAULT_METHOD", "DEFAULT_P", "DEFAULT_RATE", "P_VALUES",
           "CallCounter", "ExplorerData", "ExplorerState", "RunKey", "accuracies", "cached_run",
           "confusion_matrix", "default_rates", "explore", "explorer_methods", "load_runs",
           "predictions", "prior_class", "run_config", "run_keys", "run_label", "summary_html",
           "summary_text"]
