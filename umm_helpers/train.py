"""The one training engine: ``TrainConfig`` and ``fit()`` (taught in notebook 02).

Every method of :mod:`umm_helpers.methods` is a recipe of calls to :func:`fit`. Data that fits
lives on the device; batches are index slices of a device-side permutation drawn from a
``torch.Generator`` seeded by ``config.seed`` (no per-sample Python, no DataLoader). Larger data
streams through a DataLoader with pinned memory, using the same permutation. Per batch:
training-time presence (``config.keep``), then MMA (``p_missing``), then zero-fill.

Under ``torchrun`` (an open process group, see :mod:`umm_helpers.distributed`, notebook 07) the
same loop trains data-parallel: each rank takes a contiguous slice of every global batch of the
shared permutation, masks are drawn for the whole global batch and sliced, gradients are
averaged across ranks before the optimizer step, and only rank 0 writes checkpoints.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from umm_helpers import distributed
from umm_helpers.checkpoint import (CheckpointError, flatten_optimizer, load_tensors,
                                    model_fingerprint, save_tensors, unflatten_optimizer)
from umm_helpers.config import get_device, progress_enabled
from umm_helpers.data import MultiModalDataset, Split
from umm_helpers.evaluate import predict_logits, score_logits
from umm_helpers.missing import apply_presence, mma_presence, training_presence

OPTIMIZERS = ("adam", "adamw", "sgd")
CHECKPOINT_NAME = "checkpoint.safetensors"
# Fields that may change between an interrupted run and its resumption.
RESUME_FREE_FIELDS = ("epochs", "checkpoint_every", "device", "stream", "num_workers", "patience")
# Resident data may use at most this fraction of free accelerator memory.
RESIDENT_FRACTION = 0.25

LossFn = Callable[[nn.Module, dict[str, Tensor], dict[str, Tensor], Tensor], Tensor]
PresenceFn = Callable[[dict[str, Tensor], torch.Generator], dict[str, Tensor]]


@dataclass
class TrainConfig:
    """Training settings shared by every method (notebook 02).

    ``p_missing=None`` means the method's default (0.5 for ``joint-mma`` and ``ume-mma``, else 0).
    ``keep`` gives training-time missing data: ``{"audio": 0.2}`` keeps audio for 20% of the
    training samples. ``finetune_lr_scale`` and ``finetune_epochs`` (None = ``epochs``) apply to
    the fine-tuning stage of ``ume-mma``.
    """

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    p_missing: float | None = None
    seed: int = 0
    device: str | None = None
    amp: bool = True
    patience: int = 0
    checkpoint_every: int = 1
    distill_weight: float = 1.0
    keep: dict[str, float] = field(default_factory=dict)
    stream: bool | None = None
    finetune_lr_scale: float = 0.3
    finetune_epochs: int | None = None
    num_workers: int = 0
    sync_batchnorm: bool = False

    def validate(self) -> "TrainConfig":
        """Raise ``ValueError`` naming the first bad field and its valid range."""
        def bad(name: str, valid: str) -> ValueError:
            return ValueError(f"TrainConfig.{name} = {getattr(self, name)!r} is invalid: "
                              f"expected {valid}.")

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        def is_num(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        if not is_int(self.epochs) or self.epochs < 1:
            raise bad("epochs", "an integer >= 1")
        if not is_int(self.batch_size) or self.batch_size < 2:
            raise bad("batch_size", "an integer >= 2")
        if not is_num(self.lr) or self.lr <= 0:
            raise bad("lr", "a number > 0")
        if not is_num(self.weight_decay) or self.weight_decay < 0:
            raise bad("weight_decay", "a number >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"one of {list(OPTIMIZERS)}")
        if self.p_missing is not None and (not is_num(self.p_missing)
                                           or not 0 <= self.p_missing <= 1):
            raise bad("p_missing", "None (method default) or a number in [0, 1]")
        if not is_int(self.seed) or self.seed < 0:
            raise bad("seed", "an integer >= 0")
        if self.device is not None and not isinstance(self.device, (str, torch.device)):
            raise bad("device", "None (auto) or a device name such as 'cpu' or 'cuda'")
        if not isinstance(self.amp, bool):
            raise bad("amp", "True or False")
        if not isinstance(self.sync_batchnorm, bool):
            raise bad("sync_batchnorm", "True or False")
        if not is_int(self.patience) or self.patience < 0:
            raise bad("patience", "an integer >= 0 (0 turns early stopping off)")
        if not is_int(self.checkpoint_every) or self.checkpoint_every < 1:
            raise bad("checkpoint_every", "an integer >= 1")
        if not is_num(self.distill_weight) or self.distill_weight < 0:
            raise bad("distill_weight", "a number >= 0")
        if not isinstance(self.keep, Mapping) or not all(
                isinstance(k, str) and is_num(v) and 0 <= v <= 1 for k, v in self.keep.items()):
            raise bad("keep", "a dict {modality: fraction in [0, 1]}")
        if self.stream not in (None, True, False):
            raise bad("stream", "None (auto), True or False")
        if not is_num(self.finetune_lr_scale) or self.finetune_lr_scale <= 0:
            raise bad("finetune_lr_scale", "a number > 0")
        if self.finetune_epochs is not None and (not is_int(self.finetune_epochs)
                                                 or self.finetune_epochs < 1):
            raise bad("finetune_epochs", "None (= epochs) or an integer >= 1")
        if not is_int(self.num_workers) or self.num_workers < 0:
            raise bad("num_workers", "an integer >= 0")
        return self

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["keep"] = {k: float(v) for k, v in sorted(self.keep.items())}
        d["device"] = None if self.device is None else str(self.device)
        return d


def resolve_device(config: TrainConfig) -> torch.device:
    """``config.device`` or the best available device."""
    return torch.device(config.device) if config.device is not None else get_device()


def classification_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy (labels ``[B]``) or binary cross-entropy with logits (labels ``[B, C]``)."""
    if labels.ndim == 2:
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
    return F.cross_entropy(logits.float(), labels)


