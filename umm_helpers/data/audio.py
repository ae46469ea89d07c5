"""Small, pure audio helpers: resampling, noise at a given SNR, mu-law and log-mel features.

Taught in notebook 00 (what the audio modality of AV-Digits is made of).
"""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

MU = 255


def resample(wave: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (deterministic), e.g. 22050 Hz -> 8000 Hz."""
    g = np.gcd(rate_in, rate_out)
    from scipy.signal import resample_poly  # here, not at import: scipy.signal takes a second

    return resample_poly(wave.astype(np.float64), rate_out // g, rate_in // g)


def trim_silence(wave: np.ndarray, threshold: float = 0.02) -> np.ndarray:
    """Cut leading and trailing samples quieter than ``threshold`` x the peak."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak == 0.0:
        return wave
    loud = np.nonzero(np.abs(wave) > threshold * peak)[0]
    return wave[loud[0]: loud[-1] + 1]


def add_noise_at_snr(signal: np.ndarray, snr_db: float, rng: np.random.Generator,
                     active: slice | None = None) -> np.ndarray:
    """Add white Gaussian noise so that speech power / noise power = ``snr_db`` decibels.

    Speech power is measured over ``active`` (the spoken part) when given.
    """
    part = signal[active] if active is not None else signal
    p_signal = float(np.mean(part.astype(np.float64) ** 2))
    p_noise = p_signal / (10.0 ** (snr_db / 10.0))
    return signal + rng.normal(0.0, np.sqrt(p_noise), size=signal.shape)


def mu_law_encode(wave: np.ndarray) -> np.ndarray:
    """Float waveform in [-1, 1] -> 8-bit mu-law codes (uint8), as telephone audio."""
    x = np.clip(wave, -1.0, 1.0)
    y = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    return np.round((y + 1.0) / 2.0 * MU).astype(np.uint8)


def mu_law_decode(codes: np.ndarray) -> np.ndarray:
    """8-bit mu-law codes -> float32 waveform in [-1, 1]."""
    y = codes.astype(np.float64) / MU * 2.0 - 1.0
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(MU)) / MU).astype(np.float32)


def mel_filterbank(n_mels: int, n_fft: int, rate: int) -> np.ndarray:
    """Triangular mel filters, shape ``[n_mels, n_fft // 2 + 1]``."""
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0.0, rate / 2.0, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(rate / 2.0)),
                                  n_mels + 2))
    bank = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rising = (freqs - lo) / (mid - lo)
        falling = (hi - freqs) / (hi - mid)
        bank[i] = np.maximum(0.0, np.minimum(rising, falling))
    return bank


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A PCM wav file (8, 16 or 32 bit) as a float64 mono waveform in [-1, 1] and its rate."""
    with wave.open(str(path)) as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0
    else:
        raise ValueError(f"{path}: {8 * width}-bit wav files are not supported (8, 16, 32).")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    return data, rate


def stft_power(wave_: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Hann-window power spectrogram ``[n_fft // 2 + 1, frames]`` (float64, no padding).

    frames = 1 + (len(wave) - n_fft) // hop.
    """
    frames = 1 + (len(wave_) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    frames_ = wave_.astype(np.float64, copy=False)[idx]
    return (np.abs(np.fft.rfft(frames_ * np.hanning(n_fft), axis=1)) ** 2).T


def log_mel_db(wave: np.ndarray, rate: int, n_mels: int = 32, n_fft: int = 256,
               hop: int = 96) -> np.ndarray:
    """Log-mel power spectrogram in decibels, ``[n_mels, frames]`` (see :func:`stft_power`)."""
    mel = stft_power(wave, n_fft, hop).T @ mel_filterbank(n_mels, n_fft, rate).T
    return (10.0 * np.log10(mel + 1e-10)).T


def quantize(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Clip to ``[lo, hi]`` and map linearly onto 0..255 (uint8)."""
    scaled = (np.clip(values, lo, hi) - lo) / (hi - lo) * 255.0
    return np.round(scaled).astype(np.uint8)
