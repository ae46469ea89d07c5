"""The training engine: config validation, determinism, presence handling, checkpoints, resume."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from _engine_data import late_model, same_weights, tiny_dataset
from safetensors.torch import load_file

from umm_helpers.core.scoring import predict_logits, score_logits
from umm_helpers.engine.checkpoint import CheckpointError, load_tensors
from umm_helpers.engine.trainer import (
    CHECKPOINT_NAME,
    TrainConfig,
    batch_bounds,
    fit,
    task_loss,
)

TESTS = Path(__file__).resolve().parents[1]  # the folder of _engine_data.py


@pytest.fixture(scope="module")
def ds():
    return tiny_dataset()


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=16, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("field, value, fragment", [
    ("epochs", 0, "integer >= 1"), ("batch_size", 1, "integer >= 2"), ("lr", 0.0, "> 0"),
    ("lr", float("nan"), "> 0"), ("weight_decay", -1.0, ">= 0"),
    ("optimizer", "rmsprop", "'adam', 'adamw', 'sgd'"), ("p_missing", 1.5, "[0, 1]"),
    ("seed", -1, ">= 0"), ("patience", -2, "early stopping off"),
    ("checkpoint_every", 0, ">= 1"),
    ("keep", {"audio": 2.0}, "fraction in [0, 1]"), ("stream", "yes", "None (auto)"),
    ("amp", 1, "True or False"),
])
def test_bad_config_names_field_and_range(field, value, fragment):
    with pytest.raises(ValueError, match=rf"TrainConfig\.{field} = .*") as info:
        TrainConfig(**{field: value}).validate()
    assert fragment in str(info.value)


def test_default_config_is_valid_and_json_ready():
    d = TrainConfig(keep={"b": 0.5, "a": 0.2}).validate().to_dict()
    assert list(d["keep"]) == ["a", "b"] and d["optimizer"] == "adam"


def test_batch_bounds_drop_single_sample_tail():
    assert batch_bounds(33, 16) == [(0, 16), (16, 32)]
    assert batch_bounds(34, 16)[-1] == (32, 34)
    assert batch_bounds(5, 16) == [(0, 5)]


def test_history_and_learning(ds):
    model = late_model(ds)
    history = fit(model, ds, cfg(epochs=4))
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert set(history[0]) == {"epoch", "train_loss", "val_score", "seconds"}
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_score"] > 0.5  # four classes: chance is 0.25
    assert not model.training


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_same_seed_same_weights(ds, optimizer):
    a, b, c = late_model(ds), late_model(ds), late_model(ds)
    fit(a, ds, cfg(optimizer=optimizer, p_missing=0.5, seed=1))
    fit(b, ds, cfg(optimizer=optimizer, p_missing=0.5, seed=1))
    fit(c, ds, cfg(optimizer=optimizer, p_missing=0.5, seed=2))
    assert same_weights(a, b)
    assert not same_weights(a, c)


def test_streaming_path_matches_resident_path(ds):
    a, b = late_model(ds), late_model(ds)
    fit(a, ds, cfg(p_missing=0.3, keep={"audio": 0.5}, stream=False))
    fit(b, ds, cfg(p_missing=0.3, keep={"audio": 0.5}, stream=True))
    assert same_weights(a, b)


def _recording_loss(record: list):
    def loss(model, inputs, present, labels):
        record.append(({m: x.clone() for m, x in inputs.items()},
                       {m: p.clone() for m, p in present.items()}))
        return task_loss(model, inputs, present, labels)
    return loss


def test_training_time_missing_and_zero_fill(ds):
    record: list = []
    fit(late_model(ds), ds.train, cfg(epochs=1, keep={"audio": 0.25}), loss=_recording_loss(record))
    audio = torch.cat([p["audio"] for _, p in record])
    image = torch.cat([p["image"] for _, p in record])
    assert int(audio.sum()) == round(0.25 * len(ds.train))
    assert bool(image.all())
    for x, p in record:
        assert bool((x["audio"][~p["audio"]] == 0).all())
        assert bool((x["audio"][p["audio"]] != 0).any())


def test_mma_drops_exactly_one_modality_and_only_in_training(ds):
    record: list = []
    fit(late_model(ds), ds, cfg(epochs=1, p_missing=1.0), loss=_recording_loss(record))
    pres = torch.cat([torch.stack([p["audio"], p["image"]], 1) for _, p in record])
    assert bool((pres.sum(1) == 1).all())
    assert 0.3 < pres[:, 0].float().mean() < 0.7


def test_presence_fn_replaces_mma(ds):
    record: list = []

    def only_image(present, generator):
        return {"audio": torch.zeros_like(present["audio"]), "image": present["image"]}

    fit(late_model(ds), ds, cfg(epochs=1, p_missing=1.0), loss=_recording_loss(record),
        presence_fn=only_image)
    assert all(not p["audio"].any() and p["image"].all() for _, p in record)


def test_trainable_freezes_the_rest(ds):
    model = late_model(ds)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, ds, cfg(epochs=1), trainable=model.heads.parameters())
    after = model.state_dict()
    assert not torch.equal(before["heads.audio.weight"], after["heads.audio.weight"])
    assert torch.equal(before["encoders.audio.net.1.weight"], after["encoders.audio.net.1.weight"])
    assert all(p.requires_grad for p in model.parameters())


def test_prior_is_set_from_training_labels(ds):
    model = late_model(ds)
    fit(model, ds, cfg(epochs=1))
    counts = torch.bincount(ds.train.labels, minlength=ds.num_classes).float() + 1
    assert torch.allclose(model.prior_logits, (counts / counts.sum()).log())


def test_early_stopping_stops_and_restores_best(ds):
    stuck = late_model(ds)
    history = fit(stuck, ds, cfg(epochs=10, lr=1e-12, optimizer="sgd", patience=2))
    assert len(history) == 3  # no improvement after epoch 1: stop after two bad epochs

    model = late_model(ds)
    history = fit(model, ds, cfg(epochs=8, lr=0.5, optimizer="sgd", patience=8, seed=0))
    scores = [h["val_score"] for h in history]
    best = max(range(len(scores)), key=scores.__getitem__)
    assert best < len(scores) - 1, "setup must end on a worse epoch to test restoring"
    final = score_logits(predict_logits(model, ds.validation), ds.validation.labels)
    assert final == scores[best]


def test_patience_needs_validation(ds):
    with pytest.raises(ValueError, match="needs a validation split"):
        fit(late_model(ds), ds.train, cfg(patience=1))


def test_in_process_resume_is_bit_identical(ds, tmp_path):
    full = late_model(ds)
    fit(full, ds, cfg(epochs=4, p_missing=0.4, seed=5))
    part = late_model(ds)
    fit(part, ds, cfg(epochs=2, p_missing=0.4, seed=5), checkpoint_dir=tmp_path)
    resumed = late_model(ds)
    history = fit(resumed, ds, cfg(epochs=4, p_missing=0.4, seed=5), checkpoint_dir=tmp_path,
                  resume=True)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert same_weights(full, resumed)
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]  # no temp files left


def test_checkpoint_holds_tensors_and_json(ds, tmp_path):
    fit(late_model(ds), ds, cfg(epochs=2), checkpoint_dir=tmp_path)
    tensors, meta = load_tensors(tmp_path / CHECKPOINT_NAME)
    assert meta["state"]["epoch"] == 2 and len(meta["state"]["history"]) == 2
    assert {"rng.torch", "rng.generator"} <= set(tensors)
    assert any(k.startswith("optim.") and k.endswith(".exp_avg") for k in tensors)


def test_corrupt_checkpoint_names_the_file(ds, tmp_path):
    path = tmp_path / CHECKPOINT_NAME
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match=str(path)):
        fit(late_model(ds), ds, cfg(), checkpoint_dir=tmp_path, resume=True)


def test_mismatched_checkpoint_names_file_and_field(ds, tmp_path):
    fit(late_model(ds), ds, cfg(epochs=1), checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match=rf"{tmp_path}.*lr: saved 0.001, now 0.01"):
        fit(late_model(ds), ds, cfg(lr=0.01), checkpoint_dir=tmp_path, resume=True)
    three = tiny_dataset({"audio": (1, 8, 6), "image": (1, 4, 4), "text": (5,)})
    with pytest.raises(CheckpointError, match="different model"):
        fit(late_model(three), three, cfg(), checkpoint_dir=tmp_path, resume=True)


CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from _engine_data import late_model, tiny_dataset
    from safetensors.torch import save_file
    from umm_helpers.engine.trainer import TrainConfig, fit, task_loss

    mode, folder = sys.argv[1], sys.argv[2]
    ds = tiny_dataset()
    model = late_model(ds)
    config = TrainConfig(epochs={epochs}, batch_size=16, device="cpu", p_missing=0.3, seed=3)
    if mode == "slow":
        def loss(*args):
            time.sleep(0.03)
            return task_loss(*args)
        fit(model, ds, config, loss=loss, checkpoint_dir=folder)
    else:
        fit(model, ds, config, checkpoint_dir=folder, resume=True)
        save_file({{k: v.contiguous() for k, v in model.state_dict().items()}},
                  folder + "/final.safetensors")
""")


def test_killed_then_resumed_run_is_bit_identical(ds, tmp_path):
    epochs = 8
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(TESTS), epochs=epochs))
    folder = tmp_path / "ckpt"
    env = {**os.environ, "UMM_PROGRESS": "0"}
    child = subprocess.Popen([sys.executable, str(script), "slow", str(folder)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not (folder / CHECKPOINT_NAME).exists():
            assert child.poll() is None, "child ended before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    _, meta = load_tensors(folder / CHECKPOINT_NAME)
    assert 1 <= meta["state"]["epoch"] < epochs
    assert not list(folder.glob("*.tmp"))

    subprocess.run([sys.executable, str(script), "resume", str(folder)], env=env, check=True)
    resumed = load_file(str(folder / "final.safetensors"))

    model = late_model(ds)
    fit(model, ds, TrainConfig(epochs=epochs, batch_size=16, device="cpu", p_missing=0.3,
                               seed=3))
    expected = model.state_dict()
    assert resumed.keys() == expected.keys()
    assert all(torch.equal(resumed[k], expected[k]) for k in expected)
