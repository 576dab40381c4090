"""The upper bound: the synthetic dataset's hidden style vector of each track.

The style has only 11 coordinates (genre one-hot and three deviations), far
narrower than any real audio embedding. A model whose layer width follows its
input (the Shallow net's `Linear(d, d)` + ReLU) would be starved by that width
rather than by a lack of content, so by default the style is embedded
isometrically into `dim` dimensions: orthonormal columns keep every inner
product and norm, hence KNN's ranking, and the embedded vectors still span only
11 dimensions, so no capacity to memorise tracks is added.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audiorec.backends.base import Backend


class OracleBackend(Backend):
    name = "oracle"

    def __init__(self, *, styles_path: str, dim: int, seed: int):
        self.styles_path = Path(styles_path)
        if not self.styles_path.is_file():
            raise FileNotFoundError(
                f"the oracle backend needs the synthetic hidden styles at {self.styles_path}; they exist only "
                "with dataset.source: synthetic. Remove 'oracle' from params.yaml: backends for a real dataset."
            )
        self.styles = pd.read_parquet(self.styles_path, columns=["track_id", "style"]).set_index("track_id")["style"]
        style_dim = len(self.styles.iloc[0])
        if dim and dim < style_dim:
            raise ValueError(
                f"oracle.dim={dim}; use 0 for the raw {style_dim} style coordinates or a width >= {style_dim}"
            )
        self.dim = dim or style_dim
        self.lift = isometry(style_dim, self.dim, seed) if dim else None

    def embed_tracks(
        self,
        tracks: pd.DataFrame,
        max_seconds: float = 30.0,
        batch_size: int = 32,
        failures: dict[int, str] | None = None,
    ) -> np.ndarray:
        missing = ~tracks["track_id"].isin(self.styles.index)
        if missing.any():
            raise KeyError(
                f"{missing.sum()} tracks of tracks.parquet have no hidden style in {self.styles_path} "
                f"(first: {tracks['track_id'][missing].iloc[0]}); regenerate the dataset with `dvc repro dataset`"
            )
        styles = np.stack(self.styles.loc[tracks["track_id"]].to_numpy()).astype(np.float64)
        return (styles if self.lift is None else styles @ self.lift).astype(np.float32)


def isometry(source_dim: int, target_dim: int, seed: int) -> np.ndarray:
    """A `(source_dim, target_dim)` matrix with orthonormal rows: `x @ Q` keeps inner products."""
    gaussian = np.random.default_rng(seed).standard_normal((target_dim, source_dim))
    orthonormal_columns, _ = np.linalg.qr(gaussian)
    return orthonormal_columns.T
