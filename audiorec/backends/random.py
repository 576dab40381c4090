"""The paper's control: a seeded Gaussian vector per track, no audio involved."""
from __future__ import annotations

import numpy as np
import pandas as pd

from audiorec.backends.base import Backend


class RandomBackend(Backend):
    name = "random"

    def __init__(self, dim: int = 200, seed: int = 0):
        self.dim = dim
        self.seed = seed

    def embed_tracks(
        self, tracks: pd.DataFrame, max_seconds: float = 30.0, batch_size: int = 32, failures: dict[int, str] | None = None
    ) -> np.ndarray:
        return np.random.default_rng(self.seed).standard_normal((len(tracks), self.dim)).astype(np.float32)
