"""The resumable state of a training run and its checkpoint file (notebook 02, engineering).

One safetensors file holds the model, the optimizer, the RNG states and (with early stopping)
the best weights; the JSON header holds the epoch, the history and the config it was written
with. Resuming with another config, or into another model, is refused with the fix.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from umm_helpers.engine.checkpoint import (
    CheckpointError,
    flatten_optimizer,
    load_tensors,
    model_fingerprint,
    save_tensors,
    unflatten_optimizer,
)
from umm_helpers.engine.config import RESUME_FREE_FIELDS, TrainConfig

CHECKPOINT_NAME = "checkpoint.safetensors"


@dataclass
class TrainingState:
    """Non-tensor training state, saved as the checkpoint's JSON."""

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float | None = None
    bad_epochs: int = 0
    stopped: bool = False


def _rng_tensors(gen: torch.Generator, device: torch.device) -> dict[str, Tensor]:
    out = {"rng.torch": torch.get_rng_state(), "rng.generator": gen.get_state()}
    if device.type == "cuda":
        out["rng.cuda"] = torch.cuda.get_rng_state(device)
    return out


def _restore_rng(tensors: Mapping[str, Tensor], gen: torch.Generator,
                 device: torch.device) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    gen.set_state(tensors["rng.generator"])
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)


def resume_config(config: TrainConfig) -> dict[str, Any]:
    """The config fields that must match for a checkpoint to be resumed."""
    return {k: v for k, v in config.to_dict().items() if k not in RESUME_FREE_FIELDS}


def save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
                    gen: torch.Generator, device: torch.device, state: TrainingState,
                    best: dict[str, Tensor] | None, config: TrainConfig) -> None:
    """Write everything needed to resume, atomically."""
    opt_tensors, opt_rest = flatten_optimizer(opt.state_dict())
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"optim.{k}": v for k, v in opt_tensors.items()})
    tensors.update(_rng_tensors(gen, device))
    if best is not None:
        tensors.update({f"best.{k}": v for k, v in best.items()})
    meta = {"format": 1, "state": dataclasses.asdict(state), "optimizer": opt_rest,
            "config": resume_config(config), "model": model_fingerprint(model)}
    save_tensors(path, tensors, meta)


def load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
                    gen: torch.Generator, device: torch.device, config: TrainConfig
                    ) -> tuple[TrainingState, dict[str, Tensor] | None]:
    """Restore model, optimizer and RNG from ``path``; return the state and best weights."""
    tensors, meta = load_tensors(path)
    try:
        saved_model, saved_config = meta["model"], meta["config"]
        state = TrainingState(**meta["state"])
        opt_rest = meta["optimizer"]
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint file {path} lacks training state ({exc}); it was "
                              "not written by umm_helpers' Trainer.") from exc
    if saved_model != model_fingerprint(model):
        raise CheckpointError(f"checkpoint file {path} belongs to a different model (its "
                              "parameter names or shapes differ); use another checkpoint_dir.")
    now = resume_config(config)
    diff = sorted(k for k in set(now) | set(saved_config) if now.get(k) != saved_config.get(k))
    if diff:
        detail = ", ".join(f"{k}: saved {saved_config.get(k)!r}, now {now.get(k)!r}"
                           for k in diff)
        raise CheckpointError(f"checkpoint file {path} was written with another training "
                              f"config ({detail}); resume with the same settings or use another "
                              "checkpoint_dir.")
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        opt.load_state_dict(unflatten_optimizer(
            {k[6:]: v for k, v in tensors.items() if k.startswith("optim.")}, opt_rest))
        _restore_rng(tensors, gen, device)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"checkpoint file {path} does not fit this model or optimizer "
                              f"({exc}).") from exc
    best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")} or None
    return state, best
