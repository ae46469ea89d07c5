"""The captured training step (``engine/capture.py``) against the eager step it replays.

On a CPU the graph is :class:`RecordedStep` (capture records, replay calls the step again on the
static buffers), so these tests check what the engine does around a graph: static copies,
warm-up, the last shorter batch, in-place gradients, the fallback. ``make gpu-check`` runs the
CUDA tests below with a real CUDA graph.
"""
from __future__ import annotations

import pytest
import torch
from _engine_data import late_model, same_weights, step_by_hand, tiny_dataset

from umm_helpers.engine.capture import CapturedStep, RecordedStep
from umm_helpers.engine.trainer import TrainConfig, Trainer

# 96 training samples in batches of 16 and 20: every epoch ends with a shorter batch for 20.
CONFIGS = [TrainConfig(epochs=3, batch_size=16, device="cpu", p_missing=0.5),
           TrainConfig(epochs=3, batch_size=20, device="cpu", keep={"audio": 0.5}),
           TrainConfig(epochs=2, batch_size=20, device="cpu", optimizer="sgd")]


class RecordedTrainer(Trainer):
    """Captures on a CPU, into a graph that replays by calling the step again."""

    warmup = 2

    def setup(self, model, data, trainable):
        super().setup(model, data, trainable)
        self.captured = CapturedStep(self.eager_step, self.config.batch_size, self.new_graph,
                                     warmup=self.warmup)

    def new_graph(self):
        return RecordedStep()


def _train(trainer_cls, config, seed=0):
    ds = tiny_dataset()
    model = late_model(ds, seed)
    trainer = trainer_cls(config)
    history = trainer.fit(model, ds)
    return model, history, trainer


@pytest.mark.parametrize("config", CONFIGS, ids=["mma", "keep-remainder", "sgd-remainder"])
def test_captured_step_gives_the_eager_losses_and_weights(config):
    eager_model, eager_hist, _ = _train(Trainer, config)
    model, hist, trainer = _train(RecordedTrainer, config)
    assert [h["train_loss"] for h in hist] == [h["train_loss"] for h in eager_hist]
    assert same_weights(model, eager_model)
    full = sum(1 for s, e in trainer.bounds if e - s == config.batch_size)
    # every full batch after the warm-up replayed the graph; the shorter ones ran eagerly
    assert trainer.captured.replays == full * config.epochs - RecordedTrainer.warmup


def test_gradients_stay_in_place_once_captured():
    ds = tiny_dataset()
    trainer = RecordedTrainer(TrainConfig(epochs=1, batch_size=16, device="cpu"))
    model = late_model(ds)
    trainer.setup(model, ds, None)
    try:
        trainer.fit_epoch()
        before = {n: p.grad for n, p in model.named_parameters()}
        trainer.fit_epoch()
        assert all(p.grad is before[n] for n, p in model.named_parameters())
    finally:
        trainer.teardown()


def test_a_batch_of_another_shape_runs_eagerly():
    calls = []

    def eager(x, present, y):
        calls.append(y.shape[0])
        return y.float().sum()

    step = CapturedStep(eager, rows=4, new_graph=RecordedStep, warmup=1)
    batch = ({"a": torch.ones(4, 2)}, {"a": torch.ones(4, dtype=torch.bool)})
    # a replay's output is the graph's static tensor: read before the next step, as fit does
    outs = [float(step(*batch, torch.full((4,), k))) for k in (1, 2, 3)]
    short = step({"a": torch.ones(3, 2)}, {"a": torch.ones(3, dtype=torch.bool)},
                 torch.full((3,), 5))
    assert outs == [4.0, 8.0, 12.0]  # each replay reads the batch copied in
    assert float(short) == 15.0 and step.replays == 2
    assert calls == [4, 4, 4, 3]  # warm-up, replays (through the recorded step), eager


def test_a_step_that_cannot_be_captured_trains_eagerly_with_a_warning():
    class Unrecordable(RecordedStep):
        def capture(self, fn):
            raise RuntimeError("operation not permitted when stream is capturing")

    class FailingTrainer(RecordedTrainer):
        def new_graph(self):
            return Unrecordable()

    config = CONFIGS[0]
    eager_model, eager_hist, _ = _train(Trainer, config)
    with pytest.warns(UserWarning, match="could not be captured .*RuntimeError.*capture=False"):
        model, hist, trainer = _train(FailingTrainer, config)
    assert trainer.captured.failed and trainer.captured.replays == 0
    assert [h["train_loss"] for h in hist] == [h["train_loss"] for h in eager_hist]
    assert same_weights(model, eager_model)


def test_capture_is_auto_on_cuda_and_refused_where_it_cannot_run():
    ds = tiny_dataset()
    trainer = Trainer(TrainConfig(epochs=1, device="cpu"))
    trainer.setup(late_model(ds), ds, None)
    trainer.teardown()
    assert trainer.captured is None  # auto: eager on a CPU
    with pytest.raises(ValueError, match=r"capture = True needs a CUDA device and one process, "
                                         r"got device cpu: pass capture=None \(auto\) or False"):
        Trainer(TrainConfig(epochs=1, device="cpu", capture=True)).fit(late_model(ds), ds)
    with pytest.raises(ValueError, match=r"TrainConfig.capture = 'yes' is invalid"):
        TrainConfig(capture="yes").validate()


def test_capture_is_not_part_of_the_run_key():
    from umm_helpers.methods.run import resolve

    ds = tiny_dataset()
    keys = {resolve("joint", ds, config=TrainConfig(capture=c)).key for c in (None, False)}
    assert len(keys) == 1


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU "
                                                               "(make gpu-check)")


@pytest.mark.cuda
@cuda
def test_cuda_graph_step_matches_the_eager_step_on_cuda():
    # Captured and eager differ only in Adam's device-side step count: equal to float rounding.
    config = TrainConfig(epochs=3, batch_size=16, device="cuda", p_missing=0.5)
    eager_model, eager_hist, _ = _train(Trainer, config.replace(capture=False))
    model, hist, trainer = _train(Trainer, config)
    assert trainer.captured is not None and not trainer.captured.failed
    assert trainer.captured.replays > 0
    for a, b in zip(hist, eager_hist):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    for (name, a), b in zip(model.state_dict().items(), eager_model.state_dict().values()):
        if torch.is_floating_point(a):
            assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), name


@pytest.mark.cuda
@cuda
def test_replaying_the_captured_step_never_synchronises():
    ds = tiny_dataset()
    trainer = Trainer(TrainConfig(epochs=1, batch_size=16, device="cuda", p_missing=0.5))
    trainer.setup(late_model(ds), ds, None)
    try:
        trainer.fit_epoch()  # warm-up and capture (capture itself synchronises once)
        perm = torch.randperm(len(ds.train), generator=trainer.gen, device=trainer.gen.device)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        for s, e in trainer.bounds:
            step_by_hand(trainer, perm[s:e])
    finally:
        torch.cuda.set_sync_debug_mode(0)
        trainer.teardown()
    assert trainer.captured is not None and not trainer.captured.failed
    assert trainer.captured.replays >= len(trainer.bounds)
