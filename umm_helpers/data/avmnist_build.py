"""Deterministic builders of AV-MNIST from its sources (for machines with internet access).

Two builders, one per variant (see :mod:`umm_helpers.data.avmnist` for the formats):

* :func:`build` writes the MultiBench format (``umm data build avmnist --root DIR``):
  every MNIST train / test image, PCA-degraded, paired by label with a spoken-digit
  recording from the Free Spoken Digit Dataset (FSDD), as a 112 x 112 spectrogram,
  optionally mixed with ESC-50 environmental noise.
* :func:`build_smil` writes the SMIL variant (``umm data build avmnist-smil --root DIR``):
  1,050 train / 150 validation / 450 test pairs, MNIST 28 x 28 plus 20 x 20 MFCCs.

The sources live in one folder (``--source``, default ``<root>/sources``)::

    MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]   as torchvision leaves them
    free-spoken-digit-dataset/recordings/{digit}_{speaker}_{index}.wav   FSDD at FSDD_TAG
    ESC-50/audio/*.wav and ESC-50/meta/esc50.csv (or ESC-50/esc50.csv)   only with noise

:func:`download_sources` fetches them (MNIST through ``torchvision.datasets.MNIST``, FSDD and
ESC-50 as archives); a build downloads only when ``download=True`` and a source is absent.

Determinism: file lists are sorted; every random choice of sample ``i`` of a split comes from
``np.random.default_rng([seed, split code, i])``, so results never depend on processing order;
FSDD is pinned (``FSDD_TAG``) because it grew from 1 to 6 speakers over time; arrays are written
with ``np.save`` to temp files renamed into place (:mod:`umm_helpers.atomic`), with
``build_info.json`` (configuration plus sha256 fingerprints of the sources used) and
``SHA256SUMS``. Two builds from the same sources are identical byte for byte.

Image rule (:class:`PCARule`): PCA is fit on the training images only (mean-centred pixels,
eigen-decomposition of the covariance); every image is replaced by its reconstruction from the
leading k components, clipped to 0..255 and rounded to uint8. ``PCARule("variance", 0.25)``
(the default) takes the smallest k whose components explain at least 25% of the variance,
which removes most of the image energy as in the published AV-MNIST;
``PCARule("components", 196)`` keeps a fixed k instead (the other version in circulation);
``PCARule("none")`` keeps MNIST unchanged.

Audio rule (MultiBench): an FSDD recording (8 kHz, 16 bit) is peak-normalised to 0.9, cropped or
zero-padded to 1 s (8,000 samples, from the start), optionally mixed with a 1 s segment of an
ESC-50 clip (resampled to 8 kHz) at ``snr_db``; then a Hann-window STFT with n_fft = 222 and
hop = 70 gives 112 frequency bins (rows, 0 to 4 kHz) x 112 frames (columns); the power in dB is
clipped to ``db_range`` and mapped linearly onto 0..255. FSDD's own split assigns recordings to
pairs: indices 0-4 of each speaker and digit pair with test images, indices 5-49 with train
images (each pair draws one recording of its label, so recordings repeat across pairs).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from umm_helpers.data import audio as audio_features
from umm_helpers.data.avmnist import (
    AUDIO_SHAPE,
    NAME,
    SMIL_AUDIO_SHAPE,
    SMIL_NAME,
    SMIL_SPLITS,
    multibench_specs,
    smil_specs,
)
from umm_helpers.data.checksums import hash_file, update_sums
from umm_helpers.data.roots import resolve_data_root
from umm_helpers.settings import progress as progress_bar

FSDD_REPO = "https://github.com/Jakobovski/free-spoken-digit-dataset"
FSDD_TAG = "v1.0.10"
FSDD_RECORDINGS = 3000  # 6 speakers x 10 digits x 50 at v1.0.10 (v1.0.9 had 5 speakers, 2,500)
ESC50_REPO = "https://github.com/karolpiczak/ESC-50"
ESC50_REF = "master"  # not versioned upstream: build_info.json records the sha256 of what was used
MNIST_RAW = "MNIST/raw"
MNIST_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
FSDD_DIR = "free-spoken-digit-dataset/recordings"
ESC50_DIR = "ESC-50"
INFO_FILE = "build_info.json"
SPLIT_CODE = {"train": 0, "validation": 1, "test": 2}
RATE = 8000
_FSDD_NAME = re.compile(r"^([0-9])_([A-Za-z0-9-]+)_([0-9]+)\.wav$")
_IDX_DTYPES: dict[int, DTypeLike] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4",
                                     0x0D: ">f4", 0x0E: ">f8"}


class SourceError(RuntimeError):
    """A source file (MNIST, FSDD, ESC-50) is missing or malformed."""


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class PCARule:
    """How images are degraded: ``kind`` is ``"variance"``, ``"components"`` or ``"none"``.

    ``variance``: keep the smallest k leading components explaining >= ``value`` of the
    variance (0 < value <= 1). ``components``: keep k = ``value`` components. ``none``: no PCA.
    """

    kind: str = "variance"
    value: float = 0.25

    def __post_init__(self) -> None:
        if self.kind == "variance" and not 0.0 < float(self.value) <= 1.0:
            raise ValueError(f"PCARule('variance', {self.value}): the variance fraction must "
                             "lie in (0, 1].")
        if self.kind == "components" and (int(self.value) != self.value or self.value < 1):
            raise ValueError(f"PCARule('components', {self.value}): the number of components "
                             "must be an integer >= 1.")
        if self.kind not in ("variance", "components", "none"):
            raise ValueError(f"PCARule kind {self.kind!r} is unknown: use 'variance', "
                             "'components' or 'none'.")

    def n_components(self, explained_ratio: np.ndarray) -> int:
        """k for eigenvalue ratios sorted in decreasing order."""
        d = len(explained_ratio)
        if self.kind == "none":
            return d
        if self.kind == "components":
            return min(int(self.value), d)
        cumulative = np.cumsum(explained_ratio)
        return min(d, int(np.searchsorted(cumulative, float(self.value) - 1e-12)) + 1)


@dataclass(frozen=True)
class BuildConfig:
    """Every knob of the MultiBench-format build; the defaults are the documented recipe."""

    seed: int = 0
    pca: PCARule = field(default_factory=PCARule)
    noise: bool = False
    snr_db: float = 10.0
    clip_samples: int = 8000
    n_fft: int = 222
    hop: int = 70
    db_range: tuple[float, float] = (-50.0, 40.0)
    test_index_below: int = 5
    fsdd_tag: str = FSDD_TAG


@dataclass(frozen=True)
class SMILConfig:
    """Every knob of the SMIL-variant build (sizes are per class)."""

    seed: int = 0
    train_per_class: int = 105
    validation_per_class: int = 15
    test_per_class: int = 45
    clip_samples: int = 8000
    n_fft: int = 512
    hop: int = 394
    n_mels: int = 40
    n_mfcc: int = 20
    fsdd_tag: str = FSDD_TAG


# --------------------------------------------------------------------------- reading sources
def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format; ``.gz`` compressed or not) into a numpy array."""
    path = Path(path)
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise SourceError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}).")
    ndim = raw[3]
    dims = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise SourceError(f"{path} is truncated or padded: {len(raw)} bytes, expected "
                          f"{expected} for shape {dims}.")
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def _mnist_path(source: Path, split: str, kind: str) -> Path | None:
    base = source / MNIST_RAW / MNIST_FILES[(split, kind)]
    for p in (base, base.with_name(base.name + ".gz")):
        if p.is_file():
            return p
    return None


