"""The one training engine: ``Trainer`` and ``fit()`` (taught in notebook 02).

Every method of :mod:`umm_helpers.methods` is a recipe of calls to :func:`fit`. The loop reads
like d2l's: :meth:`Trainer.fit` runs :meth:`~Trainer.setup`, then per epoch
:meth:`~Trainer.fit_epoch` (which calls :meth:`~Trainer.prepare_batch` and
:meth:`~Trainer.step` per batch) and :meth:`~Trainer.end_epoch`. Each is a few lines a notebook
can show or a subclass can override (gradient clipping goes in ``step``, a schedule in
``end_epoch``).

Batches are index slices of a permutation drawn from a ``torch.Generator`` seeded by
``config.seed`` (:mod:`umm_helpers.engine.batches`). Per batch: training-time presence
(``config.keep``), then MMA (``p_missing``) or a custom ``presence_fn``, then the one zero-fill.
On CUDA, ``step`` replays a captured graph of the eager step for every full batch
(:mod:`umm_helpers.engine.capture`, notebook 09).

Under ``torchrun`` (notebook 07) the same loop trains data-parallel through PyTorch's
``DistributedDataParallel``: each rank takes a contiguous slice of every global batch of the
shared permutation, masks are drawn for the whole global batch and sliced, and only rank 0
writes checkpoints (:mod:`umm_helpers.engine.distributed`).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from umm_helpers.core.missing import apply_presence, mma_presence, training_presence
from umm_helpers.core.scoring import predict_logits, score_logits
from umm_helpers.data import MultiModalDataset, Split
from umm_helpers.engine import distributed
from umm_helpers.engine.batches import (
    batch_bounds,
    resident_batches,
    streamed_batches,
    use_streaming,
)
from umm_helpers.engine.capture import CapturedStep, CudaStepGraph, StepGraph
from umm_helpers.engine.config import TrainConfig, resolve_device
from umm_helpers.engine.state import (
    CHECKPOINT_NAME,
    TrainingState,
    load_checkpoint,
    save_checkpoint,
)
from umm_helpers.settings import progress_enabled

__all__ = ["CHECKPOINT_NAME", "Trainer", "TrainingDiverged", "fit", "task_loss",
           "classification_loss"]

LossFn = Callable[[nn.Module, dict[str, Tensor], dict[str, Tensor], Tensor], Tensor]
PresenceFn = Callable[[dict[str, Tensor], torch.Generator], dict[str, Tensor]]


class TrainingDiverged(ValueError):
    """The training loss or the weights became NaN or inf: the run stops and nothing of it is
    cached or checkpointed (lower ``TrainConfig.lr``)."""


def check_epoch_finite(train_loss: float, epoch: int, config: TrainConfig) -> None:
    """Stop a run whose epoch ended with a non-finite loss or non-finite weights.

    :meth:`Trainer.fit_epoch` folds the weights' check into the loss it returns (NaN when any
    weight or buffer is not finite), so this costs no host synchronisation beyond the one the
    epoch's loss already needs.
    """
    if not math.isfinite(train_loss):
        raise TrainingDiverged(
            f"training diverged in epoch {epoch} of {config.epochs}: the training loss or the "
            f"weights became NaN or inf (mean loss {train_loss}); the run stops and nothing of "
            f"this epoch is saved. Lower TrainConfig.lr (now {config.lr:g}), e.g. to "
            f"{config.lr / 10:g}.")


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


def make_optimizer(params: list[nn.Parameter], config: TrainConfig, capturable: bool = False
                   ) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` names (``capturable``: Adam's step count stays on the
    device, so that a CUDA graph can record the update)."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay,
                                capturable=capturable)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                                 capturable=capturable)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


def check_sizes(config: TrainConfig, n_train: int, has_validation: bool, world: int) -> None:
    """Refuse, before any work, a batch size or data size the run cannot use."""
    if world > 1 and (config.batch_size % world or config.batch_size // world < 2):
        raise ValueError(f"TrainConfig.batch_size = {config.batch_size} is invalid with "
                         f"{world} processes: expected a multiple of {world} giving each "
                         "process at least 2 samples (it is the global batch size).")
    if n_train < 2 * world:
        per = f" (2 per process, {world} processes)" if world > 1 else ""
        raise ValueError(f"fit needs at least {2 * world} training samples{per}, "
                         f"got {n_train}.")
    if config.patience and not has_validation:
        raise ValueError("TrainConfig.patience > 0 needs a validation split: pass a "
                         "MultiModalDataset or a pair (train, validation).")


def use_capture(config: TrainConfig, device: torch.device, world: int) -> bool:
    """Whether full batches replay a captured CUDA graph: by default on CUDA in one process;
    ``capture=True`` where that cannot run is refused before any work."""
    possible = device.type == "cuda" and world == 1
    if config.capture and not possible:
        where = (f"{world} processes (torchrun)" if world > 1 else f"device {device}")
        raise ValueError(f"TrainConfig.capture = True needs a CUDA device and one process, got "
                         f"{where}: pass capture=None (auto) or False.")
    return possible and config.capture is not False


class Trainer:
    """Trains a model in place: ``fit -> fit_epoch -> prepare_batch -> step``, then ``end_epoch``.

    ``loss(model, inputs, present, labels)`` defaults to the task loss; ``presence_fn(present,
    generator)`` replaces MMA for custom masks. With ``checkpoint_dir`` a checkpoint is written
    every ``checkpoint_every`` epochs and ``resume=True`` continues from it.
    """

    def __init__(self, config: TrainConfig | None = None, loss: LossFn | None = None,
                 presence_fn: PresenceFn | None = None, checkpoint_dir: str | Path | None = None,
                 resume: bool = False, desc: str = "train") -> None:
        self.config = (config or TrainConfig()).validate()
        self.loss_fn = loss or task_loss
        self.presence_fn = presence_fn
        self.checkpoint = (Path(checkpoint_dir) / CHECKPOINT_NAME
                           if checkpoint_dir is not None else None)
        self.resume, self.desc = resume, desc
        self.saved_flags: list[tuple[nn.Parameter, bool]] = []
        self.bar: Any = None
        self.captured: CapturedStep | None = None
        self.teardown_ddp: Callable[[], None] = lambda: None

    def fit(self, model: nn.Module, data: MultiModalDataset | Split | Sequence[Split | None],
            trainable: Iterable[nn.Parameter] | None = None) -> list[dict[str, Any]]:
        """Train until ``epochs`` (or early stopping); return the history, one dict per epoch."""
        try:
            self.setup(model, data, trainable)
            while self.state.epoch < self.config.epochs and not self.state.stopped:
                start = time.perf_counter()
                train_loss = self.fit_epoch()
                check_epoch_finite(train_loss, self.state.epoch + 1, self.config)
                self.end_epoch(train_loss, time.perf_counter() - start)
        finally:
            self.teardown()
        if self.config.patience and self.best is not None:
            model.load_state_dict(self.best)
        model.eval()
        return self.state.history

    def setup(self, model: nn.Module, data: MultiModalDataset | Split | Sequence[Split | None],
              trainable: Iterable[nn.Parameter] | None) -> None:
        """Check sizes, place model and data, build the optimizer, resume, wrap for DDP."""
        cfg = self.config
        train, val = as_splits(data)
        self.world, self.rank = distributed.world_size(), distributed.rank()
        check_sizes(cfg, len(train), val is not None, self.world)
        self.device = device = resolve_device(cfg)
        self.model = model.to(device)
        set_prior = getattr(model, "set_prior", None)
        if callable(set_prior):  # fusion models answer with the training-label prior
            set_prior(train.labels)
        params = list(trainable) if trainable is not None else [
            p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("fit: no trainable parameters.")
        chosen = {id(p) for p in params}
        self.saved_flags = [(p, p.requires_grad) for p in model.parameters()]
        for p in model.parameters():  # the rest is frozen during the call
            p.requires_grad_(id(p) in chosen)
        capture = use_capture(cfg, device, self.world)
        self.opt = make_optimizer(params, cfg, capturable=capture)
        self.gen = torch.Generator(device=device if device.type == "cuda" else "cpu")
        self.gen.manual_seed(cfg.seed)
        keep = training_presence(len(train), train.modalities, cfg.keep, seed=cfg.seed)
        self.p_missing = cfg.p_missing or 0.0
        self.stream = use_streaming(cfg.stream, device, train, val)
        self.keep = {m: k.to(device) for m, k in keep.items()}
        self.train = train if self.stream else train.to(device)
        self.val = val.to(device) if (val is not None and not self.stream) else val
        self.state, self.best = TrainingState(), None
        if self.resume and self.checkpoint is not None and self.checkpoint.exists():
            self.state, self.best = load_checkpoint(self.checkpoint, model, self.opt, self.gen,
                                                    device, cfg)
        self.net, self.teardown_ddp = distributed.wrap_model(model, cfg.sync_batchnorm)
        self.autocast = cfg.amp and device.type == "cuda"
        self.bounds = batch_bounds(len(train), cfg.batch_size, min_last=2 * self.world)
        self.shards = [distributed.shard_range(e - s, self.rank, self.world)
                       for s, e in self.bounds]
        self.captured = (CapturedStep(self.eager_step, cfg.batch_size, self.new_graph)
                         if capture else None)
        self.bar = _progress(cfg.epochs, min(self.state.epoch, cfg.epochs), self.desc)

    def new_graph(self) -> StepGraph:
        """The graph a captured step records into (a CUDA graph; tests on a CPU pass a stand-in
        that replays by calling the step again)."""
        return CudaStepGraph()

    def fit_epoch(self) -> float:
        """One pass over a fresh permutation; returns the mean training loss."""
        self.model.train()
        if self.world > 1:  # dropout etc.: a stream per (seed, rank, epoch), resumable
            torch.manual_seed(distributed.derive_seed(self.config.seed, self.rank,
                                                      self.state.epoch))
        n = len(self.train)
        perm = torch.randperm(n, generator=self.gen, device=self.gen.device).to(self.device)
        index = [perm[s:e] for s, e in self.bounds]  # global batches, the same on every rank
        mine = [idx[lo:hi] for idx, (lo, hi) in zip(index, self.shards)]
        batches = (streamed_batches(self.train, mine, self.device, self.config.num_workers)
                   if self.stream else resident_batches(self.train, mine))
        total = torch.zeros((), device=self.device)
        for idx, (lo, hi), (x, y) in zip(index, self.shards, batches):
            x, present = self.prepare_batch(x, idx, lo, hi)
            # Each rank's loss is a mean over its shard; scaled by world * shard / batch, every
            # sample of the global batch weighs the same once DDP averages over ranks.
            total += self.step(x, present, y, self.world * (hi - lo) / len(idx)) * y.shape[0]
        distributed.all_reduce_sum(total)
        state = [t for t in self.model.state_dict().values() if torch.is_floating_point(t)]
        if state:  # NaN unless every weight and buffer is finite: checked with the loss
            finite = torch.stack([torch.isfinite(t).all() for t in state]).all()
            total = torch.where(finite, total, torch.full_like(total, math.nan))
        return float(total) / sum(e - s for s, e in self.bounds)

    def prepare_batch(self, x: dict[str, Tensor], idx: Tensor, lo: int, hi: int
                      ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Presence masks of the global batch ``idx`` (keep, then MMA), this rank's slice
        ``[lo, hi)`` of them, and the zero-filled inputs."""
        present = {m: k[idx] for m, k in self.keep.items()}
        if self.presence_fn is not None:
            present = self.presence_fn(present, self.gen)
        elif self.p_missing > 0:
            present = mma_presence(present, self.p_missing, self.gen)
        if self.world > 1:
            present = {m: p[lo:hi] for m, p in present.items()}
        return apply_presence(x, present)

    def step(self, x: dict[str, Tensor], present: dict[str, Tensor], y: Tensor,
             weight: float = 1.0) -> Tensor:
        """Forward, backward, optimizer step; returns the batch loss (detached, float32).

        On CUDA full batches replay a captured graph of :meth:`eager_step`
        (:mod:`umm_helpers.engine.capture`); a subclass that overrides ``step`` steps eagerly.
        """
        if self.captured is not None:
            return self.captured(x, present, y)
        return self.eager_step(x, present, y, weight)

    def eager_step(self, x: dict[str, Tensor], present: dict[str, Tensor], y: Tensor,
                   weight: float = 1.0) -> Tensor:
        """The step, op by op: the reference a captured step is checked against."""
        # A graph caches nothing across replays, so autocast must not cache casts either.
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                            enabled=self.autocast, cache_enabled=self.captured is None):
            value = self.loss_fn(self.net, x, present, y)
        # Captured: gradients are zeroed in place, so the graph keeps their addresses.
        self.opt.zero_grad(set_to_none=self.captured is None)
        (value * weight).backward()
        self.opt.step()
        return value.detach().float()

    def end_epoch(self, train_loss: float, seconds: float) -> None:
        """Validation, history, early stopping, checkpoint and progress bar."""
        cfg, state = self.config, self.state
        distributed.broadcast_module(self.model, buffers_only=True)  # BatchNorm statistics
        val_score = (score_logits(predict_logits(self.model, self.val), self.val.labels)
                     if self.val is not None else None)
        if val_score is not None:
            val_score = distributed.broadcast_float(val_score)
        state.epoch += 1
        state.history.append({"epoch": state.epoch, "train_loss": train_loss,
                              "val_score": val_score, "seconds": seconds})
        if cfg.patience and val_score is not None:
            if state.best_score is None or val_score > state.best_score:
                state.best_score, state.bad_epochs = val_score, 0
                self.best = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            else:
                state.bad_epochs += 1
                state.stopped = state.bad_epochs >= cfg.patience
        if self.checkpoint is not None and (state.epoch % cfg.checkpoint_every == 0
                                            or state.epoch == cfg.epochs or state.stopped):
            if distributed.is_main():
                save_checkpoint(self.checkpoint, self.model, self.opt, self.gen, self.device,
                                state, self.best, cfg)
            distributed.barrier()
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{train_loss:.3f}",
                             val="-" if val_score is None else f"{val_score:.3f}")

    def teardown(self) -> None:
        """Close the bar, undo the DDP wrapping and restore ``requires_grad`` flags."""
        if self.bar is not None:
            self.bar.close()
        self.teardown_ddp()
        for p, flag in self.saved_flags:
            p.requires_grad_(flag)


def _progress(total: int, initial: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="epoch", leave=False,
                disable=not progress_enabled() or not distributed.is_main())


def fit(model: nn.Module, data: MultiModalDataset | Split | Sequence[Split | None],
        config: TrainConfig | None = None, loss: LossFn | None = None,
        trainable: Iterable[nn.Parameter] | None = None, presence_fn: PresenceFn | None = None,
        checkpoint_dir: str | Path | None = None, resume: bool = False,
        desc: str = "train") -> list[dict[str, Any]]:
    """Train ``model`` in place; return the history (one dict per epoch). Notebook 02.

    ``trainable`` limits which parameters the optimizer updates (the rest are frozen during the
    call). With ``patience > 0``, training stops after that many epochs without a better
    validation score and the best weights are restored. See :class:`Trainer` for the rest.
    """
    trainer = Trainer(config, loss, presence_fn, checkpoint_dir, resume, desc)
    return trainer.fit(model, data, trainable)
