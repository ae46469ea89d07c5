"""Any Hugging Face text model (``transformers``) as the encoder of a text modality.

Taught in the README section "Beyond the embedded data" (a third modality). Two ways to use it:

* **Frozen** (default): :class:`HFTextEncoder` reads raw strings from ``split.meta["text"]``, so
  ``cache_features(dataset, {"text": HFTextEncoder(path)})`` encodes every text once (exactly
  like :class:`umm_helpers.core.text.SentenceEncoder`) and the methods then train small heads on the
  cached vectors. Weights never train: eval mode always, ``requires_grad=False``, ``no_grad``.
* **Trainable** (end-to-end fine-tuning through :func:`umm_helpers.methods.run.run_method`): the
  modality tensor holds token ids and attention masks from :func:`tokenize_texts`
  (``[N, 2, L]``), and ``HFTextEncoder(path, trainable=True)`` (best built by
  :func:`hf_text_factory`) encodes them inside the model. A zero-filled row is a missing sample.

Models load from this disk only (``local_files_only=True`` with the hub switched off, see
:func:`umm_helpers.core.text.offline_hub`): a local folder, or a model already in the Hugging Face
cache. ``allow_download=True`` (or ``hf download NAME`` beforehand) fetches it once. Install the
optional dependency with ``pip install -e .[hf]``; ``transformers`` is imported only when a
model is loaded.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn

from umm_helpers.core.encoders import freeze
from umm_helpers.core.text import MODEL_FILE_SUFFIXES, model_files_digest, offline_hub

HF_INSTALL_HINT = "pip install -e .[hf]"
POOLINGS = ("mean", "cls")
# Files that can change what a transformers model computes (SentencePiece vocabularies included).
HF_FILE_SUFFIXES = MODEL_FILE_SUFFIXES + (".model",)
# Token ids may be stored as float32 (``MultiModalDataset.from_arrays`` converts integer arrays):
# every integer below 2**24 is exact in float32.
FLOAT_EXACT_IDS = 2 ** 24

ModelName = str | Path


class HFTextUnavailable(ImportError):
    """The optional ``transformers`` package is not installed (``pip install -e .[hf]``)."""


class HFModelNotFound(FileNotFoundError):
    """A Hugging Face model is neither a local folder nor in the local Hugging Face cache."""


def _transformers() -> ModuleType:
    try:
        return import_module("transformers")
    except ImportError as exc:
        raise HFTextUnavailable(
            "HFTextEncoder needs the optional package transformers, which is not installed "
            f"({exc}). Install it with `{HF_INSTALL_HINT}` from the repository root (or "
            "`pip install 'transformers>=4.40'`); the rest of umm_helpers never needs it."
        ) from exc


@contextlib.contextmanager
def _quiet_loading(tf: ModuleType) -> Iterator[None]:
    """No "Loading weights" progress bars from transformers inside; the setting is restored."""
    logging = getattr(getattr(tf, "utils", None), "logging", None)
    try:
        was = bool(logging.is_progress_bar_enabled())  # type: ignore[union-attr]
        logging.disable_progress_bar()  # type: ignore[union-attr]
    except AttributeError:
        was = False
    try:
        yield
    finally:
        if was:
            logging.enable_progress_bar()  # type: ignore[union-attr]


def _not_found(name: ModelName, detail: str = "") -> HFModelNotFound:
    why = f" ({detail})" if detail else ""
    return HFModelNotFound(
        f"Hugging Face model {str(name)!r} was not found{why}. It was looked up only on this "
        "disk, as a folder and in the local Hugging Face cache: models are never downloaded "
        "unless asked. Fetch it once with allow_download=True (e.g. "
        f"HFTextEncoder({str(name)!r}, allow_download=True)) or on the command line with "
        f"`huggingface-cli download {name}` (newer huggingface_hub: `hf download {name}`), or "
        "pass the path of a folder holding its config.json, weights and tokenizer files.")


def _cached_snapshot(name: str) -> Path | None:
    """The local Hugging Face cache folder of hub model ``name``, or None (never downloads)."""
    try:
        hub = import_module("huggingface_hub")
        with offline_hub():
            return Path(hub.snapshot_download(str(name), local_files_only=True))
    except Exception:  # not cached, not a valid repo id, or no huggingface_hub
        return None


def resolve_model_folder(name_or_path: ModelName, allow_download: bool = False) -> Path:
    """The local folder of a model: ``name_or_path`` itself or its Hugging Face cache snapshot.

    With ``allow_download=True`` a hub model missing from the cache is downloaded first (only
    the files ``transformers`` needs to load the tokenizer and the model). Otherwise a missing
    model raises :class:`HFModelNotFound` naming the model and how to fetch it.
    """
    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        return folder
    snapshot = _cached_snapshot(str(name_or_path))
    if snapshot is None and allow_download:
        tf = _transformers()
        try:
            tf.AutoTokenizer.from_pretrained(str(name_or_path))
            tf.AutoModel.from_pretrained(str(name_or_path))
        except (OSError, ValueError) as exc:
            raise HFModelNotFound(f"could not download Hugging Face model {str(name_or_path)!r}: "
                                  f"{exc}") from exc
        snapshot = _cached_snapshot(str(name_or_path))
    if snapshot is None:
        raise _not_found(name_or_path)
    return snapshot


def hf_text_identity(name_or_path: ModelName, pooling: str = "mean", max_length: int = 64,
                     allow_download: bool = False) -> str:
    """Stable name of an encoder without loading it (feature- and run-cache keys).

    A digest of the model folder's weight, config and tokenizer files plus ``pooling`` and
    ``max_length``: changing any of them changes the key; moving the folder does not.
    """
    _check_options(pooling, max_length)
    return _folder_identity(resolve_model_folder(name_or_path, allow_download), name_or_path,
                            pooling, max_length)


def _folder_identity(folder: Path, name: ModelName, pooling: str, max_length: int) -> str:
    digest = model_files_digest(folder, HF_FILE_SUFFIXES, recursive=False)
    if digest is None:
        raise _not_found(name, f"{folder} holds no model files")
    return f"hf-text:{digest}(pooling={pooling},max_length={int(max_length)})"


def _load_tokenizer(folder: Path, name: ModelName) -> Any:
    tf = _transformers()
    with offline_hub(), _quiet_loading(tf):
        try:
            return tf.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise _not_found(name, f"no usable tokenizer in {folder}: {exc}") from exc


def load_hf_tokenizer(name_or_path: ModelName, allow_download: bool = False) -> Any:
    """The tokenizer of a model, loaded from this disk only unless ``allow_download``."""
    _transformers()
    return _load_tokenizer(resolve_model_folder(name_or_path, allow_download), name_or_path)


def _check_options(pooling: str, max_length: int) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling = {pooling!r}: expected one of {POOLINGS}.")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise ValueError(f"max_length = {max_length!r}: expected an integer >= 1.")


def tokenize_texts(texts: Sequence[str], name_or_path: ModelName | Any, max_length: int = 64,
                   allow_download: bool = False) -> Tensor:
    """Token ids and attention masks of ``texts``: a LongTensor ``[N, 2, max_length]``.

    ``[:, 0]`` holds the input ids, ``[:, 1]`` the attention mask (1 = a real token); every row
    is truncated or padded to ``max_length``, so all splits share one sample shape. Use it as
    the tensor of a text modality trained end to end by ``HFTextEncoder(..., trainable=True)``.
    ``name_or_path`` is a model (folder or cached hub name) or an already loaded tokenizer.
    """
    if isinstance(texts, str):
        raise TypeError("tokenize_texts takes a sequence of strings, not one string: wrap it "
                        "in a list.")
    _check_options("mean", max_length)
    tokenizer = (load_hf_tokenizer(name_or_path, allow_download)
                 if isinstance(name_or_path, (str, Path)) else name_or_path)
    if len(tokenizer) > FLOAT_EXACT_IDS:
        raise ValueError(f"the vocabulary has {len(tokenizer)} tokens; ids above {FLOAT_EXACT_IDS} "
                         "would not survive a float32 data set.")
    enc = tokenizer([str(t) for t in texts], padding="max_length", truncation=True,
                    max_length=max_length, return_tensors="pt")
    return torch.stack([enc["input_ids"].long(), enc["attention_mask"].long()], dim=1)


class HFTextEncoder(nn.Module):
    """A Hugging Face text model as a modality encoder: texts or token ids -> ``[B, F]``.

    ``forward`` takes a list of strings (tokenised on the fly, at most ``max_length`` tokens,
    ``batch_size`` texts per model call) or a ``[B, 2, L]`` tensor from :func:`tokenize_texts`
    (integer, or float holding integers). ``pooling="mean"`` averages the last hidden states over
    the attended tokens (padding never changes the embedding); ``"cls"`` takes the first token.
    A row without any attended token (a zero-filled missing sample) gives a zero vector.
    ``out_features`` is the model's hidden size; ``cache_identity`` names the model files,
    pooling and ``max_length`` (see :func:`hf_text_identity`).

    Frozen by default (eval mode always, ``requires_grad=False``, ``no_grad``), for
    :func:`umm_helpers.methods.feature_cache.cache_features`, which reads ``split.meta[meta_key]``.
    ``trainable=True`` trains the whole model with the engine. Loading never downloads unless
    ``allow_download=True``. Notebook 07; README "Beyond the embedded data".
    """

    def __init__(self, name_or_path: ModelName, pooling: str = "mean", max_length: int = 64,
                 trainable: bool = False, meta_key: str = "text", batch_size: int = 64,
                 allow_download: bool = False) -> None:
        super().__init__()
        _check_options(pooling, max_length)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size = {batch_size!r}: expected an integer >= 1.")
        tf = _transformers()
        self.name_or_path = str(name_or_path)
        self.pooling, self.max_length = pooling, int(max_length)
        self.trainable, self.meta_key, self.batch_size = bool(trainable), meta_key, int(batch_size)
        folder = resolve_model_folder(name_or_path, allow_download)
        self.cache_identity = _folder_identity(folder, name_or_path, pooling, max_length)
        self.tokenizer = _load_tokenizer(folder, name_or_path)
        with offline_hub(), _quiet_loading(tf):  # the files are on disk now
            try:
                self.model = tf.AutoModel.from_pretrained(str(folder), local_files_only=True)
            except (OSError, ValueError) as exc:
                raise _not_found(name_or_path, f"no loadable model in {folder}: {exc}") from exc
        config = self.model.config
        hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
        if not hidden:
            raise ValueError(f"{self.name_or_path}: the model config has no hidden_size.")
        self.out_features = int(hidden)
        self.vocab_size = int(getattr(config, "vocab_size", 0) or len(self.tokenizer))
        if not self.trainable:
            freeze(self.model)
        super().train(self.trainable)

    def train(self, mode: bool = True) -> HFTextEncoder:
        """A frozen encoder always stays in eval mode; a trainable one switches as usual."""
        super().train(bool(mode) and self.trainable)
        return self

    def extra_repr(self) -> str:
        return (f"name_or_path={self.name_or_path!r}, pooling={self.pooling!r}, "
                f"max_length={self.max_length}, trainable={self.trainable}, "
                f"out_features={self.out_features}")

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _ids(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.ndim != 3 or x.shape[1] != 2:
            raise ValueError(f"HFTextEncoder takes token tensors [B, 2, L] (ids, attention mask) "
                             f"from tokenize_texts, got shape {tuple(x.shape)}.")
        if x.is_floating_point():
            x = x.round()
        x = x.long()
        ids, mask = x[:, 0], x[:, 1]
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size - 1}] for "
                             f"{self.name_or_path}, found {int(ids.min())}..{int(ids.max())}; "
                             "were they made by tokenize_texts with this model?")
        return ids, mask

    def _encode(self, ids: Tensor, mask: Tensor) -> Tensor:
        device = self._device()
        ids, mask = ids.to(device), mask.to(device)
        empty = mask.sum(dim=1) == 0
        attend = mask.clone()
        attend[:, 0] = torch.where(empty, torch.ones_like(attend[:, 0]), attend[:, 0])
        hidden = self.model(input_ids=ids, attention_mask=attend).last_hidden_state.float()
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask.to(hidden.dtype).unsqueeze(-1)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return torch.where(empty.unsqueeze(1), torch.zeros_like(pooled), pooled)

    def _encode_texts(self, texts: Sequence[str]) -> Tensor:
        out = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer([str(t) for t in texts[start:start + self.batch_size]],
                                 padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
            out.append(self._encode(enc["input_ids"], enc["attention_mask"]))
        if not out:
            return torch.zeros((0, self.out_features), device=self._device())
        return torch.cat(out)

    def forward(self, x: Tensor | Sequence[str]) -> Tensor:
        if isinstance(x, str):
            raise TypeError("HFTextEncoder takes a list of strings, not one string.")
        with contextlib.nullcontext() if self.trainable else torch.no_grad():
            if isinstance(x, Tensor):
                return self._encode(*self._ids(x))
            return self._encode_texts(list(x))


def hf_text_factory(name_or_path: ModelName, **options: Any) -> Callable[[], HFTextEncoder]:
    """A zero-argument factory of ``HFTextEncoder(name_or_path, **options)`` for ``run_method``.

    Its run-cache identity covers the model files, pooling, ``max_length`` and every option
    (the identity is captured by the factory), so a cached run is never reused after the
    weights change; a plain ``lambda`` would only name the path. If the files change between
    making the factory and calling it, the call raises instead of training on other weights.
    """
    identity = hf_text_identity(name_or_path, options.get("pooling", "mean"),
                                options.get("max_length", 64),
                                options.get("allow_download", False))

    def make() -> HFTextEncoder:
        encoder = HFTextEncoder(name_or_path, **options)
        if encoder.cache_identity != identity:
            raise RuntimeError(f"the files of {str(name_or_path)!r} changed since this factory "
                               "was made; call hf_text_factory again.")
        return encoder

    return make


__all__ = ["HFTextEncoder", "HFTextUnavailable", "HFModelNotFound", "tokenize_texts",
           "hf_text_factory", "hf_text_identity", "load_hf_tokenizer", "resolve_model_folder",
           "HF_INSTALL_HINT"]
