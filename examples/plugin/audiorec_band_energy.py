"""An audiorec backend from outside the repository: log energy in equal-width frequency bands.

The three things a plugin implements:
1. a class taking its params.yaml section as keyword arguments and setting `dim` (and, for an
   AudioBackend, `sample_rate`: audiorec decodes every track to mono at that rate);
2. `embed(waveform) -> vector of dim float32` for one track (optionally `embed_batch` for a
   real batch path, and `use_device` for a model that can run on a GPU);
3. an entry point in the `audiorec.backends` group naming that class (pyproject.toml).
"""

import numpy as np

from audiorec.backends import AudioBackend


class BandEnergyBackend(AudioBackend):
    """Mean over frames of the log power in `n_bands` equal-width bands of a Hann-windowed FFT."""

    def __init__(self, n_bands: int = 16, frame: int = 1024, sample_rate: int = 16000):
        if (frame // 2) % n_bands:
            raise ValueError(f"band_energy.n_bands={n_bands} must divide frame // 2 = {frame // 2}")
        self.n_bands = n_bands
        self.frame = frame
        self.sample_rate = sample_rate
        self.dim = n_bands

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        padded = np.pad(waveform, (0, -len(waveform) % self.frame))
        frames = padded.reshape(-1, self.frame) * np.hanning(self.frame)
        power = np.abs(np.fft.rfft(frames, axis=1)[:, 1:]) ** 2  # drop DC: frame // 2 bins
        bands = power.reshape(len(frames), self.n_bands, -1).sum(axis=2)
        return np.log(bands + 1e-10).mean(axis=0).astype(np.float32)
