"""What makes two runs the same run: the run-cache key (notebook 09, the engineering appendix).

The key hashes the data checksum, the method, the config fields that shape training, the
method's options, the encoder identities and a digest of the package source a run depends on
(``core/``, ``data/``, ``engine/``, ``methods/`` and the base modules). Editing the engine, or
installing another version of the package, therefore gives new keys: cached results are never
reused across a change of the code that produced them.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from umm_helpers.engine import distributed

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# The parts of the package a trained run depends on (course/ and tools/ only read results).
RUN_SOURCES = ("core", "data", "engine", "methods", "settings.py", "atomic.py")
# Config fields that never change what a single-process run learns, left out of the key: how
# a run is computed, not what it learns (a captured step equals the eager one to float
# rounding, as a GPU run equals a CPU run).
KEY_FREE_FIELDS = ("device", "stream", "num_workers", "checkpoint_every", "sync_batchnorm",
                   "capture")


def package_version() -> str:
    from umm_helpers import __version__

    return __version__


@functools.cache
def source_digest(root: Path = PACKAGE_ROOT) -> str:
    """sha256 (16 hex digits) of every ``.py`` file a run depends on, by path and content.

    Computed once per process and package folder: a kernel that has not re-imported an edited
    module still runs, and is keyed by, the code it loaded.
    """
    h = hashlib.sha256()
    for part in RUN_SOURCES:
        path = root / part
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            h.update(f.relative_to(root).as_posix().encode() + b"\0")
            h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _code_digest(code: types.CodeType) -> str:
    """Digest of a code object: bytecode, constants (nested code included) and names."""
    h = hashlib.sha256(code.co_code)
    for const in code.co_consts:
        h.update(_code_digest(const).encode() if isinstance(const, types.CodeType)
                 else repr(const).encode())
    h.update(repr(code.co_names).encode())
    return h.hexdigest()[:12]


def _stable_repr(value: Any, active: tuple[int, ...] = ()) -> str:
    """``repr`` without memory addresses (an address makes the key unique, never stale)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value)) if not callable(value) \
        else encoder_identity(value, active)


def _function_digest(func: types.FunctionType, active: tuple[int, ...] = ()) -> str:
    """What a plain function or lambda computes: its code, defaults and captured values."""
    parts = [_code_digest(func.__code__), repr(func.__defaults__)]
    for cell in func.__closure__ or ():
        try:
            parts.append(_stable_repr(cell.cell_contents, active))
        except ValueError:  # an empty cell
            parts.append("<empty>")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def _own_bases(cls: type) -> list[type]:
    """Base classes defined outside Python, torch and this package (their code counts too)."""
    skip = ("builtins", "torch", "umm_helpers", "typing", "abc")
    return [b for b in cls.__mro__[1:]
            if (getattr(b, "__module__", "") or "").split(".")[0] not in skip]


def encoder_identity(factory: Callable[[], nn.Module] | nn.Module,
                     _active: tuple[int, ...] = ()) -> str:
    """A stable name for an encoder factory, part of the run-cache key.

    Package classes are named by their qualified name (the source digest is in the key too);
    functions, lambdas and classes defined elsewhere (a notebook, a script) also carry a digest
    of their code, captured values and own base classes, so two different lambdas never share a
    cached run. Self references (a class whose methods call ``super()``, a function that calls
    itself) are named once, not followed again.
    """
    if id(factory) in _active:  # already being described further up: name it only
        module = getattr(factory, "__module__", "?") or "?"
        return f"<{module}.{getattr(factory, '__qualname__', type(factory).__qualname__)}>"
    active = (*_active, id(factory))
    if isinstance(factory, nn.Module):
        digest = hashlib.sha256()
        for k, v in sorted(factory.state_dict().items()):
            digest.update(k.encode())
            digest.update(v.detach().cpu().contiguous().numpy().tobytes())
        extra = getattr(factory, "cache_identity", None)  # e.g. a frozen model's files + options
        if extra is not None:
            digest.update(str(extra).encode())
        return f"{type(factory).__module__}.{type(factory).__qualname__}@{digest.hexdigest()[:12]}"
    if isinstance(factory, functools.partial):
        args = ", ".join([_stable_repr(a, active) for a in factory.args]
                         + [f"{k}={_stable_repr(v, active)}"
                            for k, v in sorted(factory.keywords.items())])
        return f"{encoder_identity(factory.func, active)}({args})"
    module = getattr(factory, "__module__", "?") or "?"
    name = getattr(factory, "__qualname__", type(factory).__qualname__)
    packaged = module.startswith("umm_helpers")
    if isinstance(factory, types.FunctionType) and not (packaged and factory.__closure__ is None
                                                       and "<lambda>" not in name):
        return f"{module}.{name}#{_function_digest(factory, active)}"
    if isinstance(factory, type) and not packaged:
        funcs = sorted((k, v) for k, v in vars(factory).items()
                       if isinstance(v, types.FunctionType))
        parts = [f"{k}:{_function_digest(v, active)}" for k, v in funcs]
        parts += [f"base:{encoder_identity(b, active)}" for b in _own_bases(factory)]
        code = hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]
        return f"{module}.{name}#{code}"
    return f"{module}.{name}"


def run_key(checksum: str, method: str, config: Mapping[str, Any],
            encoders: Mapping[str, str], options: Mapping[str, Any] | None = None) -> str:
    """Hash of everything that determines a run (16 hex digits).

    Under ``torchrun`` the number of processes and ``sync_batchnorm`` are part of the key
    (BatchNorm sees per-process shards unless synced, so a data-parallel run is not the
    single-process run; notebook 07); in one process ``sync_batchnorm`` changes nothing.
    """
    payload: dict[str, Any] = {
        "checksum": checksum, "method": method, "version": package_version(),
        "source": source_digest(),
        "config": {k: v for k, v in sorted(config.items()) if k not in KEY_FREE_FIELDS},
        "options": dict(sorted((options or {}).items())),
        "encoders": dict(sorted(encoders.items()))}
    if distributed.world_size() > 1:  # only then do these change what a run learns
        payload["world_size"] = distributed.world_size()
        payload["sync_batchnorm"] = bool(config.get("sync_batchnorm", False))
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
