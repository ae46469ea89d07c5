"""Seeded fuzzing of the public entry points users feed by hand: ``from_arrays``, condition
strings and ``TrainConfig``. Every input either works (and then the result holds exactly what was
given, as float32 / long / bool) or raises ``ValueError`` / ``TypeError`` whose message names the
argument at fault; never a hang, a crash deep in torch or a silent coercion."""
from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections import Counter
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from umm_helpers.core.missing import MaskTable
from umm_helpers.data import MultiModalDataset
from umm_helpers.engine.config import TrainConfig, resolve_device

SEED = 20231010
N_ARRAYS, N_CONDITIONS, N_CONFIGS = 240, 160, 160  # 560 inputs, a few seconds in all
SPLITS = ("train", "validation", "test")
MODALITIES = ("audio", "image")


@contextmanager
def no_hang(seconds: int):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""
    def stop(*_):
        raise TimeoutError(f"fuzz case ran longer than {seconds} s")

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal,
                                                                                "SIGALRM"):
        yield  # signals need the main thread (and POSIX): each case is still timed below
        return
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _classify(outcomes: Counter, name: str, call, check_ok, tokens, failures: list) -> None:
    """Run one case: success is checked by ``check_ok``; an error must be a ValueError or
    TypeError naming one of ``tokens``."""
    start = time.perf_counter()
    try:
        result = call()
    except (ValueError, TypeError) as exc:
        outcomes[f"{name}: {type(exc).__name__}"] += 1
        if not any(t in str(exc) for t in tokens):
            failures.append(f"{name}: {type(exc).__name__} does not name {tokens}: {exc}")
    except Exception as exc:  # noqa: BLE001  (any other error is a finding)
        outcomes[f"{name}: other"] += 1
        failures.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
    else:
        outcomes[f"{name}: works"] += 1
        problem = check_ok(result)
        if problem:
            failures.append(f"{name}: worked but {problem}")
    if time.perf_counter() - start > 2.0:
        failures.append(f"{name}: took {time.perf_counter() - start:.1f} s")


# --- from_arrays -------------------------------------------------------------------------------

def _valid_split(rng, n):
    return ({"audio": rng.normal(size=(n, 3)).astype(np.float32),
             "image": rng.normal(size=(n, 2, 2))}, rng.integers(0, 3, size=n))


def _bad_values(rng, n):
    """Modality values, valid or not, and whether they are plain real numbers."""
    choices = [
        lambda: rng.normal(size=(n, 3)).astype(np.float16),
        lambda: torch.randn(n, 3).to(torch.bfloat16),
        lambda: rng.integers(-5, 5, size=(n, 4)),
        lambda: rng.random((n, 2)) > 0.5,
        lambda: rng.normal(size=(n, 3)).tolist(),
        lambda: np.array([["a", "b"]] * n),
        lambda: np.array([[None, 1.0]] * n, dtype=object),
        lambda: rng.normal(size=(n, 2)) + 1j,
        lambda: torch.ones(n, 2, dtype=torch.complex64),
        lambda: [[1.0, 2.0]] * (n - 1) + [[1.0]],
        lambda: np.full((n, 2), np.nan),
        lambda: np.where(rng.random((n, 3)) < 0.1, np.inf, 1.0),
        lambda: np.float64(1e300) * np.ones((n, 2)),
        lambda: rng.normal(size=n),
        lambda: 3.0,
        lambda: None,
        lambda: {"nested": 1},
        lambda: np.zeros((n, 0)),
        lambda: rng.normal(size=(n + 1, 3)),
        lambda: rng.integers(0, 2**62, size=(n, 2), dtype=np.int64),
    ]
    return choices[rng.integers(len(choices))]()


