"""Data-parallel training under ``torchrun`` (taught in notebook 07, scaling up).

One process per device, each running the same engine (:func:`umm_helpers.engine.trainer.fit`)::

    torchrun --nproc_per_node=2 -m umm_helpers run --dataset av-digits --method joint --seed 0

``umm run`` calls :func:`session`, which reads the variables ``torchrun`` sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and opens the process group:
NCCL when the device is CUDA (each process on ``cuda:LOCAL_RANK``), gloo on CPU. Without those
variables nothing is initialised and every helper here answers as the single process it is
(rank 0 of 1), so the same code runs unchanged in a notebook.

How ``fit`` uses it (the global batch stays ``TrainConfig.batch_size``):

- every rank draws the *same* permutation (same generator seed) and takes a contiguous slice of
  each global batch (``batch_size / world_size`` samples), see :func:`shard_range`;
- training-time presence and MMA masks are drawn for the whole global batch, then sliced, so the
  masks are the ones a single process would draw;
- each rank's loss (a mean over its shard) is scaled by ``world * shard / batch`` before
  ``backward``, so every sample of the global batch weighs the same on every rank, and
  PyTorch's ``DistributedDataParallel`` averages the gradients over ranks while the backward pass
  runs (:func:`wrap_model`): for a loss that is a per-sample mean (the task loss) this is the
  single-process gradient up to floating-point reduction order, also for an uneven last batch;
- checkpoints and result files are written by rank 0 only; the others wait at a barrier.

By default BatchNorm layers normalise with the statistics of each rank's shard, so a
model with BatchNorm trained on N processes is close to, not equal to, its single-process run
(on the tiny test task with the default conv encoders, 2 processes of 8 samples each: weights
differ by about 1e-2 after one epoch, validation accuracy by up to 2 of 48 samples after five).
The running statistics of rank 0 are broadcast after every epoch so all ranks stay identical,
and the run cache keys such runs by the number of processes. A model without BatchNorm (and
without dropout) matches the single-process run to float rounding:
``tests/engine/test_distributed.py`` asserts a max absolute weight difference below 1e-5
(measured: 3e-8). Dropout draws from a per-rank stream seeded by ``(seed, rank, epoch)``,
see :func:`derive_seed`.

``TrainConfig(sync_batchnorm=True)`` (``--sync-batchnorm``) makes BatchNorm use the statistics
of the whole global batch instead: PyTorch's ``SyncBatchNorm`` on CUDA (NCCL), and our own
:func:`synced_batchnorm` on CPU (gloo), where ``SyncBatchNorm`` refuses CPU tensors. A
BatchNorm model then matches its single-process run to float
rounding too (2 gloo processes, 3 epochs of the tiny test task: max weight gap 2.4e-7 synced,
0.22 with per-shard statistics), at the cost of two small collectives per BatchNorm layer. A
layer feeding BatchNorm should have no bias (as in ``ConvEncoder``): that bias's gradient is zero
in theory, and Adam turns its rounding noise into steps of size ``lr`` on any number of processes.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class LaunchInfo:
    """Where this process sits in a ``torchrun`` launch."""

    rank: int
    world_size: int
    local_rank: int


def launch_info() -> LaunchInfo | None:
    """The launch read from ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``; None outside ``torchrun``."""
    if "WORLD_SIZE" not in os.environ:
        return None
    try:
        values = {k: int(os.environ.get(k, "0")) for k in ENV_VARS}
    except ValueError:
        raise ValueError("torchrun variables must be integers, got "
                         + ", ".join(f"{k}={os.environ.get(k)!r}" for k in ENV_VARS)) from None
    info = LaunchInfo(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])
    if info.world_size < 1 or not 0 <= info.rank < info.world_size or info.local_rank < 0:
        raise ValueError(f"inconsistent torchrun variables: {info}.")
    return info


def is_initialized() -> bool:
    """True when a process group is open."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_initialized() else 1