def task_loss(model: nn.Module, inputs: dict[str, Tensor], present: dict[str, Tensor],
              labels: Tensor) -> Tensor:
    """The default loss: the task loss of ``model(inputs, present)``."""
    return classification_loss(model(inputs, present), labels)


def as_splits(data: MultiModalDataset | Split | Sequence[Split | None]
              ) -> tuple[Split, Split | None]:
    """``(train, validation)`` from a data set, a single split, or a pair."""
    if isinstance(data, MultiModalDataset):
        return data.train, data.validation
    if isinstance(data, Split):
        return data, None
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], Split):
        return data[0], data[1]
    raise TypeError("fit() takes a MultiModalDataset, a Split, or a pair (train, validation) "
                    f"of Splits, got {type(data).__name__}.")


def _split_bytes(*splits: Split | None) -> int:
    total = 0
    for s in splits:
        if s is not None:
            total += sum(x.numel() * x.element_size() for x in s.inputs.values())
            total += s.labels.numel() * s.labels.element_size()
    return total


def use_streaming(config: TrainConfig, device: torch.device, *splits: Split | None) -> bool:
    """True when batches should stream from CPU memory (forced or data too big for the device)."""
    if config.stream is not None:
        return bool(config.stream)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return _split_bytes(*splits) > RESIDENT_FRACTION * free
    return False


def batch_bounds(n: int, batch_size: int, min_last: int = 2) -> list[tuple[int, int]]:
    """``(start, end)`` of each batch; a trailing batch under ``min_last`` samples is dropped.

    ``min_last=2`` keeps BatchNorm away from one-sample batches; data-parallel ``fit`` passes
    ``2 * world_size`` so that every rank's slice of the last batch has at least 2 samples
    (notebook 07).
    """
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_last:
        bounds.pop()
    return bounds


class _BatchSource(torch.utils.data.Dataset):
    """Streaming path: each item is a whole batch, sliced from CPU tensors by an index batch."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, idx: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        return {m: x[idx] for m, x in self.split.inputs.items()}, self.split.labels[idx]


def _make_optimizer(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


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


def _resume_config(config: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in config.to_dict().items() if k not in RESUME_FREE_FIELDS}


@dataclass
class _State:
    """Non-tensor training state, saved as the checkpoint's JSON."""

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float | None = None
    bad_epochs: int = 0
    stopped: bool = False