def mnist_present(source: str | Path) -> bool:
    return all(_mnist_path(Path(source), s, k) is not None for s, k in MNIST_FILES)


def ensure_mnist(source: str | Path, download: bool = False) -> None:
    """Make sure MNIST is in ``source``; download it (torchvision) only if absent and allowed."""
    source = Path(source)
    if mnist_present(source):
        return
    if not download:
        missing = [MNIST_FILES[k] for k in MNIST_FILES if _mnist_path(source, *k) is None]
        raise SourceError(f"MNIST is missing from {source / MNIST_RAW} ({', '.join(missing)}). "
                          "Pass download=True (CLI: --download) to fetch it with torchvision, "
                          "or copy the IDX files there.")
    mnist = _torchvision_mnist()
    for train in (True, False):
        mnist(str(source), train=train, download=True)


def _torchvision_mnist() -> Callable[..., Any]:
    """``torchvision.datasets.MNIST`` (imported only when a download is needed)."""
    from torchvision.datasets import MNIST

    return MNIST


def read_mnist(source: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (images [N, 28, 28] uint8, labels [N] int64), "test": (...)}``."""
    source = Path(source)
    out = {}
    for split in ("train", "test"):
        paths = {k: _mnist_path(source, split, k) for k in ("images", "labels")}
        for k, p in paths.items():
            if p is None:
                raise SourceError(f"{source / MNIST_RAW / MNIST_FILES[(split, k)]} is missing.")
        images = read_idx(paths["images"])  # type: ignore[arg-type]
        labels = read_idx(paths["labels"])  # type: ignore[arg-type]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise SourceError(f"{paths['images']}: expected uint8 images [N, 28, 28], got "
                              f"{images.dtype} {images.shape}.")
        if labels.shape != (images.shape[0],) or labels.size == 0 or labels.max() > 9:
            raise SourceError(f"{paths['labels']}: expected {images.shape[0]} labels 0..9, got "
                              f"shape {labels.shape}.")
        out[split] = (images, labels.astype(np.int64))
    return out


@dataclass(frozen=True)
class Recording:
    """One FSDD recording, ``{digit}_{speaker}_{index}.wav``."""

    digit: int
    speaker: str
    index: int
    path: Path


def list_fsdd(source: str | Path) -> list[Recording]:
    """Every FSDD recording under ``source``, sorted by (digit, speaker, index)."""
    folder = Path(source) / FSDD_DIR
    if not folder.is_dir():
        raise SourceError(f"FSDD recordings are missing: {folder} does not exist. Pass "
                          "download=True (CLI: --download) or unpack FSDD "
                          f"{FSDD_TAG} ({FSDD_REPO}) so that its recordings/ folder is there.")
    recs = []
    for p in folder.iterdir():
        m = _FSDD_NAME.match(p.name)
        if m:
            recs.append(Recording(int(m.group(1)), m.group(2), int(m.group(3)), p))
    if not recs:
        raise SourceError(f"{folder} holds no recordings named "
                          "{digit}_{speaker}_{index}.wav.")
    return sorted(recs, key=lambda r: (r.digit, r.speaker, r.index))


def load_speech(path: Path, n: int) -> tuple[np.ndarray, int]:
    """FSDD clip at 8 kHz, peak-normalised to 0.9, cropped / zero-padded to ``n`` samples.

    Returns the clip and the number of speech samples in it (before padding).
    """
    data, rate = audio_features.read_wav(path)
    if rate != RATE:
        data = audio_features.resample(data, rate, RATE)
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak > 0:
        data = 0.9 * data / peak
    out = np.zeros(n)
    k = min(n, len(data))
    out[:k] = data[:k]
    return out, k


def list_esc50(source: str | Path) -> list[Path]:
    """ESC-50 clips listed in ``esc50.csv`` (column ``filename``), sorted by name."""
    import csv

    folder = Path(source) / ESC50_DIR
    csv_path = next((p for p in (folder / "meta" / "esc50.csv", folder / "esc50.csv")
                     if p.is_file()), None)
    if csv_path is None:
        raise SourceError(f"ESC-50 is missing: no esc50.csv in {folder / 'meta'} or {folder}. "
                          "Pass download=True (CLI: --download) or unpack ESC-50 "
                          f"({ESC50_REPO}) there, or build without noise.")
    with open(csv_path, newline="") as f:
        names = sorted({row["filename"] for row in csv.DictReader(f)})
    paths = [folder / "audio" / n for n in names]
    absent = [p for p in paths if not p.is_file()]
    if not paths or absent:
        raise SourceError(f"{csv_path} lists {len(paths)} clips, {len(absent)} of them missing "
                          f"from {folder / 'audio'} (first: {absent[0] if absent else '-'}).")
    return paths


def _source_info(fsdd_tag: str, source: Path, recordings: list[Any], used: Any
                 ) -> dict[str, Any]:
    """What a build read: hashes of the MNIST files and FSDD recordings, and how many."""
    mnist_paths = [p for k in MNIST_FILES if (p := _mnist_path(source, *k)) is not None]
    return {"mnist_sha256": fingerprint(mnist_paths, source), "fsdd_tag": fsdd_tag,
            "fsdd_recordings": len(recordings),
            "fsdd_sha256": fingerprint([r.path for r in recordings], source),
            "fsdd_used": len(used)}


def fingerprint(paths: Iterable[Path], base: Path) -> str:
    """sha256 over (relative name, content) of ``paths`` in sorted order."""
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda q: q.relative_to(base).as_posix()):
        h.update(p.relative_to(base).as_posix().encode() + b"\0")
        hash_file(h, p)
    return h.hexdigest()


# --------------------------------------------------------------------------- downloads
def download_sources(source: str | Path, noise: bool = False,
                     fsdd_tag: str = FSDD_TAG) -> None:
    """Fetch MNIST, FSDD (at ``fsdd_tag``) and, with ``noise``, ESC-50 into ``source``.

    Needs internet; sources already present are left alone. Never called by the tests.
    """
    import tarfile
    import urllib.request
    import zipfile

    source = Path(source)
    source.mkdir(parents=True, exist_ok=True)
    ensure_mnist(source, download=True)
    target = source / FSDD_DIR
    if not target.is_dir() or not any(target.glob("*.wav")):
        url = f"{FSDD_REPO}/archive/refs/tags/{fsdd_tag}.tar.gz"
        with tempfile.TemporaryDirectory(dir=source) as tmp:
            archive = Path(tmp) / "fsdd.tar.gz"
            urllib.request.urlretrieve(url, archive)
            staging = Path(tmp) / "recordings"
            staging.mkdir()
            with tarfile.open(archive) as tar:
                for member in tar.getmembers():
                    parts = Path(member.name).parts
                    if (member.isfile() and len(parts) == 3 and parts[1] == "recordings"
                            and _FSDD_NAME.match(parts[2])):
                        src = tar.extractfile(member)
                        assert src is not None
                        with src, open(staging / parts[2], "wb") as dst:
                            shutil.copyfileobj(src, dst)
            n = len(list(staging.glob("*.wav")))
            if fsdd_tag == FSDD_TAG and n != FSDD_RECORDINGS:
                raise SourceError(f"{url} held {n} recordings, expected {FSDD_RECORDINGS}.")
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.replace(target)
    if noise and not (source / ESC50_DIR / "audio").is_dir():
        url = f"{ESC50_REPO}/archive/{ESC50_REF}.zip"
        with tempfile.TemporaryDirectory(dir=source) as tmp:
            archive = Path(tmp) / "esc50.zip"
            urllib.request.urlretrieve(url, archive)
            staging = Path(tmp) / "ESC-50"
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    parts = Path(name).parts
                    keep = (len(parts) == 3 and parts[1] == "audio" and parts[2].endswith(".wav")) \
                        or parts[1:] == ("meta", "esc50.csv")
                    if keep:
                        out = staging.joinpath(*parts[1:])
                        out.parent.mkdir(parents=True, exist_ok=True)
                        with z.open(name) as src, open(out, "wb") as dst:
                            shutil.copyfileobj(src, dst)
            staging.replace(source / ESC50_DIR)


def _prepare(source: Path, download: bool, noise: bool, fsdd_tag: str) -> None:
    if download:
        download_sources(source, noise=noise, fsdd_tag=fsdd_tag)
    else:
        ensure_mnist(source, download=False)


# --------------------------------------------------------------------------- features
def fit_pca(train_images: np.ndarray, rule: PCARule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit PCA on flattened training images: (mean [D], components [k, D], explained ratio [D]).

    Components are the leading eigenvectors of the pixel covariance, with the sign fixed so
    that each component's largest-magnitude entry is positive (the reconstruction does not
    depend on signs; the fixed sign only makes stored components comparable).
    """
    x = train_images.reshape(len(train_images), -1).astype(np.float64)
    mean = x.mean(axis=0)
    xc = x - mean
    cov = xc.T @ xc / max(1, len(x) - 1)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order]
    total = values.sum()
    ratio = values / total if total > 0 else np.zeros_like(values)
    k = rule.n_components(ratio)
    comps = vectors[:, :k].T
    signs = np.sign(comps[np.arange(k), np.argmax(np.abs(comps), axis=1)])
    comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
    return mean, comps, ratio