_current_rank = rank  # for functions whose ``rank`` argument shadows rank()


def is_main() -> bool:
    """True on rank 0, the only rank that writes files and prints."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (a no-op for a single process)."""
    if world_size() > 1:
        dist.barrier()


def init(backend: str | None = None) -> bool:
    """Open the process group from the ``torchrun`` variables; True when this call opened it.

    Returns False (and does nothing) outside ``torchrun`` or when a group is already open.
    ``backend`` defaults to NCCL when :func:`umm_helpers.settings.get_device` picks CUDA (the
    process then uses ``cuda:LOCAL_RANK``), else gloo.
    """
    info = launch_info()
    if info is None or is_initialized():
        return False
    from umm_helpers.settings import get_device

    cuda = get_device().type == "cuda"
    if cuda:
        gpus = torch.cuda.device_count()
        if info.local_rank >= gpus:
            raise RuntimeError(
                f"torchrun started process {info.local_rank} on this machine but it has {gpus} "
                f"CUDA device(s): each process needs its own GPU. Use --nproc_per_node={gpus}, "
                "or train on the CPU with UMM_DEVICE=cpu (gloo backend).")
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend or ("nccl" if cuda else "gloo"), init_method="env://",
                            rank=info.rank, world_size=info.world_size)
    return True


def destroy() -> None:
    """Close the process group if one is open."""
    if is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def session(backend: str | None = None) -> Iterator[bool]:
    """``init()`` on entry and, if it opened the group, ``destroy()`` on exit."""
    opened = init(backend)
    try:
        yield opened
    finally:
        if opened:
            destroy()


def derive_seed(seed: int, rank: int, *extra: int) -> int:
    """A 63-bit seed that depends on ``(seed, rank, *extra)`` (distinct per rank)."""
    text = ":".join(str(int(v)) for v in (seed, rank, *extra))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def shard_range(n: int, rank: int | None = None, world: int | None = None) -> tuple[int, int]:
    """``(start, end)`` of this rank's contiguous slice of ``n`` items (sizes differ by <= 1)."""
    r = rank if rank is not None else _current_rank()
    w = world if world is not None else world_size()
    return r * n // w, (r + 1) * n // w


def _comm_device(fallback: torch.device) -> torch.device:
    """Where a small tensor must live for a collective (CUDA for NCCL, else ``fallback``)."""
    if is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return fallback


def _nothing() -> None:
    """Undo for a wrapping that changed nothing."""


def wrap_model(model: nn.Module, sync_batchnorm: bool = False
               ) -> tuple[nn.Module, Callable[[], None]]:
    """The module to train and a function that undoes the wrapping.

    One process: ``model`` itself. Under ``torchrun``: PyTorch's ``DistributedDataParallel``,
    which broadcasts rank 0's weights and buffers on construction and averages gradients over
    ranks in buckets that overlap with the backward pass. With ``sync_batchnorm``, BatchNorm
    normalises over the global batch: PyTorch's ``SyncBatchNorm`` on CUDA, and
    :func:`synced_batchnorm` on CPU, where ``SyncBatchNorm`` refuses to run.
    """
    if world_size() == 1:
        return model, _nothing
    device = next(model.parameters()).device
    undo = _nothing
    if sync_batchnorm:
        undo = (torch_syncbatchnorm(model) if device.type == "cuda"
                else synced_batchnorm(model))
    ddp = nn.parallel.DistributedDataParallel(
        model, device_ids=[device] if device.type == "cuda" else None,
        broadcast_buffers=False)  # buffers (BatchNorm statistics) are broadcast per epoch
    return ddp, undo


def all_reduce_sum(value: Tensor) -> Tensor:
    """Sum ``value`` over ranks in place (returned for chaining)."""
    if world_size() > 1:
        dist.all_reduce(value)
    return value


