"""`none`: the backend of the models without audio, a zero-width vector per track.

It makes a run without audio one more run of the grid: train@none-<model> reads
data/embeddings/none.npy like any backend's matrix, aligned with tracks.parquet, and the
models of params.yaml: baselines ignore its (absent) columns. It is not listed in
params.yaml: backends; audiorec.workflow.grid adds it when a baseline runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audiorec.backends.base import Backend


class NoAudioBackend(Backend):
    name = "none"
    dim = 0

    def embed_tracks(
        self,
        tracks: pd.DataFrame,
        max_seconds: float = 30.0,
        batch_size: int = 32,
        failures: dict[int, str] | None = None,
    ) -> np.ndarray:
        return np.zeros((len(tracks), 0), dtype=np.float32)