def _save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
                     gen: torch.Generator, device: torch.device, state: _State,
                     best: dict[str, Tensor] | None, config: TrainConfig) -> None:
    opt_tensors, opt_rest = flatten_optimizer(opt.state_dict())
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"optim.{k}": v for k, v in opt_tensors.items()})
    tensors.update(_rng_tensors(gen, device))
    if best is not None:
        tensors.update({f"best.{k}": v for k, v in best.items()})
    meta = {"format": 1, "state": dataclasses.asdict(state), "optimizer": opt_rest,
            "config": _resume_config(config), "model": model_fingerprint(model)}
    save_tensors(path, tensors, meta)


def _load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
                     gen: torch.Generator, device: torch.device, config: TrainConfig
                     ) -> tuple[_State, dict[str, Tensor] | None]:
    tensors, meta = load_tensors(path)
    try:
        saved_model, saved_config = meta["model"], meta["config"]
        state = _State(**meta["state"])
        opt_rest = meta["optimizer"]
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint file {path} lacks training state ({exc}); it was "
                              "not written by umm_helpers.train.fit.") from exc
    if saved_model != model_fingerprint(model):
        raise CheckpointError(f"checkpoint file {path} belongs to a different model (its "
                              "parameter names or shapes differ); use another checkpoint_dir.")
    now = _resume_config(config)
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


def _progress(total: int, initial: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="epoch", leave=False,
                disable=not progress_enabled() or not distributed.is_main())


def _resident_batches(train: Split, indices: list[Tensor]
                      ) -> Iterator[tuple[dict[str, Tensor], Tensor]]:
    for idx in indices:
        yield {m: x[idx] for m, x in train.inputs.items()}, train.labels[idx]


def _streamed_batches(source: _BatchSource, indices: list[Tensor], device: torch.device,
                      num_workers: int) -> Iterator[tuple[dict[str, Tensor], Tensor]]:
    loader = torch.utils.data.DataLoader(
        source, sampler=[idx.cpu() for idx in indices], batch_size=None,
        pin_memory=device.type == "cuda", num_workers=num_workers)
    for x, y in loader:
        yield ({m: v.to(device, non_blocking=True) for m, v in x.items()},
               y.to(device, non_blocking=True))


