"""Small fake AV-MNIST sources and MultiBench-format files, written into a temp folder.

Same formats as the real data (MNIST IDX files as torchvision leaves them, FSDD wav files named
``{digit}_{speaker}_{index}.wav``, an ESC-50-like folder, MultiBench ``.npy`` arrays), only tiny
and synthetic, so the AV-MNIST tests never need the network.
"""
from __future__ import annotations

import csv
import gzip
import struct
import wave
from pathlib import Path

import numpy as np

SPEAKERS = ("alice", "bob")
INDICES = (0, 5, 6)  # FSDD's rule: 0-4 pair with test images, 5-49 with train images
_IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Write ``array`` (uint8 or int8) in the IDX format MNIST uses (optionally gzipped)."""
    array = np.ascontiguousarray(array)
    header = bytes([0, 0, _IDX_CODES[array.dtype], array.ndim])
    header += struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.GzipFile(path, "wb", mtime=0) as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def fake_digits(labels: np.ndarray, seed: int) -> np.ndarray:
    """28 x 28 uint8 images: a bright bar whose position depends on the label, plus noise."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(len(labels), 28, 28)).astype(np.int64)
    for i, d in enumerate(labels):
        images[i, 4 + 2 * d: 7 + 2 * d, 6:22] += 200
    return np.clip(images, 0, 255).astype(np.uint8)


def write_mnist(source: Path, train_per_class: int = 10, test_per_class: int = 5,
                gz: bool = False, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST-like IDX files under ``source/MNIST/raw`` (labels in shuffled order)."""
    rng = np.random.default_rng(seed)
    raw = source / "MNIST" / "raw"
    out = {}
    for split, per_class, prefix in (("train", train_per_class, "train"),
                                     ("test", test_per_class, "t10k")):
        labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), per_class))
        images = fake_digits(labels, seed + len(labels))
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, gz)
        out[split] = (images, labels.astype(np.int64))
    return out


def write_wav(path: Path, data: np.ndarray, rate: int) -> Path:
    """A 16-bit mono PCM wav file from a float waveform in [-1, 1]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.round(np.clip(data, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def sweep(digit: int, speaker: int, index: int, rate: int = 8000) -> np.ndarray:
    """A sine sweep: pitch set mostly by the digit; speaker and index shift it a little and
    change the length and level, so that every recording differs."""
    n = int(rate * (0.3 + 0.05 * ((index + speaker) % 4)))
    t = np.arange(n) / rate
    f0 = 300.0 + 250.0 * digit + 20.0 * speaker + 7.0 * index
    phase = 2 * np.pi * (f0 * t + 0.5 * f0 * t ** 2 / t[-1])
    return (0.3 + 0.1 * speaker) * np.sin(phase) * np.hanning(n)


def write_fsdd(source: Path, speakers: tuple[str, ...] = SPEAKERS,
               indices: tuple[int, ...] = INDICES, rate: int = 8000) -> list[Path]:
    """FSDD-like recordings under ``source/free-spoken-digit-dataset/recordings``."""
    folder = source / "free-spoken-digit-dataset" / "recordings"
    paths = [write_wav(folder / f"{d}_{name}_{i}.wav", sweep(d, s, i, rate), rate)
             for d in range(10) for s, name in enumerate(speakers) for i in indices]
    (folder / "README.txt").write_text("not a recording\n")
    return paths


def write_esc50(source: Path, n: int = 3, rate: int = 44100, meta: bool = True) -> list[Path]:
    """An ESC-50-like folder: ``audio/*.wav`` (white noise, 0.4 s) and ``esc50.csv``."""
    folder = source / "ESC-50"
    rng = np.random.default_rng(50)
    names = [f"1-{100 + k}-A-{k}.wav" for k in range(n)]
    paths = [write_wav(folder / "audio" / name, 0.2 * rng.standard_normal(int(0.4 * rate)), rate)
             for name in names]
    csv_path = folder / "meta" / "esc50.csv" if meta else folder / "esc50.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        for k, name in enumerate(reversed(names)):
            w.writerow([name, 1, k, f"category{k}", False, 100 + k, "A"])
    return paths


def write_sources(source: Path, train_per_class: int = 10, test_per_class: int = 5,
                  noise: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every source a build needs, in the layout ``avmnist_build`` expects."""
    mnist = write_mnist(source, train_per_class, test_per_class)
    write_fsdd(source)
    if noise:
        write_esc50(source)
    return mnist


def write_multibench(root: Path, n_train: int = 24, n_test: int = 10,
                     dtype: str = "uint8", seed: int = 0) -> dict[str, np.ndarray]:
    """Tiny files in the MultiBench AV-MNIST format; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "image/train_data.npy": rng.integers(0, 256, size=(n_train, 784)).astype(dtype),
        "image/test_data.npy": rng.integers(0, 256, size=(n_test, 784)).astype(dtype),
        "audio/train_data.npy": rng.integers(0, 256, size=(n_train, 112, 112)).astype(dtype),
        "audio/test_data.npy": rng.integers(0, 256, size=(n_test, 112, 112)).astype(dtype),
        "train_labels.npy": (np.arange(n_train) % 10).astype(np.int64),
        "test_labels.npy": (np.arange(n_test) * 3 % 10).astype(np.int64),
    }
    for rel, arr in arrays.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        np.save(root / rel, arr)
    return arrays
