"""AV-Digits: the embedded audio-visual digits data set (built and explored in notebook 00).

image: scikit-learn's 1,797 bundled 8x8 handwritten digits, degraded with seeded pixel noise;
audio: the spoken digit word synthesised by espeak-ng (many accents, voice variants, speeds and
pitches), resampled to 8 kHz, mixed with white noise at a fixed SNR, stored as 8-bit mu-law
waveform and as a quantised log-mel spectrogram. Images and clips are paired by label, as
AV-MNIST does. Splits are stratified by label and speaker-independent: every voice variant
belongs to exactly one split.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from umm_helpers.data import audio
from umm_helpers.data.checksums import update_sums, verify
from umm_helpers.data.dataset import MultiModalDataset, Split
from umm_helpers.settings import data_dir
from umm_helpers.settings import progress as progress_bar

NAME = "av-digits"
SUBDIR = "av-digits"
SPLITS = ("train", "validation", "test")
FILES = tuple(f"{SUBDIR}/{s}.parquet" for s in SPLITS)
REBUILD = "make data  (or: umm data build av-digits)"
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en", "en-us", "en-us-nyc", "en-029", "en-gb-scotland", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-gb-x-rp")
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "adam", "Alex", "Alicia", "Andy", "Annie", "aunty",
    "belinda", "benjamin", "caleb", "david", "ed", "edward", "Gene", "Jacky", "john", "Lee",
    "linda", "max", "Michael", "Mike", "paul", "quincy", "rob", "robert", "steph", "zac",
    "grandpa", "grandma", "norbert", "shelby", "travis", "victor", "croak",
)


@dataclass(frozen=True)
class BuildConfig:
    """Every knob of the build; the defaults make the shipped data set."""

    seed: int = 0
    fractions: tuple[float, float, float] = (0.6, 0.15, 0.25)
    image_noise: float = 0.35
    snr_db: float = 12.0
    rate: int = 8000
    clip_samples: int = 6000
    n_mels: int = 32
    n_fft: int = 256
    hop: int = 180
    db_range: tuple[float, float] = (-40.0, 30.0)
    speed: tuple[int, int] = (140, 240)
    pitch: tuple[int, int] = (15, 85)

    @property
    def frames(self) -> int:
        return 1 + (self.clip_samples - self.n_fft) // self.hop


def espeak_version() -> str:
    """Version line of the installed espeak-ng, or raise with how to install it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed, and building AV-Digits needs it: "
                           "`sudo apt-get install espeak-ng` (Debian/Ubuntu), "
                           "`brew install espeak-ng` (macOS) or `conda install -c conda-forge "
                           "espeak-ng`. The shipped data/ needs no rebuild to use.")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def synthesize(word: str, accent: str, variant: str, speed: int, pitch: int
               ) -> tuple[np.ndarray, int]:
    """Speak ``word`` with espeak-ng; return (float waveform in [-1, 1], sample rate)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.wav"
        subprocess.run(["espeak-ng", "-v", f"{accent}+{variant}", "-s", str(speed),
                        "-p", str(pitch), "-w", str(path), word],
                       check=True, capture_output=True)
        return audio.read_wav(path)


def stratified_split(labels: np.ndarray, fractions: tuple[float, float, float],
                     rng: np.random.Generator) -> list[np.ndarray]:
    """Indices of train / validation / test, stratified by label, each sorted."""
    parts: list[list[int]] = [[], [], []]
    for c in np.unique(labels):
        idx = rng.permutation(np.nonzero(labels == c)[0])
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        parts[0] += idx[:n_train].tolist()
        parts[1] += idx[n_train:n_train + n_val].tolist()
        parts[2] += idx[n_train + n_val:].tolist()
    return [np.sort(np.array(p, dtype=np.int64)) for p in parts]


def degrade_images(images: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """8x8 digits (0..16) -> noisy uint8 images (0..255): pixel/16 + N(0, noise), clipped."""
    x = images.astype(np.float64) / 16.0 + rng.normal(0.0, noise, size=images.shape)
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def make_clip(raw: np.ndarray, raw_rate: int, cfg: BuildConfig,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Raw speech -> (mu-law codes [clip_samples], log-mel uint8 [n_mels, frames])."""
    speech = audio.resample(audio.trim_silence(raw), raw_rate, cfg.rate)[: cfg.clip_samples]
    start = int(rng.integers(0, cfg.clip_samples - len(speech) + 1))
    clip = np.zeros(cfg.clip_samples)
    clip[start:start + len(speech)] = speech
    noisy = audio.add_noise_at_snr(clip, cfg.snr_db, rng, slice(start, start + len(speech)))
    codes = audio.mu_law_encode(0.9 * noisy / np.max(np.abs(noisy)))
    spec = audio.log_mel_db(audio.mu_law_decode(codes), cfg.rate, cfg.n_mels, cfg.n_fft, cfg.hop)
    return codes, audio.quantize(spec, *cfg.db_range)


