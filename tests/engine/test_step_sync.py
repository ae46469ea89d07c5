"""No host synchronisation inside a training step: nothing in ``prepare_batch`` or ``step``
reads a value back from the device, so on a GPU the host can queue step after step.

On a CPU nothing synchronises, so the test counts the operations that *would* (reading a
value, a data-dependent shape) with a ``TorchFunctionMode``; ``make gpu-check`` runs the
same loop under ``torch.cuda.set_sync_debug_mode("error")``.
"""
from __future__ import annotations

import sys

import pytest
import torch
from _engine_data import late_model, step_by_hand, tiny_dataset
from torch.overrides import TorchFunctionMode

from umm_helpers.engine.trainer import TrainConfig, Trainer

# Operations that wait for the device: a value read back, or an output whose shape depends
# on the data.
SYNCING = {torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.tolist, torch.Tensor.cpu,
           torch.Tensor.numpy, torch.Tensor.__int__, torch.Tensor.__float__, torch.nonzero,
           torch.Tensor.nonzero, torch.masked_select, torch.Tensor.masked_select, torch.unique,
           torch.Tensor.unique, torch.argwhere}


class SyncCounter(TorchFunctionMode):
    """Records every syncing operation called outside ``torch.optim`` (the optimizers keep
    their step counters on the CPU by design: reading them does not wait for the device)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in SYNCING and not _inside("torch/optim/"):
            self.calls.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def _inside(part: str) -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if part in frame.f_code.co_filename.replace("\\", "/"):
            return True
        frame = frame.f_back
    return False


def test_the_counter_sees_a_syncing_operation():
    with SyncCounter() as counter:
        x = torch.ones(3)
        if x.sum() > 0:  # Tensor.__bool__
            x.nonzero()
        x.item() if x.numel() == 1 else x[0].item()
    assert counter.calls == ["__bool__", "nonzero", "item"]


@pytest.mark.parametrize("options", [{}, {"p_missing": 0.5}, {"keep": {"audio": 0.5}},
                                     {"p_missing": 0.5, "keep": {"audio": 0.5}}])
def test_prepare_batch_and_step_never_read_the_device(options):
    ds = tiny_dataset()
    trainer = Trainer(TrainConfig(epochs=1, batch_size=16, device="cpu", **options))
    trainer.setup(late_model(ds), ds, None)
    perm = torch.randperm(len(ds.train), generator=trainer.gen)
    try:
        with SyncCounter() as counter:
            for s, e in trainer.bounds:
                step_by_hand(trainer, perm[s:e])
    finally:
        trainer.teardown()
    assert counter.calls == []


def test_subset_mma_never_reads_the_device():
    from umm_helpers.core.missing import full_presence, mma_presence

    with SyncCounter() as counter:
        mma_presence(full_presence(32, ["a", "b", "c"]), 0.5, torch.Generator().manual_seed(0),
                     subsets=True)
    assert counter.calls == []


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (make gpu-check)")
def test_no_training_step_synchronises_on_cuda():
    ds = tiny_dataset()
    # the eager step (test_capture.py checks the replayed one)
    trainer = Trainer(TrainConfig(epochs=1, batch_size=16, device="cuda", p_missing=0.5,
                                  capture=False))
    trainer.setup(late_model(ds), ds, None)
    perm = torch.randperm(len(ds.train), generator=trainer.gen, device=trainer.gen.device)
    batches = [perm[s:e] for s, e in trainer.bounds]
    try:
        # first call: lazy initialisation (optimizer state, cuBLAS handles)
        step_by_hand(trainer, batches[0])
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")  # any synchronising call raises
        for idx in batches[1:]:
            step_by_hand(trainer, idx)
    finally:
        torch.cuda.set_sync_debug_mode(0)
        trainer.teardown()
