"""Hugging Face text models as modality encoders: frozen (feature cache) and trainable paths.

Every test builds a tiny randomly initialised BERT in a temporary folder; nothing is downloaded.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from umm_helpers.core.hf_text import (  # noqa: E402
    HFModelNotFound,
    HFTextEncoder,
    HFTextUnavailable,
    hf_text_factory,
    hf_text_identity,
    tokenize_texts,
)
from umm_helpers.core.missing import apply_presence  # noqa: E402
from umm_helpers.data import MultiModalDataset, Split  # noqa: E402
from umm_helpers.engine.config import TrainConfig  # noqa: E402
from umm_helpers.methods.feature_cache import cache_features  # noqa: E402
from umm_helpers.methods.identity import encoder_identity  # noqa: E402
from umm_helpers.methods.run import run_method  # noqa: E402

torch.set_num_threads(1)

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
WORDS = DIGITS + [str(i) for i in range(10)] + [
    "the", "digit", "number", "is", "a", "it", "this", "looks", "like", "i", "think", "plus",
    "minus", "or", "maybe", "just", "after", "before", "handwritten", "spoken", "shows",
    "clearly", "picture", "of", "label", "#", "+", "-", ".", ",", "!", "?", ":"]
HIDDEN = 32


def _write_bert(folder, seed: int = 0) -> None:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=5 + len(WORDS), hidden_size=HIDDEN, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(str(folder))


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf") / "tiny-bert"
    _write_bert(folder)
    return folder


TEXTS = ["the digit seven", "3 plus 4", "either two or seven", "i think it is a nine !",
         "looks like 5", "zero"]


def test_loads_offline_from_a_folder(bert, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    enc = HFTextEncoder(bert)
    assert "HF_HUB_OFFLINE" not in os.environ, "the offline switch is restored"
    out = enc(TEXTS)
    assert out.shape == (len(TEXTS), HIDDEN) and out.dtype == torch.float32
    assert enc.out_features == HIDDEN and bool(torch.isfinite(out).all())
    assert enc.meta_key == "text" and "pooling='mean'" in repr(enc)
    with pytest.raises(TypeError, match="list of strings"):
        enc("one string")
    with pytest.raises(ValueError, match="pooling"):
        HFTextEncoder(bert, pooling="max")


def test_mean_pooling_ignores_padding_and_batch_composition(bert):
    enc = HFTextEncoder(bert)
    alone = torch.cat([enc([t]) for t in TEXTS])
    together = enc(TEXTS)  # padded to the longest text
    long = "the digit seven plus the number two minus one is eight , i think"
    mixed = enc([TEXTS[5], long, TEXTS[0]])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mixed[[0, 2]], alone[[5, 0]], rtol=1e-5, atol=1e-5)
    small = HFTextEncoder(bert, batch_size=2)  # batching inside forward changes nothing
    torch.testing.assert_close(small(TEXTS), together, rtol=1e-5, atol=1e-5)
    # token tensors padded to max_length give the same embeddings as strings
    ids = tokenize_texts(TEXTS, bert, max_length=64)
    torch.testing.assert_close(enc(ids), together, rtol=1e-5, atol=1e-5)


def test_cls_pooling_differs_from_mean(bert):
    mean, cls = HFTextEncoder(bert)(TEXTS), HFTextEncoder(bert, pooling="cls")(TEXTS)
    assert cls.shape == mean.shape and not torch.allclose(cls, mean, atol=1e-3)


def test_frozen_encoder_never_trains(bert):
    enc = HFTextEncoder(bert)
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training and not enc.model.training
    out = enc(TEXTS[:2])
    assert not out.requires_grad
    trainable = HFTextEncoder(bert, trainable=True)
    assert trainable.training and all(p.requires_grad for p in trainable.parameters())
    trainable.eval()
    assert not trainable.model.training
    assert trainable(TEXTS[:2]).requires_grad


def test_identity_follows_files_pooling_and_length(bert, tmp_path):
    a, b = HFTextEncoder(bert), HFTextEncoder(bert)
    assert a.cache_identity == b.cache_identity == hf_text_identity(bert)
    assert a.cache_identity.startswith("hf-text:")
    assert HFTextEncoder(bert, pooling="cls").cache_identity != a.cache_identity
    assert HFTextEncoder(bert, max_length=16).cache_identity != a.cache_identity
    other = tmp_path / "other"
    _write_bert(other, seed=1)
    assert hf_text_identity(other) != a.cache_identity
    same = tmp_path / "same"
    _write_bert(same, seed=0)  # another folder with the same files: same identity
    assert hf_text_identity(same) == a.cache_identity
    _write_bert(same, seed=2)  # weights overwritten in place
    assert hf_text_identity(same) != a.cache_identity
    # run-cache key of the factory follows the files and options; a factory whose files
    # changed refuses to build
    assert encoder_identity(hf_text_factory(bert)) == encoder_identity(hf_text_factory(bert))
    assert encoder_identity(hf_text_factory(bert)) != encoder_identity(hf_text_factory(other))
    assert (encoder_identity(hf_text_factory(bert))
            != encoder_identity(hf_text_factory(bert, pooling="cls")))
    assert (encoder_identity(hf_text_factory(bert))
            != encoder_identity(hf_text_factory(bert, trainable=True)))
    stale = hf_text_factory(same)
    _write_bert(same, seed=3)
    with pytest.raises(RuntimeError, match="changed"):
        stale()


def _text_dataset(n=(12, 6, 8)) -> MultiModalDataset:
    rng = np.random.default_rng(0)
    parts, meta = [], {}
    for k, size in zip(("train", "validation", "test"), n):
        y = rng.integers(0, 3, size=size)
        parts.append(({"text": np.zeros((size, 4), np.float32),
                       "image": rng.normal(size=(size, 5)).astype(np.float32) + y[:, None]}, y))
        meta[k] = {"text": [f"the digit {DIGITS[c]}" for c in y]}
    return MultiModalDataset.from_arrays(*parts, name="hf-tiny", meta=meta)


def test_feature_cache_encodes_each_text_once(bert):
    ds = _text_dataset()
    enc = HFTextEncoder(bert)
    calls: list[int] = []
    enc.register_forward_hook(lambda *_: calls.append(1))
    cached = cache_features(ds, {"text": enc}, batch_size=5, device="cpu")
    assert len(calls) == 3 + 2 + 2 and not cached.info["features"]["text"]["loaded"]
    for k, split in cached.splits().items():
        assert split.inputs["text"].shape == (len(split), HIDDEN)
        torch.testing.assert_close(split.inputs["text"], enc(ds.splits()[k].meta["text"]),
                                   rtol=1e-5, atol=1e-5)
        assert torch.equal(split.inputs["image"], ds.splits()[k].inputs["image"])
    again = HFTextEncoder(bert)
    again_calls: list[int] = []
    again.register_forward_hook(lambda *_: again_calls.append(1))
    reloaded = cache_features(ds, {"text": again}, device="cpu")
    assert again_calls == [] and reloaded.info["features"]["text"]["loaded"]
    assert reloaded.checksum == cached.checksum
    for k in ("train", "test"):
        assert torch.equal(reloaded.splits()[k].inputs["text"], cached.splits()[k].inputs["text"])
    cls = cache_features(ds, {"text": HFTextEncoder(bert, pooling="cls")}, device="cpu")
    assert not cls.info["features"]["text"]["loaded"] and cls.checksum != cached.checksum


def test_a_missing_model_is_never_downloaded(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(HFModelNotFound) as info:
        HFTextEncoder(missing)
    msg = str(info.value)
    assert str(missing) in msg and "only on this disk" in msg
    assert "allow_download=True" in msg and f"huggingface-cli download {missing}" in msg
    with pytest.raises(HFModelNotFound, match="umm-tests/no-such-model"):
        tokenize_texts(["one"], "umm-tests/no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HFModelNotFound, match="no model files"):
        HFTextEncoder(tmp_path / "empty")


def test_missing_transformers_names_the_extra(bert, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers now fails
    for call in (lambda: HFTextEncoder(bert), lambda: tokenize_texts(["one"], bert)):
        with pytest.raises(HFTextUnavailable, match=r"pip install -e \.\[hf\]") as info:
            call()
        assert isinstance(info.value, ImportError)


def test_tokenize_texts_and_missing_rows(bert):
    ids = tokenize_texts(TEXTS, bert, max_length=12)
    assert ids.shape == (len(TEXTS), 2, 12) and ids.dtype == torch.long
    mask = ids[:, 1]
    assert set(mask.unique().tolist()) <= {0, 1} and bool((mask[:, 0] == 1).all())
    assert bool((ids[:, 0][mask == 0] == 0).all())  # [PAD] where the mask is 0
    with pytest.raises(TypeError, match="list"):
        tokenize_texts("one string", bert)
    for trainable in (False, True):
        enc = HFTextEncoder(bert, pooling="mean", trainable=trainable)
        x = ids.clone()
        x[[1, 4]] = 0  # missing samples are zero-filled
        for values in (x, x.float()):  # from_arrays stores ids as float32 integers
            out = enc(values)
            assert out.shape == (len(TEXTS), HIDDEN) and bool(torch.isfinite(out).all())
            assert float(out[[1, 4]].detach().abs().sum()) == 0.0
        if trainable:  # gradients stay finite through an all-padding row
            enc(x).sum().backward()
            assert all(torch.isfinite(p.grad).all() for p in enc.parameters()
                       if p.grad is not None)
        assert bool(torch.isfinite(HFTextEncoder(bert, pooling="cls")(x)).all())
    with pytest.raises(ValueError, match=r"\[B, 2, L\]"):
        enc(ids[:, 0])
    with pytest.raises(ValueError, match="token ids"):
        enc(torch.full((2, 2, 4), 10_000))


def _tokenized_dataset(bert, n=(40, 10, 12), classes: int = 3) -> MultiModalDataset:
    rng = np.random.default_rng(1)
    parts = []
    for size in n:
        y = rng.integers(0, classes, size=size)
        texts = [f"{rng.choice(['the digit', 'it is', 'looks like'])} {DIGITS[c]}" for c in y]
        image = rng.normal(size=(size, 1, 8, 8)).astype(np.float32) + y[:, None, None, None]
        parts.append(({"image": image, "text": tokenize_texts(texts, bert, max_length=16)}, y))
    return MultiModalDataset.from_arrays(*parts, name="hf-tokens")


def test_integer_token_tensors_through_the_data_contract(bert):
    ids = tokenize_texts(TEXTS, bert, max_length=10)
    ds = MultiModalDataset.from_arrays(({"text": ids}, [0, 1, 2, 0, 1, 2]),
                                       ({"text": ids[:2]}, [0, 1]), ({"text": ids[:3]}, [0, 1, 2]))
    stored = ds.train.inputs["text"]  # float32 holding the exact integer ids
    assert stored.dtype == torch.float32 and torch.equal(stored.long(), ids)
    raw = Split({"text": ids}, torch.tensor([0, 1, 2, 0, 1, 2]), ["a", "b", "c"])
    assert raw.inputs["text"].dtype == torch.long  # a Split keeps integer tensors as they are
    present = {"text": torch.tensor([True, False, True, True, True, True])}
    filled, _ = apply_presence(raw.inputs, present)
    assert filled["text"].dtype == torch.long and float(filled["text"][1].abs().sum()) == 0
    enc = HFTextEncoder(bert)
    torch.testing.assert_close(enc(stored), enc(ids))


def test_trainable_encoder_fine_tunes_through_run_method(bert):
    ds = _tokenized_dataset(bert)
    run = run_method("ume", ds, encoders={"text": lambda: HFTextEncoder(bert, trainable=True)},
                     config=TrainConfig(epochs=2, batch_size=16), cache=False)
    scores = run.result["scores"]
    assert set(scores) >= {"full", "miss:image", "miss:text"}
    assert all(np.isfinite(v) for v in scores.values())
    assert len([h for h in run.history if h.get("stage") == "unimodal:text"]) == 2
    before = HFTextEncoder(bert).model.state_dict()
    after = run.model.encoders["text"].model.state_dict()
    assert after.keys() == before.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k].cpu())]
    assert any("embeddings.word_embeddings" in k for k in changed)
    assert any("encoder.layer.1" in k for k in changed)


def test_frozen_encoder_through_run_method_trains_only_heads(bert):
    ds = _tokenized_dataset(bert, n=(24, 8, 8))
    run = run_method("joint", ds, encoders={"text": hf_text_factory(bert)},
                     config=TrainConfig(epochs=1, batch_size=12), cache=False)
    before = HFTextEncoder(bert).model.state_dict()
    after = run.model.encoders["text"].model.state_dict()
    assert all(torch.equal(before[k], after[k].cpu()) for k in before)
    assert np.isfinite(run.result["scores"]["full"])