def plan(cfg: BuildConfig) -> dict[str, dict[str, np.ndarray]]:
    """Everything random about the build except the noise: splits, pairs and speakers."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng([cfg.seed, 1])
    split_idx = stratified_split(digits.target, cfg.fractions, rng)
    variants = rng.permutation(np.array(VARIANTS))
    n_train = int(round(cfg.fractions[0] * len(variants)))
    n_val = int(round(cfg.fractions[1] * len(variants)))
    variant_sets = [variants[:n_train], variants[n_train:n_train + n_val],
                    variants[n_train + n_val:]]
    images = degrade_images(digits.images, cfg.image_noise, np.random.default_rng([cfg.seed, 2]))
    out = {}
    for name, idx, vset in zip(SPLITS, split_idx, variant_sets):
        n = len(idx)
        out[name] = {
            "image_index": idx,
            "label": digits.target[idx].astype(np.int64),
            "image": images[idx].reshape(n, 64),
            "accent": rng.choice(np.array(ACCENTS), size=n),
            "variant": rng.choice(vset, size=n),
            "speed": rng.integers(cfg.speed[0], cfg.speed[1] + 1, size=n),
            "pitch": rng.integers(cfg.pitch[0], cfg.pitch[1] + 1, size=n),
        }
    return out


def build_arrays(cfg: BuildConfig = BuildConfig(), progress: bool = True,
                 workers: int = 4) -> dict[str, dict[str, np.ndarray]]:
    """Build every split as numpy arrays (needs espeak-ng); deterministic for a config."""
    espeak_version()
    splits = plan(cfg)
    jobs = [(s, i) for s in SPLITS for i in range(len(splits[s]["label"]))]

    def render(job: tuple[str, int]) -> tuple[np.ndarray, np.ndarray]:
        s, i = job
        p = splits[s]
        raw, rate = synthesize(WORDS[p["label"][i]], str(p["accent"][i]), str(p["variant"][i]),
                               int(p["speed"][i]), int(p["pitch"][i]))
        clip_rng = np.random.default_rng([cfg.seed, 3, SPLITS.index(s), i])
        return make_clip(raw, rate, cfg, clip_rng)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(progress_bar(pool.map(render, jobs), len(jobs),
                                    "synthesising AV-Digits audio", progress))
    k = 0
    for s in SPLITS:
        n = len(splits[s]["label"])
        codes, specs = zip(*results[k:k + n])
        k += n
        splits[s]["waveform"] = np.stack(codes)
        splits[s]["spectrogram"] = np.stack(specs).reshape(n, -1)
        splits[s]["speaker"] = np.array([f"{a}+{v}" for a, v in
                                         zip(splits[s]["accent"], splits[s]["variant"])])
    return splits


def _to_table(arrays: dict[str, np.ndarray], cfg: BuildConfig, version: str) -> Any:
    import json

    import pyarrow as pa

    n = len(arrays["label"])
    cols = {
        "label": pa.array(arrays["label"], pa.int64()),
        "image": pa.FixedSizeListArray.from_arrays(
            pa.array(arrays["image"].ravel(), pa.uint8()), 64),
        "spectrogram": pa.FixedSizeListArray.from_arrays(
            pa.array(arrays["spectrogram"].ravel(), pa.uint8()), cfg.n_mels * cfg.frames),
        "waveform": pa.array([bytes(row) for row in arrays["waveform"]], pa.binary()),
        "speaker": pa.array(arrays["speaker"].tolist(), pa.string()),
        "accent": pa.array(arrays["accent"].tolist(), pa.string()),
        "variant": pa.array(arrays["variant"].tolist(), pa.string()),
        "speed": pa.array(arrays["speed"], pa.int64()),
        "pitch": pa.array(arrays["pitch"], pa.int64()),
        "image_index": pa.array(arrays["image_index"], pa.int64()),
    }
    meta = {"build_config": json.dumps(asdict(cfg)), "espeak": version, "rows": str(n)}
    return pa.table(cols).replace_schema_metadata(meta)


def build(out_dir: str | Path | None = None, cfg: BuildConfig = BuildConfig(),
          progress: bool = True) -> list[Path]:
    """Build AV-Digits into ``out_dir`` (default ``data_dir()``) and update ``SHA256SUMS``.

    Files are written to temp names and renamed, so an interrupted build leaves the old data.
    """
    import pyarrow.parquet as pq

    from umm_helpers.atomic import atomic_path

    root = Path(out_dir) if out_dir is not None else data_dir()
    version = espeak_version()
    arrays = build_arrays(cfg, progress)
    written = []
    for s, rel in zip(SPLITS, FILES):
        with atomic_path(root / rel) as tmp:
            pq.write_table(_to_table(arrays[s], cfg, version), tmp, compression="zstd")
        written.append(root / rel)
    update_sums(root, FILES)
    return written


def read_split(path: Path, cfg: BuildConfig = BuildConfig()) -> dict[str, np.ndarray]:
    """Read one Parquet split into numpy arrays.

    Columns stay Arrow arrays, so the fixed-size pixel lists become numpy arrays without a
    detour through Python lists (and without importing a data-set library: every notebook
    loads this file).
    """
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    n = table.num_rows

    def pixels(name: str, shape: tuple[int, ...]) -> np.ndarray:
        flat = table.column(name).combine_chunks().flatten().to_numpy()
        return flat.astype(np.uint8).reshape(n, *shape)  # a writable copy

    return {
        "label": table.column("label").to_numpy().astype(np.int64),
        "image": pixels("image", (1, 8, 8)),
        "spectrogram": pixels("spectrogram", (1, cfg.n_mels, cfg.frames)),
        "waveform": np.frombuffer(b"".join(table.column("waveform").to_pylist()),
                                  dtype=np.uint8).reshape(n, -1),
        **{k: np.asarray(table.column(k).to_pylist()) for k in
           ("speaker", "accent", "variant", "speed", "pitch", "image_index")},
    }


def check_labels(labels: np.ndarray, path: Path) -> None:
    """Raise ``ValueError`` naming ``path`` unless every label is a digit 0..9."""
    bad = (labels < 0) | (labels >= len(WORDS))
    if labels.size == 0 or bool(bad.any()):
        detail = (f"{int(bad.sum())} rows out of range, first row {int(np.nonzero(bad)[0][0])} "
                  f"with label {int(labels[bad][0])}" if labels.size else "no rows")
        raise ValueError(f"{path}: labels must be digits 0..{len(WORDS) - 1} ({detail}). "
                         f"Restore the file with `git checkout data/` or rebuild it with "
                         f"`{REBUILD}`.")


def load(root: str | Path | None = None, verify_sums: bool = True) -> MultiModalDataset:
    """Load AV-Digits: image ``[N, 1, 8, 8]`` and audio ``[N, 1, 32, 32]``, both in [0, 1].

    Every file is checked against ``data/SHA256SUMS`` first (``verify_sums=False`` skips it).
    Per-sample metadata (speaker, accent, variant, speed, pitch, waveform) is in ``split.meta``.
    """
    root = Path(root) if root is not None else data_dir()
    sums = verify(root, FILES, REBUILD) if verify_sums else {}
    splits = []
    for s, rel in zip(SPLITS, FILES):
        a = read_split(root / rel)
        check_labels(a["label"], root / rel)
        inputs = {"image": torch.from_numpy(a["image"].astype(np.float32) / 255.0),
                  "audio": torch.from_numpy(a["spectrogram"].astype(np.float32) / 255.0)}
        meta = {k: a[k] for k in ("speaker", "accent", "variant", "speed", "pitch",
                                  "image_index", "waveform")}
        splits.append(Split(inputs, torch.from_numpy(a["label"]), list(WORDS), s, meta))
    checksum = "-".join(sums.get(f, "")[:8] for f in FILES) if sums else ""
    train, validation, test = splits
    return MultiModalDataset(train, validation, test, name=NAME, checksum=checksum,
                             info={"rate": BuildConfig().rate, "root": str(root)})


def waveform(split: Split, i: int) -> np.ndarray:
    """The 8 kHz float waveform of sample ``i`` (for ``IPython.display.Audio``)."""
    return audio.mu_law_decode(np.asarray(split.meta["waveform"][i]))
