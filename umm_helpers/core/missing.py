"""The missing-modality protocol: presence masks, conditions and seeded mask tables.

Taught in notebook 00 (mask tables) and used by every later notebook.

Conditions (test time):
  ``full``            every modality present for every sample;
  ``miss:<m>``        modality ``m`` absent for every sample;
  ``rate:<m>:<r>``    a seeded fraction ``r`` of samples lack ``m``;
  ``rate:any:<r>``    a seeded fraction ``r`` of samples lack exactly one modality, chosen
                      uniformly among the modalities.
Masks come from a :class:`MaskTable` (one uniform number per sample and modality, drawn once from
a seed), so every method is scored on the same samples and masks are nested: a sample missing at
``r = 0.3`` is still missing at ``r = 0.5``. A missing modality is zero-filled at the input
(:func:`apply_presence`, the one place that fills) and flagged False in the presence dict.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

ACCEPTED_FORMS = ("full", "miss:<m>", "rate:<m>:<r>", "rate:any:<r>")
DEFAULT_RATES = tuple(round(0.1 * i, 1) for i in range(11))


@dataclass(frozen=True)
class Condition:
    """A parsed condition: ``kind`` is ``full``, ``miss`` or ``rate``."""

    kind: str
    modality: str | None = None
    rate: float = 0.0

    def __str__(self) -> str:
        if self.kind == "full":
            return "full"
        if self.kind == "miss":
            return f"miss:{self.modality}"
        return f"rate:{self.modality}:{self.rate:g}"


def _bad(condition: object, modalities: Sequence[str], why: str) -> ValueError:
    return ValueError(
        f"bad missing-modality condition {condition!r}: {why}. Accepted forms: "
        f"{', '.join(ACCEPTED_FORMS)}, with <m> one of {sorted(modalities)} "
        "and <r> a rate in [0, 1] (for example 'rate:audio:0.3').")


def parse_condition(condition: str | Condition, modalities: Sequence[str]) -> Condition:
    """Parse and check a condition string against the data set's modalities."""
    if isinstance(condition, Condition):
        condition = str(condition)
    if not isinstance(condition, str):
        raise _bad(condition, modalities, "a condition is a string")
    parts = condition.strip().split(":")
    if parts == ["full"]:
        return Condition("full")
    if parts[0] == "miss" and len(parts) == 2:
        if parts[1] not in modalities:
            raise _bad(condition, modalities, f"unknown modality {parts[1]!r}")
        return Condition("miss", parts[1])
    if parts[0] == "rate" and len(parts) == 3:
        m, r = parts[1], parts[2]
        if m != "any" and m not in modalities:
            raise _bad(condition, modalities, f"unknown modality {m!r}")
        try:
            rate = float(r)
        except ValueError:
            raise _bad(condition, modalities, f"rate {r!r} is not a number") from None
        if not 0.0 <= rate <= 1.0:
            raise _bad(condition, modalities, f"rate {rate:g} is outside [0, 1]")
        return Condition("rate", m, rate)
    raise _bad(condition, modalities, "malformed condition")


def full_presence(n: int, modalities: Sequence[str],
                  device: torch.device | str = "cpu") -> dict[str, Tensor]:
    """Every modality present for all ``n`` samples."""
    return {m: torch.ones(n, dtype=torch.bool, device=device) for m in sorted(modalities)}


