"""The paper's control: a seeded random vector per track, no audio involved.

Gaussian by default; the original's Shallow Net ran on uniform [0, 1) vectors of 64
(RecSys) or 128 (journal) dims (`distribution: uniform`, `dim`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audiorec.backends.base import Backend


class RandomBackend(Backend):
    name = "random"

    DISTRIBUTIONS = ("normal", "uniform")

    def __init__(self, *, dim: int, seed: int, distribution: str):
        if distribution not in self.DISTRIBUTIONS:
            raise ValueError(f"random.distribution={distribution!r}; allowed: {', '.join(self.DISTRIBUTIONS)}")
        self.dim, self.seed, self.distribution = dim, seed, distribution

    def embed_tracks(
        self,
        tracks: pd.DataFrame,
        max_seconds: float = 30.0,
        batch_size: int = 32,
        failures: dict[int, str] | None = None,
    ) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        shape = (len(tracks), self.dim)
        vectors = rng.standard_normal(shape) if self.distribution == "normal" else rng.random(shape)
        return vectors.astype(np.float32)