def apply_pca(images: np.ndarray, mean: np.ndarray, comps: np.ndarray,
              chunk: int = 8192) -> np.ndarray:
    """Reconstruct images [N, ...] from ``comps``; uint8 [N, D] (clipped, rounded)."""
    x = images.reshape(len(images), -1)
    out = np.empty(x.shape, dtype=np.uint8)
    for a in range(0, len(x), chunk):
        xc = x[a:a + chunk].astype(np.float64) - mean
        rec = (xc @ comps.T) @ comps + mean
        out[a:a + chunk] = np.round(np.clip(rec, 0.0, 255.0)).astype(np.uint8)
    return out


def spectrogram_112(wave_: np.ndarray, cfg: BuildConfig = BuildConfig()) -> np.ndarray:
    """1 s at 8 kHz -> uint8 [112, 112]: rows are frequency bins, columns are frames."""
    power = audio_features.stft_power(wave_, cfg.n_fft, cfg.hop)
    if power.shape != AUDIO_SHAPE:
        raise ValueError(f"clip_samples={cfg.clip_samples}, n_fft={cfg.n_fft}, hop={cfg.hop} give "
                         f"a {power.shape} spectrogram; the format needs {AUDIO_SHAPE}.")
    return audio_features.quantize(10.0 * np.log10(power + 1e-10), *cfg.db_range)


