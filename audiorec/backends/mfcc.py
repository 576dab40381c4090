"""MFCC statistics: a hand-crafted timbre baseline.

Music4All-Onion ships a 104-dimensional MFCC vector; with 26 coefficients,
mean and standard deviation of the coefficients and of their deltas give the
same size.
"""

from __future__ import annotations

import librosa
import numpy as np

from audiorec.backends.base import AudioBackend


class MFCCBackend(AudioBackend):
    name = "mfcc"

    def __init__(self, *, n_mfcc: int, sample_rate: int):
        self.n_mfcc = n_mfcc
        self.sample_rate = sample_rate
        self.dim = 4 * n_mfcc

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        coefficients = librosa.feature.mfcc(y=waveform, sr=self.sample_rate, n_mfcc=self.n_mfcc)
        deltas = librosa.feature.delta(coefficients, mode="nearest")
        return np.concatenate(
            [coefficients.mean(axis=1), coefficients.std(axis=1), deltas.mean(axis=1), deltas.std(axis=1)]
        ).astype(np.float32)
