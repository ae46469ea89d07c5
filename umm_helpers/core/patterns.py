"""``PatternLogits``: a model's logits for every presence pattern, so any mask scores instantly.

Taught in notebook 05 (behind the explorer's sliders) and used for every sweep (notebook 04):
the model runs once per presence pattern, and a missing-rate setting is then a seeded choice
of pattern per sample plus an argmax.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from umm_helpers.core.fusion import MAX_PATTERN_MODALITIES
from umm_helpers.core.missing import (
    DEFAULT_RATES,
    MaskTable,
    array_to_presence,
    sweep_conditions,
)
from umm_helpers.core.scoring import EVAL_BATCH, macro_f1, predict_logits
from umm_helpers.data import Split


@dataclass
class PatternLogits:
    """Logits of a model for every presence pattern, so any mask scores instantly.

    ``patterns[p, j]`` tells whether modality j (sorted order) is present in pattern p; pattern
    p has bit j set iff modality j is present, so pattern 0 (all absent) gives the prior.
    ``logits`` has shape ``[P, N, C]``. Notebook 05 drives its sliders with this. The model runs
    ``2^M`` times, so :meth:`compute` refuses more than
    :data:`~umm_helpers.core.fusion.MAX_PATTERN_MODALITIES` modalities.
    """

    modalities: tuple[str, ...]
    patterns: np.ndarray
    logits: Tensor
    labels: Tensor
    _correct: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _pred: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def compute(cls, model: nn.Module, split: Split, batch_size: int = EVAL_BATCH
                ) -> PatternLogits:
        mods = tuple(split.modalities)
        n, m = len(split), len(mods)
        if m > MAX_PATTERN_MODALITIES:
            raise ValueError(
                f"PatternLogits.compute runs the model once per presence pattern, 2^M = 2^{m} "
                f"for the split's {m} modalities; at most {MAX_PATTERN_MODALITIES} modalities "
                "are supported (umm_helpers.core.fusion.MAX_PATTERN_MODALITIES). Group "
                "modalities (concatenate their features) or score single conditions with "
                "umm.evaluate.")
        patterns = np.array([[(p >> j) & 1 == 1 for j in range(m)] for p in range(2 ** m)],
                            dtype=bool)
        logits = []
        for pat in patterns:
            pres = array_to_presence(np.broadcast_to(pat, (n, m)), mods)
            logits.append(predict_logits(model, split, pres, batch_size))
        return cls(mods, patterns, torch.stack(logits), split.labels.detach().cpu())

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    def _cache(self) -> None:
        if self._pred is not None:
            return
        if self.multilabel:
            self._pred = (self.logits > 0).numpy()
        else:
            self._pred = self.logits.argmax(dim=2).numpy()
            self._correct = self._pred == self.labels.numpy()[None, :]

    def pattern_index(self, presence: np.ndarray) -> np.ndarray:
        """Pattern number ``[N]`` of a boolean presence array ``[N, M]``."""
        pres = np.asarray(presence, dtype=bool)
        if pres.shape != (self.logits.shape[1], len(self.modalities)):
            raise ValueError(f"presence array has shape {pres.shape}, expected "
                             f"{(self.logits.shape[1], len(self.modalities))} (samples, "
                             f"modalities {list(self.modalities)}).")
        return (pres.astype(np.int64) << np.arange(pres.shape[1])).sum(axis=1)

    def predict(self, presence: np.ndarray) -> Tensor:
        """Logits ``[N, C]`` for a presence array ``[N, M]``."""
        idx = torch.as_tensor(self.pattern_index(presence))
        return self.logits[idx, torch.arange(self.logits.shape[1])]

    def score(self, presence: np.ndarray) -> float:
        """Accuracy (or macro-F1) under a presence array ``[N, M]``."""
        self._cache()
        idx = self.pattern_index(presence)
        rows = np.arange(len(idx))
        if self.multilabel:
            assert self._pred is not None
            return macro_f1(torch.as_tensor(self._pred[idx, rows]), self.labels)
        assert self._correct is not None
        return float(self._correct[idx, rows].mean())

    def condition_score(self, condition: str, table: MaskTable) -> float:
        """Score under a condition string, masks from ``table``."""
        return self.score(table.presence_array(condition))

    def accuracy_for_rates(self, rates: Mapping[str, float], table: MaskTable) -> float:
        """Score when each modality m is lost independently at rate ``rates[m]``."""
        return self.score(table.rates_presence(rates))


def sweep(model: nn.Module | PatternLogits, split: Split, rates: Sequence[float] = DEFAULT_RATES,
          seed: int = 0) -> dict[str, list[float]]:
    """Scores along ``rate:<m>:<r>`` per modality and ``rate:any:<r>``. Notebook 04."""
    pats = model if isinstance(model, PatternLogits) else PatternLogits.compute(model, split)
    table = MaskTable.create(len(split), split.modalities, seed)
    return {key: [pats.condition_score(c, table) for c in conds]
            for key, conds in sweep_conditions(split.modalities, rates).items()}
