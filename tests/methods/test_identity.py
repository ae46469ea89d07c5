"""Run identity: what makes two runs the same run, and a key that cannot go stale."""
from __future__ import annotations

import functools
import shutil

import torch
from _engine_data import tiny_dataset

from umm_helpers.core.encoders import ConvEncoder, MLPEncoder, default_encoders
from umm_helpers.engine.config import TrainConfig
from umm_helpers.methods import identity
from umm_helpers.methods.identity import encoder_identity, run_key, source_digest


def test_run_key_depends_on_what_shapes_a_run():
    cfg = TrainConfig().to_dict()
    base = run_key("abc", "joint", cfg, {"audio": "enc"})
    assert base == run_key("abc", "joint", cfg, {"audio": "enc"})
    assert base != run_key("abd", "joint", cfg, {"audio": "enc"})
    assert base != run_key("abc", "ume", cfg, {"audio": "enc"})
    assert base != run_key("abc", "joint", TrainConfig(lr=0.01).to_dict(), {"audio": "enc"})
    assert base != run_key("abc", "joint", cfg, {"audio": "other"})
    assert base != run_key("abc", "joint", cfg, {"audio": "enc"}, {"distill_weight": 2.0})
    assert base == run_key("abc", "joint", TrainConfig(device="cuda", stream=True).to_dict(),
                           {"audio": "enc"})


def test_encoder_identity_names_factory_and_arguments():
    ds = tiny_dataset()
    ident = encoder_identity(default_encoders(ds)["image"])
    assert ident == "umm_helpers.core.encoders.default_encoder((1, 4, 4))"
    torch.manual_seed(0)
    a = torch.nn.Linear(2, 2)
    b = torch.nn.Linear(2, 2)
    assert encoder_identity(a) != encoder_identity(b)
    assert encoder_identity(a).startswith("torch.nn.modules.linear.Linear@")


def test_encoder_identity_tells_lambdas_and_captured_values_apart():
    a = lambda: ConvEncoder(1)  # noqa: E731
    b = lambda: MLPEncoder(4)  # noqa: E731
    assert encoder_identity(a) != encoder_identity(b)

    def make(width):
        return lambda: MLPEncoder(4, out_features=width)

    assert encoder_identity(make(8)) != encoder_identity(make(16))
    assert encoder_identity(make(8)) == encoder_identity(make(8))
    assert encoder_identity(functools.partial(MLPEncoder, 4)) != \
        encoder_identity(functools.partial(MLPEncoder, 5))
    assert encoder_identity(ConvEncoder) == "umm_helpers.core.encoders.ConvEncoder"


def test_editing_the_engine_gives_a_new_key(tmp_path, monkeypatch):
    """A copy of the package with one changed line in the engine is another run."""
    same, copy = tmp_path / "same" / "umm_helpers", tmp_path / "edited" / "umm_helpers"
    for folder in (same, copy):
        shutil.copytree(identity.PACKAGE_ROOT, folder, ignore=shutil.ignore_patterns("__pycache__"))
    assert source_digest(same) == source_digest()
    trainer = copy / "engine" / "trainer.py"
    trainer.write_text(trainer.read_text().replace("self.opt.step()", "self.opt.step()  # edit"))
    assert source_digest(copy) != source_digest()
    cfg = TrainConfig().to_dict()
    before = run_key("abc", "joint", cfg, {"audio": "enc"})
    monkeypatch.setattr(identity, "source_digest", lambda: source_digest(copy))
    assert run_key("abc", "joint", cfg, {"audio": "enc"}) != before


def test_course_and_tools_do_not_change_the_key(tmp_path):
    """Plots and the command line only read results: editing them keeps every cached run."""
    copy = tmp_path / "umm_helpers"
    shutil.copytree(identity.PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    plots = copy / "course" / "plots.py"
    plots.write_text(plots.read_text() + "\n# an edit\n")
    assert source_digest(copy) == source_digest()
