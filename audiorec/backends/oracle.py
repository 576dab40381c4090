"""The upper bound: the synthetic dataset's hidden style vector of each track."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audiorec.backends.base import Backend


class OracleBackend(Backend):
    name = "oracle"

    def __init__(self, styles_path: str = "data/raw/styles.parquet"):
        self.styles_path = Path(styles_path)
        if not self.styles_path.is_file():
            raise FileNotFoundError(
                f"the oracle backend needs the synthetic hidden styles at {self.styles_path}; they exist only "
                "with dataset.source: synthetic. Remove 'oracle' from params.yaml: backends for a real dataset."
            )
        self.styles = pd.read_parquet(self.styles_path, columns=["track_id", "style"]).set_index("track_id")["style"]
        self.dim = len(self.styles.iloc[0])

    def embed_tracks(self, tracks: pd.DataFrame, max_seconds: float = 30.0) -> np.ndarray:
        missing = ~tracks["track_id"].isin(self.styles.index)
        if missing.any():
            raise KeyError(
                f"{missing.sum()} tracks of tracks.parquet have no hidden style in {self.styles_path} "
                f"(first: {tracks['track_id'][missing].iloc[0]}); regenerate the dataset with `dvc repro dataset`"
            )
        return np.stack(self.styles.loc[tracks["track_id"]].to_numpy()).astype(np.float32)
