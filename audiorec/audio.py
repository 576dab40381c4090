"""Decoding audio the same way for every backend: mono, resampled, cropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def to_mono(waveform: np.ndarray) -> np.ndarray:
    """Average channels; soundfile returns (frames, channels) for multichannel files."""
    if waveform.ndim == 1:
        return waveform
    return waveform.mean(axis=1)


def resample(waveform: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling: exact rational ratio, no dependency beyond scipy."""
    if orig_rate == target_rate:
        return waveform
    # Imported here: scipy.signal takes 0.8 s to load, and every stage imports this module
    # through the backend registry that params validation reads.
    from scipy.signal import resample_poly

    divisor = np.gcd(orig_rate, target_rate)
    return resample_poly(waveform, target_rate // divisor, orig_rate // divisor).astype(np.float32)


def load(path: str | Path, sample_rate: int, max_seconds: float | None = 30.0) -> np.ndarray:
    """Read an audio file as mono float32 at `sample_rate`, keeping the first `max_seconds`.

    Cropping happens before resampling so a long file is never resampled whole.
    """
    with sf.SoundFile(str(path)) as audio_file:
        orig_rate = audio_file.samplerate
        frames = -1 if max_seconds is None else int(round(max_seconds * orig_rate))
        waveform = audio_file.read(frames=frames, dtype="float32", always_2d=False)
    waveform = resample(to_mono(waveform), orig_rate, sample_rate)
    if max_seconds is not None:
        waveform = waveform[: int(round(max_seconds * sample_rate))]
    return np.ascontiguousarray(waveform, dtype=np.float32)
