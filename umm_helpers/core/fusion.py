"""Fusion models: every model is called as ``model(inputs, present) -> logits``.

``LateFusionModel`` (notebook 03) sums per-modality logits over the present modalities;
``ConcatFusionModel`` and ``EarlyFusionModel`` are the baselines of notebook 03;
``PatternHeadsModel`` (notebook 08) has one head per presence pattern. A sample with
no modality present gets the training-label prior (``prior_logits``), never NaN.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

Inputs = Mapping[str, Tensor]
Presence = Mapping[str, Tensor]


def prior_logits_from_labels(labels: Tensor, num_classes: int) -> Tensor:
    """Log-prior of the training labels (``[C]``), Laplace-smoothed.

    Single-label: log class frequencies. Multi-label: per-class log-odds (for a sigmoid).
    """
    labels = labels.detach().cpu()
    if labels.ndim == 1:
        counts = torch.bincount(labels.long(), minlength=num_classes).double() + 1.0
        return (counts / counts.sum()).log().float()
    pos = labels.double().sum(dim=0) + 1.0
    p = pos / (labels.shape[0] + 2.0)
    return (p.log() - (1 - p).log()).float()


def _present_matrix(present: Presence | None, modalities: Sequence[str], batch: int,
                    device: torch.device) -> dict[str, Tensor]:
    if present is None:
        return {m: torch.ones(batch, dtype=torch.bool, device=device) for m in modalities}
    missing = [m for m in modalities if m not in present]
    if missing:
        raise ValueError(f"presence dict lacks modalities {missing}; give one mask per modality "
                         f"(model modalities: {list(modalities)}).")
    return {m: present[m].to(device=device, dtype=torch.bool) for m in modalities}


class _PriorMixin(nn.Module):
    """Holds ``prior_logits`` and fills it in for samples with no modality present."""

    prior_logits: Tensor

    def _init_prior(self, num_classes: int) -> None:
        self.num_classes = int(num_classes)
        self.register_buffer("prior_logits",
                             torch.full((num_classes,), -math.log(num_classes)))

    def set_prior(self, labels: Tensor) -> None:
        """Set ``prior_logits`` from training labels (``[N]`` or ``[N, C]``)."""
        prior = prior_logits_from_labels(labels, self.num_classes)
        self.prior_logits.copy_(prior.to(self.prior_logits.device))

    def _with_prior(self, logits: Tensor, pres: dict[str, Tensor]) -> Tensor:
        any_present = torch.stack(list(pres.values()), dim=1).any(dim=1)
        prior = self.prior_logits.to(logits.dtype).expand_as(logits)
        return torch.where(any_present.unsqueeze(1), logits, prior)

    @staticmethod
    def _batch_info(inputs: Inputs, modalities: Sequence[str]) -> tuple[int, torch.device]:
        missing = [m for m in modalities if m not in inputs]
        if missing:
            raise ValueError(f"inputs lack modalities {missing} (model modalities: "
                             f"{list(modalities)}); zero-fill an absent modality and mark it "
                             "absent in `present` instead of leaving it out.")
        x = inputs[modalities[0]]
        return int(x.shape[0]), x.device


class _EncoderFusion(_PriorMixin):
    """A fusion model that runs one encoder per modality and then combines their features:
    its ``forward(x, present)`` is ``combine(features(x), present)``. Because the masks act only in
    ``combine``, :class:`~umm_helpers.core.patterns.PatternLogits` runs the encoders once and
    combines per presence pattern (notebook 05)."""

    modalities: list[str]
    encoders: nn.ModuleDict

    def features(self, inputs: Inputs) -> dict[str, Tensor]:
        """Encoder features ``{m: [B, F_m]}`` of every modality (no masking)."""
        return {m: self.encoders[m](inputs[m]) for m in self.modalities}

    def combine(self, feats: Mapping[str, Tensor], present: Presence | None) -> Tensor:
        raise NotImplementedError

    def _presence_of(self, feats: Mapping[str, Tensor], present: Presence | None
                     ) -> dict[str, Tensor]:
        """The boolean mask of every modality for the batch ``feats`` holds."""
        first = feats[self.modalities[0]]
        return _present_matrix(present, self.modalities, first.shape[0], first.device)


class LateFusionModel(_EncoderFusion):
    """One encoder and one linear head per modality; logits summed over present modalities.

    Each encoder runs on the whole batch and absent rows are masked out with ``torch.where``,
    so a sample's output does not depend on the fill value of its missing modalities.
    Notebook 03 builds it; notebooks 04 and 06 initialise it from uni-modal models.
    """

    def __init__(self, encoders: Mapping[str, nn.Module], num_classes: int,
                 feature_dims: Mapping[str, int]) -> None:
        super().__init__()
        mods = sorted(encoders)
        if not mods:
            raise ValueError("LateFusionModel needs at least one encoder.")
        if sorted(feature_dims) != mods:
            raise ValueError(f"feature_dims has modalities {sorted(feature_dims)} but encoders "
                             f"has {mods}.")
        self.modalities = mods
        self.encoders = nn.ModuleDict({m: encoders[m] for m in mods})
        self.heads = nn.ModuleDict({m: nn.Linear(int(feature_dims[m]), num_classes)
                                    for m in mods})
        self._init_prior(num_classes)

    def unimodal_logits(self, inputs: Inputs) -> dict[str, Tensor]:
        """Per-modality logits ``{m: [B, C]}`` (each head on its own encoder)."""
        return {m: self.heads[m](f) for m, f in self.features(inputs).items()}

    def combine(self, feats: Mapping[str, Tensor], present: Presence | None) -> Tensor:
        """Sum of head logits over present modalities; the prior where none is present."""
        pres = self._presence_of(feats, present)
        total: Tensor | None = None
        for m in self.modalities:
            logit = self.heads[m](feats[m])
            part = torch.where(pres[m].unsqueeze(1), logit, torch.zeros_like(logit))
            total = part if total is None else total + part
        assert total is not None
        return self._with_prior(total, pres)

    def forward_with_features(self, inputs: Inputs, present: Presence | None = None
                              ) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits and the per-modality features they came from (used by UMT distillation)."""
        self._batch_info(inputs, self.modalities)
        feats = self.features(inputs)
        return self.combine(feats, present), feats

    def forward(self, inputs: Inputs, present: Presence | None = None,
                with_features: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """Logits; with ``with_features=True`` also the features (through ``forward``, so a
        ``DistributedDataParallel`` wrapper sees the call)."""
        logits, feats = self.forward_with_features(inputs, present)
        return (logits, feats) if with_features else logits


class ConcatFusionModel(_EncoderFusion):
    """Encoders, concatenated features (absent modality's features zeroed), MLP head.

    What MultiBench calls late fusion; a baseline of notebook 03.
    """

    def __init__(self, encoders: Mapping[str, nn.Module], num_classes: int,
                 feature_dims: Mapping[str, int], hidden: int = 128) -> None:
        super().__init__()
        mods = sorted(encoders)
        if sorted(feature_dims) != mods:
            raise ValueError(f"feature_dims has modalities {sorted(feature_dims)} but encoders "
                             f"has {mods}.")
        self.modalities = mods
        self.encoders = nn.ModuleDict({m: encoders[m] for m in mods})
        total = sum(int(feature_dims[m]) for m in mods)
        self.head = nn.Sequential(nn.Linear(total, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, num_classes))
        self._init_prior(num_classes)

    def combine(self, feats: Mapping[str, Tensor], present: Presence | None) -> Tensor:
        """The head on the concatenated features, an absent modality's slot zeroed."""
        pres = self._presence_of(feats, present)
        slots = [torch.where(pres[m].unsqueeze(1), feats[m], torch.zeros_like(feats[m]))
                 for m in self.modalities]
        return self._with_prior(self.head(torch.cat(slots, dim=1)), pres)

    def forward(self, inputs: Inputs, present: Presence | None = None) -> Tensor:
        self._batch_info(inputs, self.modalities)
        return self.combine(self.features(inputs), present)


class EarlyFusionModel(_PriorMixin):
    """Inputs flattened (absent ones zeroed) and concatenated, then an MLP. Notebook 03."""

    def __init__(self, sample_shapes: Mapping[str, Sequence[int]], num_classes: int,
                 hidden: Sequence[int] = (256, 128)) -> None:
        super().__init__()
        self.modalities = sorted(sample_shapes)
        total = sum(int(torch.Size(tuple(sample_shapes[m])).numel()) for m in self.modalities)
        layers: list[nn.Module] = [nn.BatchNorm1d(total)]
        prev = total
        for width in hidden:
            layers += [nn.Linear(prev, width), nn.ReLU(inplace=True)]
            prev = width
        layers.append(nn.Linear(prev, num_classes))
        self.net = nn.Sequential(*layers)
        self._init_prior(num_classes)

    def forward(self, inputs: Inputs, present: Presence | None = None) -> Tensor:
        batch, device = self._batch_info(inputs, self.modalities)
        pres = _present_matrix(present, self.modalities, batch, device)
        flat = [torch.where(pres[m].unsqueeze(1), inputs[m].reshape(batch, -1),
                            torch.zeros((), dtype=inputs[m].dtype, device=device))
                for m in self.modalities]
        return self._with_prior(self.net(torch.cat(flat, dim=1)), pres)


# Each of the 2^M - 1 presence patterns has its own head: above this many modalities the head
# count (and the presence patterns PatternLogits enumerates) grows past what a course needs.
MAX_PATTERN_MODALITIES = 6


def presence_patterns(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``modalities`` (sorted), ordered by its bit code
    (bit j set = modality j present): ``[("a",), ("b",), ("a", "b")]`` for two."""
    mods = sorted(modalities)
    return [tuple(m for j, m in enumerate(mods) if (p >> j) & 1)
            for p in range(1, 2 ** len(mods))]


class PatternHeadsModel(_EncoderFusion):
    """Encoders and one linear head per presence pattern (notebook 08).

    A sample is routed to the head of the modalities it has: a single-modality pattern reads
    that modality's features, a multi-modality pattern the concatenated features of its
    modalities (sorted order). No modality present: the training-label prior. The heads of
    different patterns share nothing but the encoders, so each pattern can reach its own
    Bayes ceiling, which no single additive head can when modalities are dependent given the
    label. Cost: ``2^M - 1`` heads, the multi-modality ones ``sum_m F_m x C`` weights each;
    refused above :data:`MAX_PATTERN_MODALITIES` modalities.
    """

    def __init__(self, encoders: Mapping[str, nn.Module], num_classes: int,
                 feature_dims: Mapping[str, int]) -> None:
        super().__init__()
        mods = sorted(encoders)
        if not 1 <= len(mods) <= MAX_PATTERN_MODALITIES:
            raise ValueError(f"PatternHeadsModel takes 1 to {MAX_PATTERN_MODALITIES} "
                             f"modalities (2^M - 1 heads), got {len(mods)}: {mods}. Use "
                             "LateFusionModel (one head per modality) for more.")
        self.modalities = mods
        self.encoders = nn.ModuleDict({m: encoders[m] for m in mods})
        self.patterns = presence_patterns(mods)
        self.heads = nn.ModuleDict({
            pattern_key(p): nn.Linear(sum(int(feature_dims[m]) for m in p), num_classes)
            for p in self.patterns})
        self._init_prior(num_classes)

    def forward(self, inputs: Inputs, present: Presence | None = None) -> Tensor:
        self._batch_info(inputs, self.modalities)
        return self.combine(self.features(inputs), present)

    def combine(self, feats: Mapping[str, Tensor], present: Presence | None) -> Tensor:
        """Each sample through the head of its presence pattern; the prior when none."""
        pres = self._presence_of(feats, present)
        first = pres[self.modalities[0]]
        # bit j of a sample's code: modality j present
        code = torch.zeros(first.shape[0], dtype=torch.long, device=first.device)
        for j, m in enumerate(self.modalities):
            code |= pres[m].long() << j
        out: Tensor | None = None
        for p, pattern in enumerate(self.patterns, start=1):
            logits = self.heads[pattern_key(pattern)](torch.cat([feats[m] for m in pattern], 1))
            out = logits if out is None else torch.where((code == p).unsqueeze(1), logits, out)
        assert out is not None
        return self._with_prior(out, pres)


def pattern_key(pattern: Sequence[str]) -> str:
    """The head name of a presence pattern: ``"audio+image"``."""
    return "+".join(pattern)
