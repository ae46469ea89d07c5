"""``PatternLogits``: a model's logits for every presence pattern, so any mask scores instantly.

Taught in notebook 05 (behind the explorer's sliders) and used for every sweep (notebook 04):
the model runs once per presence pattern (the package's fusion models run their encoders once
and combine per pattern), and a missing-rate setting is then a seeded choice of pattern per
sample plus an argmax.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeGuard

import numpy as np
import torch
from torch import Tensor, nn

from umm_helpers.core.encoders import module_device
from umm_helpers.core.fusion import (
    MAX_PATTERN_MODALITIES,
    ConcatFusionModel,
    LateFusionModel,
    PatternHeadsModel,
)
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
        if combines_features(model):
            logits = combined_pattern_logits(model, split, patterns, batch_size)
        else:
            logits = torch.stack([predict_logits(
                model, split, array_to_presence(np.broadcast_to(pat, (n, m)), mods), batch_size)
                for pat in patterns])
        return cls(mods, patterns, logits, split.labels.detach().cpu())

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


FeatureFusion = LateFusionModel | ConcatFusionModel | PatternHeadsModel


def combines_features(model: nn.Module) -> TypeGuard[FeatureFusion]:
    """True when ``model(x, present)`` is ``model.combine(model.features(x), present)`` by
    construction: a package fusion model whose ``forward``, ``features`` and ``combine`` are the
    package's own. A subclass that overrides any of them, or a model whose ``forward`` was
    replaced on the instance (a call counter, a hook), takes the per-pattern path."""
    if any(name in vars(model) for name in ("forward", "features", "combine")):
        return False
    for base in (LateFusionModel, ConcatFusionModel, PatternHeadsModel):
        if isinstance(model, base):
            names = ("forward", "forward_with_features", "features", "combine")
            return all(getattr(type(model), k, None) is getattr(base, k, None) for k in names)
    return False


@torch.no_grad()
def combined_pattern_logits(model: FeatureFusion, split: Split, patterns: np.ndarray,
                            batch_size: int = EVAL_BATCH) -> Tensor:
    """Logits ``[P, N, C]`` of every presence pattern, the encoders run once per batch.

    The masks only act after the encoders (``combine``), so each pattern's logits equal a
    forward pass on zero-filled inputs, bit for bit (tested), at ``1 / 2^M`` of the encoder work.
    """
    mods = list(split.modalities)
    device = module_device(model)
    was_training = model.training
    model.eval()
    out: list[list[Tensor]] = [[] for _ in patterns]
    try:
        for start in range(0, len(split), batch_size):
            x = {m: split.inputs[m][start:start + batch_size].to(device, non_blocking=True)
                 for m in mods}
            feats = model.features(x)
            rows = next(iter(x.values())).shape[0]
            for p, pat in enumerate(patterns):
                present = {m: torch.full((rows,), bool(on), device=device)
                           for m, on in zip(mods, pat)}
                out[p].append(model.combine(feats, present).float().cpu())
    finally:
        model.train(was_training)
    return torch.stack([torch.cat(parts) for parts in out])


def sweep(model: nn.Module | PatternLogits, split: Split, rates: Sequence[float] = DEFAULT_RATES,
          seed: int = 0) -> dict[str, list[float]]:
    """Scores along ``rate:<m>:<r>`` per modality and ``rate:any:<r>``. Notebook 04."""
    pats = model if isinstance(model, PatternLogits) else PatternLogits.compute(model, split)
    table = MaskTable.create(len(split), split.modalities, seed)
    return {key: [pats.condition_score(c, table) for c in conds]
            for key, conds in sweep_conditions(split.modalities, rates).items()}