@dataclass(frozen=True)
class MaskTable:
    """Seeded per-sample random numbers from which every mask is derived.

    ``u[i, j]``: uniform number of sample i and modality j (j in sorted name order); sample i
    lacks modality j at rate r when ``u[i, j] < r``. ``u_any[i]`` and ``which[i]`` do the same
    for ``rate:any`` (the sample loses modality ``which[i]`` when ``u_any[i] < r``).
    """

    modalities: tuple[str, ...]
    u: np.ndarray
    u_any: np.ndarray
    which: np.ndarray
    seed: int

    @classmethod
    def create(cls, n: int, modalities: Sequence[str], seed: int = 0) -> MaskTable:
        mods = tuple(sorted(modalities))
        if n < 0:
            raise ValueError(f"number of samples must be >= 0, got {n}.")
        rng = np.random.default_rng([seed, n, len(mods), 20231010])
        u = rng.random((n, len(mods)))
        u_any = rng.random(n)
        which = rng.integers(0, len(mods), size=n)
        return cls(mods, u, u_any, which, seed)

    def __len__(self) -> int:
        return int(self.u.shape[0])

    def rates_presence(self, rates: Mapping[str, float]) -> np.ndarray:
        """Boolean ``[N, M]`` presence where each modality is lost independently at its rate."""
        pres = np.ones_like(self.u, dtype=bool)
        for m, r in rates.items():
            if m not in self.modalities:
                raise _bad(f"rate:{m}:{r}", self.modalities, f"unknown modality {m!r}")
            if not 0.0 <= float(r) <= 1.0:
                raise _bad(f"rate:{m}:{r}", self.modalities, f"rate {r} is outside [0, 1]")
            j = self.modalities.index(m)
            pres[:, j] = self.u[:, j] >= float(r)
        return pres

    def presence_array(self, condition: str | Condition) -> np.ndarray:
        """Boolean ``[N, M]`` presence (columns in sorted modality order) for a condition."""
        c = parse_condition(condition, self.modalities)
        pres = np.ones_like(self.u, dtype=bool)
        if c.kind == "miss":
            pres[:, self.modalities.index(c.modality)] = False
        elif c.kind == "rate" and c.modality == "any":
            lose = self.u_any < c.rate
            pres[np.nonzero(lose)[0], self.which[lose]] = False
        elif c.kind == "rate":
            assert c.modality is not None  # parse_condition always names it for "rate"
            pres = self.rates_presence({c.modality: c.rate})
        return pres

    def presence(self, condition: str | Condition,
                 device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Presence dict ``{modality: BoolTensor[N]}`` for a condition."""
        return array_to_presence(self.presence_array(condition), self.modalities, device)


def array_to_presence(pres: np.ndarray, modalities: Sequence[str],
                      device: torch.device | str = "cpu") -> dict[str, Tensor]:
    """Turn a ``[N, M]`` boolean array (sorted modality order) into a presence dict."""
    mods = sorted(modalities)
    t = torch.as_tensor(np.ascontiguousarray(pres), dtype=torch.bool, device=device)
    return {m: t[:, j] for j, m in enumerate(mods)}


def presence_to_array(present: Mapping[str, Tensor]) -> np.ndarray:
    """Inverse of :func:`array_to_presence`: a ``[N, M]`` boolean array."""
    return np.stack([present[m].detach().cpu().numpy() for m in sorted(present)], axis=1)


def condition_presence(condition: str, n: int, modalities: Sequence[str], seed: int = 0,
                       device: torch.device | str = "cpu") -> dict[str, Tensor]:
    """Shortcut: the presence dict of ``condition`` for ``n`` samples from a seeded table."""
    return MaskTable.create(n, modalities, seed).presence(condition, device)


def apply_presence(inputs: Mapping[str, Tensor], present: Mapping[str, Tensor]
                   ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Zero-fill absent modalities; return ``(filled_inputs, present)``.

    This is the one place where a missing modality gets a value (zero). A late-fusion model
    also receives ``present`` and leaves the missing branch out, so the fill never matters there.
    """
    if set(inputs) != set(present):
        raise ValueError(f"inputs have modalities {sorted(inputs)} but the presence dict has "
                         f"{sorted(present)}; give one presence mask per modality.")
    filled = {}
    for m, x in inputs.items():
        p = present[m].to(device=x.device, dtype=torch.bool)
        if p.shape != x.shape[:1]:
            raise ValueError(f"presence mask of {m!r} has shape {tuple(p.shape)} but the input "
                             f"has {x.shape[0]} samples.")
        shape = (-1,) + (1,) * (x.ndim - 1)
        filled[m] = x * p.view(shape).to(x.dtype)
    return filled, dict(present)


def training_presence(n: int, modalities: Sequence[str], keep: Mapping[str, float],
                      seed: int = 0) -> dict[str, Tensor]:
    """Training-time missing data: modality m is kept for a fraction ``keep[m]`` of samples.

    Exactly ``round(keep[m] * n)`` samples keep m, chosen by a seeded permutation. Samples are
    never left with no modality: when that would happen the first modality is kept for them.
    Example: ``keep={"audio": 0.2}`` keeps audio for 20% of training pairs (the SMIL setting).
    """
    mods = sorted(modalities)
    present = full_presence(n, mods)
    rng = np.random.default_rng([seed, n, 7])
    for m, frac in sorted(keep.items()):
        if m not in mods:
            raise ValueError(f"training_presence: unknown modality {m!r}; the data set has "
                             f"{mods}.")
        if not 0.0 <= float(frac) <= 1.0:
            raise ValueError(f"training_presence: keep fraction for {m!r} is {frac}, "
                             "outside [0, 1].")
        kept = rng.permutation(n)[: int(round(float(frac) * n))]
        mask = np.zeros(n, dtype=bool)
        mask[kept] = True
        present[m] = torch.as_tensor(mask)
    none = ~torch.stack([present[m] for m in mods]).any(dim=0)
    if bool(none.any()):
        present[mods[0]] = present[mods[0]] | none
    return present


def mma_presence(present: Mapping[str, Tensor], p_missing: float,
                 generator: torch.Generator | None = None, subsets: bool = False
                 ) -> dict[str, Tensor]:
    """Missing-modality augmentation (MMA) for one batch.

    Each sample independently, with probability ``p_missing``, loses one of its present
    modalities chosen uniformly (``subsets=True``: a uniformly chosen non-empty proper subset
    of them, so with three or more modalities the single-modality patterns are trained too);
    a sample is never left with none (a sample with a single present modality keeps it). The
    dropped branch is then treated exactly like a missing one. Notebooks 04 and 08.
    """
    if not 0.0 <= p_missing <= 1.0:
        raise ValueError(f"p_missing must lie in [0, 1], got {p_missing}.")
    mods = sorted(present)
    pres = torch.stack([present[m] for m in mods], dim=1)
    if p_missing == 0.0 or len(mods) < 2:
        return dict(present)
    dev = pres.device
    gen_device = generator.device if generator is not None else torch.device("cpu")
    b = pres.shape[0]
    drop = torch.rand(b, generator=generator, device=gen_device).to(dev) < p_missing
    drop &= pres.sum(dim=1) >= 2
    out = pres.clone()
    if subsets:
        # subset number r in [1, 2^k - 2] of the k present modalities; the j-th present
        # modality is dropped when bit j of r is set
        k = pres.sum(dim=1)
        u = torch.rand(b, generator=generator, device=gen_device).to(dev)
        r = (u * (2 ** k - 2).clamp(min=1)).long() + 1
        rank = pres.long().cumsum(dim=1) - 1
        lost = pres & (((r.unsqueeze(1) >> rank.clamp(min=0)) & 1) == 1)
        out &= ~(lost & drop.unsqueeze(1))
        return {m: out[:, j] for j, m in enumerate(mods)}
    scores = torch.rand(b, len(mods), generator=generator, device=gen_device).to(dev)
    scores = scores.masked_fill(~pres, -1.0)
    victim = torch.nn.functional.one_hot(scores.argmax(dim=1), len(mods)).bool()
    out &= ~(victim & drop.unsqueeze(1))  # a mask, not an index: no wait for the device
    return {m: out[:, j] for j, m in enumerate(mods)}


def sweep_conditions(modalities: Sequence[str], rates: Sequence[float] = DEFAULT_RATES
                     ) -> dict[str, list[str]]:
    """Condition strings of a missing-rate sweep, per modality and for ``any``."""
    out = {m: [f"rate:{m}:{r:g}" for r in rates] for m in sorted(modalities)}
    out["any"] = [f"rate:any:{r:g}" for r in rates]
    return out


def standard_conditions(modalities: Sequence[str]) -> list[str]:
    """``full`` and ``miss:<m>`` for every modality."""
    return ["full"] + [f"miss:{m}" for m in sorted(modalities)]