def fit(model: nn.Module, data: MultiModalDataset | Split | Sequence[Split | None],
        config: TrainConfig | None = None, loss: LossFn | None = None,
        trainable: Iterable[nn.Parameter] | None = None, presence_fn: PresenceFn | None = None,
        checkpoint_dir: str | Path | None = None, resume: bool = False,
        desc: str = "train") -> list[dict[str, Any]]:
    """Train ``model`` in place; return the history (one dict per epoch). Notebook 02.

    ``loss(model, inputs, present, labels)`` defaults to the task loss; ``trainable`` limits
    which parameters the optimizer updates (the rest are frozen during the call);
    ``presence_fn(present, generator)`` replaces MMA for custom masks. With ``checkpoint_dir``
    a checkpoint is written every ``checkpoint_every`` epochs and ``resume=True`` continues from
    it. With ``patience > 0``, training stops after that many epochs without a better
    validation score and the best weights are restored.

    Inside an open process group (``torchrun``, notebook 07) ``fit`` trains data-parallel with
    global batch ``config.batch_size`` (which must divide by the number of processes): see
    :mod:`umm_helpers.distributed` for what is exact and what (BatchNorm) is not.
    """
    config = (config or TrainConfig()).validate()
    train, val = as_splits(data)
    world, rank = distributed.world_size(), distributed.rank()
    if world > 1 and (config.batch_size % world or config.batch_size // world < 2):
        raise ValueError(f"TrainConfig.batch_size = {config.batch_size} is invalid with "
                         f"{world} processes: expected a multiple of {world} giving each "
                         "process at least 2 samples (it is the global batch size).")
    if len(train) < 2 * world:
        per = f" (2 per process, {world} processes)" if world > 1 else ""
        raise ValueError(f"fit needs at least {2 * world} training samples{per}, "
                         f"got {len(train)}.")
    if config.patience and val is None:
        raise ValueError("TrainConfig.patience > 0 needs a validation split: pass a "
                         "MultiModalDataset or a pair (train, validation).")
    loss_fn = loss or task_loss
    device = resolve_device(config)
    model.to(device)
    if hasattr(model, "set_prior"):
        model.set_prior(train.labels)

    params = list(trainable) if trainable is not None else [
        p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("fit: no trainable parameters.")
    chosen = {id(p) for p in params}
    saved_flags = [(p, p.requires_grad) for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
    opt = _make_optimizer(params, config)

    gen = torch.Generator(device=device if device.type == "cuda" else "cpu")
    gen.manual_seed(config.seed)
    keep = training_presence(len(train), train.modalities, config.keep, seed=config.seed)
    p_missing = config.p_missing or 0.0
    stream = use_streaming(config, device, train, val)
    keep = {m: k.to(device) for m, k in keep.items()}
    if stream:
        source = _BatchSource(train)
    else:
        train = train.to(device)
    val_dev = val.to(device) if (val is not None and not stream) else val

    ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    state, best = _State(), None
    if resume and ckpt is not None and ckpt.exists():
        state, best = _load_checkpoint(ckpt, model, opt, gen, device, config)
    distributed.broadcast_module(model)  # every rank starts from rank 0's weights

    restore_batchnorm = (distributed.synced_batchnorm(model)
                         if world > 1 and config.sync_batchnorm else None)
    autocast = config.amp and device.type == "cuda"
    bounds = batch_bounds(len(train), config.batch_size, min_last=2 * world)
    shards = [distributed.shard_range(e - s, rank, world) for s, e in bounds]
    bar = _progress(config.epochs, min(state.epoch, config.epochs), desc)
    try:
        while state.epoch < config.epochs and not state.stopped:
            t0 = time.perf_counter()
            model.train()
            if world > 1:  # dropout etc.: a stream per (seed, rank, epoch), resumable
                torch.manual_seed(distributed.derive_seed(config.seed, rank, state.epoch))
            perm = torch.randperm(len(train), generator=gen, device=gen.device).to(device)
            index = [perm[s:e] for s, e in bounds]  # global batches, the same on every rank
            mine = [idx[lo:hi] for idx, (lo, hi) in zip(index, shards)]
            batches = (_streamed_batches(source, mine, device, config.num_workers)
                       if stream else _resident_batches(train, mine))
            total = torch.zeros((), device=device)
            for idx, (lo, hi), (x, y) in zip(index, shards, batches):
                present = {m: k[idx] for m, k in keep.items()}  # masks of the global batch
                if presence_fn is not None:
                    present = presence_fn(present, gen)
                elif p_missing > 0:
                    present = mma_presence(present, p_missing, gen)
                if world > 1:
                    present = {m: p[lo:hi] for m, p in present.items()}
                x, present = apply_presence(x, present)
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                    enabled=autocast):
                    value = loss_fn(model, x, present, y)
                opt.zero_grad(set_to_none=True)
                # Each rank's loss is a mean over its shard; scaled by world * shard / batch,
                # every sample of the global batch weighs the same on every rank, so the
                # gradients summed over ranks / world are the global-batch gradient (also
                # through the global statistics of synced BatchNorm).
                (value * (world * (hi - lo) / len(idx))).backward()
                distributed.all_reduce_gradients(params, 1.0 / world)
                opt.step()
                total += value.detach().float() * y.shape[0]
            distributed.all_reduce_sum(total)
            train_loss = float(total) / sum(e - s for s, e in bounds)
            seconds = time.perf_counter() - t0
            distributed.broadcast_module(model, buffers_only=True)  # BatchNorm statistics
            val_score = (score_logits(predict_logits(model, val_dev), val_dev.labels)
                         if val_dev is not None else None)
            if val_score is not None:
                val_score = distributed.broadcast_float(val_score)
            state.epoch += 1
            state.history.append({"epoch": state.epoch, "train_loss": train_loss,
                                  "val_score": val_score, "seconds": seconds})
            if config.patience and val_score is not None:
                if state.best_score is None or val_score > state.best_score:
                    state.best_score, state.bad_epochs = val_score, 0
                    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    state.bad_epochs += 1
                    state.stopped = state.bad_epochs >= config.patience
            if ckpt is not None and (state.epoch % config.checkpoint_every == 0
                                     or state.epoch == config.epochs or state.stopped):
                if distributed.is_main():
                    _save_checkpoint(ckpt, model, opt, gen, device, state, best, config)
                distributed.barrier()
            bar.update(1)
            bar.set_postfix(loss=f"{train_loss:.3f}",
                            val="-" if val_score is None else f"{val_score:.3f}")
    finally:
        bar.close()
        if restore_batchnorm is not None:
            restore_batchnorm()
        for p, flag in saved_flags:
            p.requires_grad_(flag)
    if config.patience and best is not None:
        model.load_state_dict(best)
    model.eval()
    return state.history