def _bad_labels(rng, n):
    choices = [
        lambda: rng.integers(0, 3, size=n).astype(np.float64),
        lambda: rng.random(n) * 3,
        lambda: np.where(np.arange(n) == 0, np.nan, 1.0),
        lambda: np.where(np.arange(n) == 0, -1, 1),
        lambda: np.where(np.arange(n) == 0, 10**9, 1),
        lambda: np.where(np.arange(n) == 0, 2**62, 1),
        lambda: np.where(np.arange(n) == 0, 1e30, 1.0),
        lambda: rng.integers(0, 2, size=(n, 3)),
        lambda: rng.integers(0, 3, size=(n, 3)),
        lambda: np.zeros((n, 0)),
        lambda: rng.integers(0, 2, size=(n, 2, 2)),
        lambda: rng.random(n) > 0.5,
        lambda: np.array(["a"] * n),
        lambda: rng.integers(0, 3, size=n - 1),
        lambda: np.ones(n) + 1j,
        lambda: None,
        lambda: 1,
        lambda: [0, 1, 2] * (n // 3) + [0] * (n % 3),
    ]
    return choices[rng.integers(len(choices))]()


def _bad_classes(rng):
    choices = [None, "abc", ["a", "a", "b"], [0, 1, 2], [], ("x", "y", "z"), ["a", "b"],
               [f"c{i}" for i in range(5)], ["", "b", "c"], iter(["p", "q", "r"]), 7,
               np.array(["u", "v", "w"])]
    return choices[rng.integers(len(choices))]


def _case(rng):
    """``(kwargs, tokens)``: a from_arrays call with one argument made odd, and the words an
    error about that argument must contain."""
    n = int(rng.integers(2, 9))
    parts = {s: _valid_split(rng, n) for s in SPLITS}
    kwargs: dict = {}
    where = SPLITS[rng.integers(3)]
    kind = rng.integers(9)
    tokens = [f"'{where}'"]
    if kind == 0:
        parts[where] = [None, {"audio": 1}, (1, 2, 3), "pair", {}][rng.integers(5)]
    elif kind == 1:
        parts[where] = ([None, {}, [], {"Audio": np.ones((n, 1))}, {"full": np.ones((n, 1))},
                         {1: np.ones((n, 1))}, {"a b": np.ones((n, 1))}][rng.integers(7)],
                        parts[where][1])
    elif kind in (2, 3):
        inputs = dict(parts[where][0])
        inputs[MODALITIES[rng.integers(2)]] = _bad_values(rng, n)
        parts[where] = (inputs, parts[where][1])
    elif kind == 4:
        parts[where] = (parts[where][0], _bad_labels(rng, n))
    elif kind == 5:
        kwargs["classes"] = _bad_classes(rng)
        tokens = ["classes"] + [f"'{s}'" for s in SPLITS]
    elif kind == 6:
        kwargs["name"] = ["", 3, None, "../x", "a b", " "][rng.integers(6)]
        tokens = ["name"]
    elif kind == 7:
        kwargs["meta"] = ["x", {"bogus": {}}, {"train": 3}, {"train": {"k": list(range(n))}},
                          [("train", {})]][rng.integers(5)]
        tokens = ["meta"]
    else:  # the label kind of one split differs from the others
        parts[where] = (parts[where][0], rng.integers(0, 2, size=(n, 3)))
        tokens = [f"'{s}'" for s in SPLITS]
    return parts, kwargs, tokens


def _check_dataset(ds: MultiModalDataset, parts) -> str | None:
    for s in SPLITS:
        split = getattr(ds, s)
        for m, x in split.inputs.items():
            if x.dtype != torch.float32 or not bool(torch.isfinite(x).all()):
                return f"split {s} modality {m} is {x.dtype} or not finite"
            given = parts[s][0][m]
            given = given.float().numpy() if isinstance(given, torch.Tensor) else given
            if not np.array_equal(x.numpy(), np.asarray(given, dtype=np.float32)):
                return f"split {s} modality {m} does not hold the given values"
        y = split.labels
        if y.ndim == 1 and (y.dtype != torch.long or int(y.max()) >= ds.num_classes):
            return f"split {s} labels {y.dtype} outside {ds.num_classes} classes"
        if y.ndim == 2 and (y.dtype != torch.float32 or y.shape[1] != ds.num_classes):
            return f"split {s} multi-label labels {tuple(y.shape)} for {ds.num_classes} classes"
    if len(set(ds.classes)) != len(ds.classes) or not all(isinstance(c, str) for c in ds.classes):
        return f"classes {ds.classes!r:.60} are not distinct strings"
    return None


def test_fuzz_from_arrays():
    rng = np.random.default_rng(SEED)
    outcomes: Counter = Counter()
    failures: list[str] = []
    with no_hang(60):
        for _ in range(N_ARRAYS):
            parts, kwargs, tokens = _case(rng)
            _classify(outcomes, "from_arrays",
                      lambda p=parts, kw=kwargs: MultiModalDataset.from_arrays(
                          *(p[s] for s in SPLITS), **kw),
                      lambda ds, p=parts: _check_dataset(ds, p), tokens, failures)
    print(dict(sorted(outcomes.items())))
    assert not failures, "\n".join(failures[:20])
    assert outcomes["from_arrays: works"] > 10 and outcomes["from_arrays: ValueError"] > 50


# --- condition strings -------------------------------------------------------------------------

PIECES = ["full", "miss", "rate", "any", "audio", "image", "text", ":", ":", ":", "0.5", "1", "0",
          "-0.1", "1.5", "nan", "inf", "1e309", " ", "", "0x1", "1_0", "\u0663", ".", "FULL",
          "miss:", "rate:any:", "\n", "e", "-", "+0.25"]


def _condition(rng):
    roll = rng.random()
    if roll < 0.1:
        return [None, 3, b"full", ["full"], 0.5, {"full": 1}][rng.integers(6)]
    if roll < 0.5:  # the accepted shapes, with parts drawn from valid and invalid ones
        kind = ["full", "miss", "rate", "Rate", "drop"][rng.integers(5)]
        mod = ["audio", "image", "any", "text", "", "audio "][rng.integers(6)]
        rate = ["0", "0.3", "1", "1.0", "-0.1", "1.5", "nan", "inf", "x", "", " 0.5"][
            rng.integers(11)]
        return ":".join([kind, mod, rate][:rng.integers(1, 4)])
    return "".join(PIECES[i] for i in rng.integers(len(PIECES), size=rng.integers(1, 6)))


def test_fuzz_condition_strings():
    rng = np.random.default_rng(SEED + 1)
    table = MaskTable.create(17, MODALITIES, seed=0)
    outcomes: Counter = Counter()
    failures: list[str] = []

    def check(pres) -> str | None:
        ok = isinstance(pres, np.ndarray) and pres.dtype == bool and pres.shape == (17, 2)
        return None if ok else f"gave {type(pres).__name__} {getattr(pres, 'shape', '')}"

    with no_hang(30):
        for _ in range(N_CONDITIONS):
            c = _condition(rng)
            _classify(outcomes, "condition", lambda c=c: table.presence_array(c), check,
                      ["condition"], failures)
        for c in ("full", "miss:audio", "rate:image:0.3", "rate:any:1"):  # the accepted forms
            assert check(table.presence_array(c)) is None
    print(dict(sorted(outcomes.items())))
    assert not failures, "\n".join(failures[:20])
    assert outcomes["condition: works"] > 0 and outcomes["condition: ValueError"] > 50


# --- TrainConfig -------------------------------------------------------------------------------

FIELDS = [f for f in TrainConfig.__dataclass_fields__]
VALUES = [0, 1, 2, -1, 3, 10**30, 2**64, 0.0, -0.0, 0.5, 1.0, 1.5, 1e-300, math.nan, math.inf,
          -math.inf, True, False, None, "", "adam", "sgd", "rmsprop", "cpu", "tpu", "cuda:0",
          "1e-3", "auto", [], [1], {}, {"audio": 0.5}, {"audio": math.nan}, {1: 0.5},
          {"audio": "0.5"}, {"audio": 2.0}, torch.device("cpu"), np.float64(0.1), np.int64(3),
          complex(1, 0), object()]


def _check_config(cfg: TrainConfig) -> str | None:
    """A config that validates is usable as it is: JSON for the run key, a device this machine
    has, a seed torch accepts, and the documented types."""
    d = cfg.to_dict()
    try:
        json.dumps(d)
        resolve_device(cfg)
        torch.Generator().manual_seed(cfg.seed)
    except Exception as exc:  # noqa: BLE001
        return f"validated, then failed in use: {type(exc).__name__}: {exc}"[:200]
    if not (isinstance(cfg.epochs, int) and cfg.epochs >= 1 and cfg.batch_size >= 2
            and cfg.lr > 0 and math.isfinite(cfg.lr) and cfg.stream in (None, True, False)
            and (cfg.stream is None or isinstance(cfg.stream, bool))):
        return f"accepted {d}"
    return None


def test_fuzz_train_config():
    rng = np.random.default_rng(SEED + 2)
    outcomes: Counter = Counter()
    failures: list[str] = []
    with no_hang(30):
        for _ in range(N_CONFIGS):
            k = int(rng.integers(1, 3))
            fields = [FIELDS[i] for i in rng.choice(len(FIELDS), size=k, replace=False)]
            if rng.random() < 0.05:
                fields[0] = "learning_rate"  # a field that does not exist
            kwargs = {f: VALUES[rng.integers(len(VALUES))] for f in fields}
            _classify(outcomes, "TrainConfig", lambda kw=kwargs: TrainConfig(**kw).validate(),
                      _check_config, [f"TrainConfig.{f}" for f in fields] + [
                          f"'{f}'" for f in fields], failures)
    print(dict(sorted(outcomes.items())))
    assert not failures, "\n".join(failures[:20])
    assert outcomes["TrainConfig: works"] > 5 and outcomes["TrainConfig: ValueError"] > 50


@pytest.mark.parametrize("value", [10**30, 2**70])
def test_seeds_beyond_64_bits_are_named(value):
    with pytest.raises(ValueError, match=r"TrainConfig\.seed"):
        TrainConfig(seed=value).validate()