def broadcast_tensors(tensors: Sequence[Tensor], src: int = 0) -> None:
    """Copy rank ``src``'s values into ``tensors`` on every rank, in place."""
    if world_size() == 1:
        return
    with torch.no_grad():
        for t in tensors:
            if t.is_contiguous():
                dist.broadcast(t, src)
            else:
                tmp = t.contiguous()
                dist.broadcast(tmp, src)
                t.copy_(tmp)


def broadcast_module(module: nn.Module, buffers_only: bool = False, src: int = 0) -> None:
    """Give every rank rank ``src``'s parameters and buffers (or only its buffers)."""
    tensors = list(module.buffers())
    if not buffers_only:
        tensors = [p.data for p in module.parameters()] + tensors
    broadcast_tensors(tensors, src)


def broadcast_float(value: float, src: int = 0) -> float:
    """Rank ``src``'s ``value`` on every rank."""
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_comm_device(torch.device("cpu")))
    dist.broadcast(t, src)
    return float(t.item())


class _SumOverRanks(torch.autograd.Function):
    """``all_reduce`` (sum) whose backward sums the gradients over ranks the same way."""

    @staticmethod
    def forward(ctx: object, value: Tensor) -> Tensor:
        out = value.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> Tensor:
        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


def _global_mean(value: Tensor, count: Tensor) -> Tensor:
    """Sum of ``value`` over ranks divided by ``count`` (differentiable across ranks)."""
    return _SumOverRanks.apply(value) / count


def _synced_forward(self: nn.modules.batchnorm._BatchNorm, x: Tensor) -> Tensor:
    """BatchNorm over the global batch: mean, then variance, each summed over ranks.

    Two passes (mean first, then the mean squared deviation) for the same accuracy as one
    process; the collectives are differentiable, so every rank's gradient includes the other
    ranks' share through the statistics. Falls back to the layer's own forward in eval mode,
    without a process group, or when running statistics are used for training.
    """
    if not (self.training and world_size() > 1) or (
            not self.track_running_stats and self.running_mean is not None):
        return type(self).forward(self, x)
    dims = [0, *range(2, x.dim())]
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    xf = x.float()
    count = all_reduce_sum(torch.tensor(float(xf.numel() // xf.shape[1]), device=x.device))
    mean = _global_mean(xf.sum(dims), count)
    centred = xf - mean.view(shape)
    var = _global_mean(centred.pow(2).sum(dims), count)
    if self.track_running_stats and self.running_mean is not None:
        assert self.running_var is not None and self.num_batches_tracked is not None
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                 else self.momentum)
            unbiased = var * (count / (count - 1).clamp(min=1))
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(unbiased.detach(), alpha=m)
    y = centred * torch.rsqrt(var.view(shape) + self.eps)
    if self.affine:
        y = y * self.weight.view(shape) + self.bias.view(shape)
    return y.to(x.dtype)


def torch_syncbatchnorm(module: nn.Module) -> Callable[[], None]:
    """Swap every BatchNorm layer for PyTorch's ``SyncBatchNorm`` (CUDA, NCCL) sharing its
    parameters and buffers; returns a function that puts the original layers back."""
    swapped = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
                    child, nn.SyncBatchNorm):
                setattr(parent, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
                swapped.append((parent, name, child))

    def restore() -> None:
        for parent, name, child in swapped:
            setattr(parent, name, child)

    return restore


def synced_batchnorm(module: nn.Module) -> Callable[[], None]:
    """Make every BatchNorm layer of ``module`` normalise over the global batch.

    Replaces each layer's ``forward`` in place (parameters, buffers and ``state_dict`` keys are
    untouched, so checkpoints stay ordinary BatchNorm checkpoints) and returns a function that
    restores the original ``forward``. Outside ``torchrun`` the layers behave as before.
    """
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        layer.forward = types.MethodType(_synced_forward, layer)  # type: ignore[method-assign]

    def restore() -> None:
        for layer in layers:
            layer.__dict__.pop("forward", None)

    return restore