def mfcc(wave_: np.ndarray, cfg: SMILConfig = SMILConfig()) -> np.ndarray:
    """MFCCs ``[n_mfcc, frames]`` (float32): log-mel power (dB), then an orthonormal DCT-II."""
    from scipy.fft import dct

    power = audio_features.stft_power(wave_, cfg.n_fft, cfg.hop)
    mel = audio_features.mel_filterbank(cfg.n_mels, cfg.n_fft, RATE) @ power
    coeffs = dct(10.0 * np.log10(mel + 1e-10), type=2, axis=0, norm="ortho")[: cfg.n_mfcc]
    if coeffs.shape != SMIL_AUDIO_SHAPE:
        raise ValueError(f"n_mfcc={cfg.n_mfcc}, clip_samples={cfg.clip_samples}, "
                         f"n_fft={cfg.n_fft}, hop={cfg.hop} give {coeffs.shape} MFCCs; the "
                         f"format needs {SMIL_AUDIO_SHAPE}.")
    return coeffs.astype(np.float32)


def mix_noise(speech: np.ndarray, n_speech: int, noise: np.ndarray, snr_db: float,
              rng: np.random.Generator) -> np.ndarray:
    """Add a random segment of ``noise`` so that speech / noise power = ``snr_db`` dB.

    Speech power is measured over the first ``n_speech`` samples; a silent segment adds nothing.
    The segment is the noise clip tiled to the speech length, from a random offset.
    """
    n = len(speech)
    reps = -(-(n + len(noise)) // max(1, len(noise)))
    offset = int(rng.integers(0, max(1, len(noise))))
    segment = np.tile(noise, reps)[offset:offset + n]
    p_noise = float(np.mean(segment ** 2))
    p_speech = float(np.mean(speech[:max(1, n_speech)] ** 2))
    if p_noise == 0.0 or p_speech == 0.0:
        return speech
    return speech + segment * np.sqrt(p_speech / (p_noise * 10.0 ** (snr_db / 10.0)))


# --------------------------------------------------------------------------- writing
def _save(root: Path, rel: str, array: np.ndarray) -> Path:
    from umm_helpers.atomic import atomic_path

    with atomic_path(root / rel) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
    return root / rel


def _finish(root: Path, files: Sequence[str], info: dict[str, Any]) -> list[Path]:
    from umm_helpers.atomic import write_text

    write_text(root / INFO_FILE, json.dumps(info, indent=2, sort_keys=True) + "\n")
    update_sums(root, [*files, INFO_FILE])
    return [root / f for f in (*files, INFO_FILE)]


def _resolve(root: str | Path | None, source: str | Path | None, name: str) -> tuple[Path, Path]:
    """The folder to write (``root`` or ``$UMM_DATA_ROOT``) and the sources (``ROOT/sources``)."""
    path = resolve_data_root(root, name, "The build writes the data set there (CLI: --root DIR).",
                             must_exist=False)
    return path, Path(source).expanduser() if source is not None else path / "sources"


def build(root: str | Path | None = None, source: str | Path | None = None,
          cfg: BuildConfig = BuildConfig(), download: bool = False,
          progress: bool = True) -> list[Path]:
    """Build AV-MNIST in the MultiBench format into ``root`` from the sources in ``source``.

    Returns the written paths (the six arrays, ``build_info.json``; ``SHA256SUMS`` is updated).
    """
    root, source = _resolve(root, source, NAME)
    _prepare(source, download, cfg.noise, cfg.fsdd_tag)
    mnist = read_mnist(source)
    recordings = list_fsdd(source)
    noise_paths = list_esc50(source) if cfg.noise else []
    pools: dict[str, list[list[Recording]]] = {"train": [[] for _ in range(10)],
                                               "test": [[] for _ in range(10)]}
    for r in recordings:
        pools["test" if r.index < cfg.test_index_below else "train"][r.digit].append(r)
    for split, per_digit in pools.items():
        empty = [d for d in range(10) if not per_digit[d]]
        if empty:
            raise SourceError(f"FSDD in {source / FSDD_DIR} has no {split} recording (index "
                              f"{'<' if split == 'test' else '>='} {cfg.test_index_below}) of "
                              f"digit(s) {empty}.")
    if cfg.pca.kind == "none":
        degrade: Callable[[np.ndarray], np.ndarray] = lambda x: x.reshape(len(x), -1)  # noqa: E731
        n_comps, explained = 784, 1.0
    else:
        mean, comps, ratio = fit_pca(mnist["train"][0], cfg.pca)
        degrade = lambda x: apply_pca(x, mean, comps)  # noqa: E731
        n_comps, explained = len(comps), float(ratio[:len(comps)].sum())
    speech_cache: dict[Path, tuple[np.ndarray, int]] = {}
    spec_cache: dict[Path, np.ndarray] = {}
    noise_cache: dict[int, np.ndarray] = {}

    def noise_clip(j: int) -> np.ndarray:
        if j not in noise_cache:
            data, rate = audio_features.read_wav(noise_paths[j])
            noise_cache[j] = audio_features.resample(data, rate, RATE) if rate != RATE else data
        return noise_cache[j]

    written: list[str] = []
    used: set[Path] = set()
    rows = {}
    for split in ("train", "test"):
        images, labels = mnist[split]
        n = len(labels)
        rows[split] = n
        image_file, audio_file, label_file = (s.rel for s in multibench_specs(split))
        written.append(image_file)
        _save(root, image_file, degrade(images))
        specs = np.empty((n, *AUDIO_SHAPE), dtype=np.uint8)
        for i in progress_bar(range(n), n, f"AV-MNIST {split} spectrograms", progress):
            rng = np.random.default_rng([cfg.seed, SPLIT_CODE[split], i])
            pool = pools[split][int(labels[i])]
            rec = pool[int(rng.integers(len(pool)))]
            used.add(rec.path)
            if rec.path not in speech_cache:
                speech_cache[rec.path] = load_speech(rec.path, cfg.clip_samples)
            speech, n_speech = speech_cache[rec.path]
            if cfg.noise:
                clip = noise_clip(int(rng.integers(len(noise_paths))))
                specs[i] = spectrogram_112(mix_noise(speech, n_speech, clip, cfg.snr_db, rng), cfg)
            else:
                if rec.path not in spec_cache:
                    spec_cache[rec.path] = spectrogram_112(speech, cfg)
                specs[i] = spec_cache[rec.path]
        written.append(audio_file)
        _save(root, audio_file, specs)
        del specs
        written.append(label_file)
        _save(root, label_file, labels.astype(np.int64))
    info = {
        "format": "multibench",
        "name": NAME,
        "config": asdict(cfg),
        "pca_components": int(n_comps),
        "pca_explained_variance": round(explained, 6),
        "rows": rows,
        "sources": {
            **_source_info(cfg.fsdd_tag, source, recordings, used),
            "esc50_clips": len(noise_paths),
            "esc50_sha256": fingerprint(noise_paths, source) if noise_paths else None,
        },
    }
    return _finish(root, written, info)


def _smil_images(labels: np.ndarray, per_class: Sequence[int], seed: int, code: int,
                 where: str) -> list[np.ndarray]:
    """Per split (in ``per_class`` order), sorted MNIST indices: ``per_class[j]`` per digit."""
    parts: list[list[np.ndarray]] = [[] for _ in per_class]
    need = int(sum(per_class))
    for d in range(10):
        idx = np.nonzero(labels == d)[0]
        if len(idx) < need:
            raise SourceError(f"MNIST {where} has {len(idx)} images of digit {d}; the SMIL "
                              f"build needs {need}.")
        chosen = np.random.default_rng([seed, code, d]).permutation(idx)[:need]
        start = 0
        for j, k in enumerate(per_class):
            parts[j].append(chosen[start:start + k])
            start += k
    return [np.sort(np.concatenate(p)) for p in parts]


def smil_audio_pools(recordings: Sequence[Recording],
                     cfg: SMILConfig) -> dict[str, list[list[Recording]]]:
    """Disjoint per-digit pools of recordings for train / validation / test.

    Each digit's recordings (sorted) are shuffled with ``default_rng([seed, 22, digit])``; the
    first ``train_per_class`` go to train, the next ``validation_per_class`` to validation, the
    next ``test_per_class`` to test, so no recording is used twice when there are enough (300
    per digit at FSDD_TAG, 165 needed). With fewer recordings the pools are proportional
    (at least one each) and pairs cycle through their pool.
    """
    sizes = (cfg.train_per_class, cfg.validation_per_class, cfg.test_per_class)
    total = sum(sizes)
    pools: dict[str, list[list[Recording]]] = {s: [] for s in SMIL_SPLITS}
    for d in range(10):
        recs = [r for r in recordings if r.digit == d]
        if len(recs) < 3:
            raise SourceError(f"FSDD has {len(recs)} recordings of digit {d}; the SMIL build "
                              "needs at least 3 (one per split).")
        order = np.random.default_rng([cfg.seed, 22, d]).permutation(len(recs))
        shuffled = [recs[int(i)] for i in order]
        if len(recs) >= total:
            counts = list(sizes)
        else:
            counts = [max(1, len(recs) * k // total) for k in sizes[:2]]
            counts.append(len(recs) - sum(counts))
        start = 0
        for s, k in zip(SMIL_SPLITS, counts):
            pools[s].append(shuffled[start:start + k])
            start += k
    return pools


def build_smil(root: str | Path | None = None, source: str | Path | None = None,
               cfg: SMILConfig = SMILConfig(), download: bool = False,
               progress: bool = True) -> list[Path]:
    """Build the SMIL variant of AV-MNIST into ``root`` (format in :mod:`avmnist`).

    Images: ``train_per_class + validation_per_class`` MNIST train images and
    ``test_per_class`` MNIST test images per digit, chosen by seeded permutations. Audio:
    paired by label with FSDD recordings from disjoint per-split pools
    (:func:`smil_audio_pools`); the j-th pair of digit d in a split gets recording j of the
    pool (cycling). MFCCs are standardised per coefficient with the training split's statistics.
    """
    root, source = _resolve(root, source, SMIL_NAME)
    _prepare(source, download, False, cfg.fsdd_tag)
    mnist = read_mnist(source)
    recordings = list_fsdd(source)
    train_idx, val_idx = _smil_images(mnist["train"][1], (cfg.train_per_class,
                                      cfg.validation_per_class), cfg.seed, 20, "train")
    (test_idx,) = _smil_images(mnist["test"][1], (cfg.test_per_class,), cfg.seed, 21, "test")
    pools = smil_audio_pools(recordings, cfg)
    chosen = {"train": ("train", train_idx), "validation": ("train", val_idx),
              "test": ("test", test_idx)}
    feats: dict[Path, np.ndarray] = {}
    arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    used: set[Path] = set()
    for split in SMIL_SPLITS:
        source_split, idx = chosen[split]
        images, labels = mnist[source_split][0][idx], mnist[source_split][1][idx]
        seen = np.zeros(10, dtype=np.int64)
        mfccs = np.empty((len(idx), *SMIL_AUDIO_SHAPE), dtype=np.float32)
        for i in progress_bar(range(len(idx)), len(idx), f"AV-MNIST-SMIL {split} MFCCs",
                              progress):
            d = int(labels[i])
            pool = pools[split][d]
            rec = pool[int(seen[d]) % len(pool)]
            seen[d] += 1
            used.add(rec.path)
            if rec.path not in feats:
                feats[rec.path] = mfcc(load_speech(rec.path, cfg.clip_samples)[0], cfg)
            mfccs[i] = feats[rec.path]
        arrays[split] = (images, mfccs, labels)
    train_mfcc = arrays["train"][1].astype(np.float64)
    mu = train_mfcc.mean(axis=(0, 2), keepdims=True)[0]
    sd = np.maximum(train_mfcc.std(axis=(0, 2), keepdims=True)[0], 1e-8)
    written = []
    for split in SMIL_SPLITS:
        images, mfccs, labels = arrays[split]
        for rel, arr in zip((s.rel for s in smil_specs(split)),
                            (images.astype(np.uint8),
                             ((mfccs - mu) / sd).astype(np.float32),
                             labels.astype(np.int64))):
            _save(root, rel, arr)
            written.append(rel)
    info = {
        "format": "smil",
        "name": SMIL_NAME,
        "config": asdict(cfg),
        "rows": {s: int(len(arrays[s][2])) for s in SMIL_SPLITS},
        "mfcc_mean": [round(float(v), 6) for v in mu.ravel()],
        "mfcc_std": [round(float(v), 6) for v in sd.ravel()],
        "sources": _source_info(cfg.fsdd_tag, source, recordings, used),
    }
    return _finish(root, written, info)
