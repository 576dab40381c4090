"""Small file helpers shared by the stages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


def write_json(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_embeddings(path: Path, tracks: pd.DataFrame) -> np.ndarray:
    """An embedding matrix, refused unless it has one row per track of tracks.parquet."""
    embeddings = np.load(path)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(tracks):
        raise ValueError(
            f"{path} has shape {embeddings.shape} but tracks.parquet has {len(tracks)} tracks: "
            f"the matrix is not aligned with the dataset; re-run `dvc repro extract@{path.stem}`"
        )
    partial = np.flatnonzero(np.isnan(embeddings).any(axis=1) & ~masked_rows(embeddings))
    if len(partial) or np.isinf(embeddings).any():
        row = int(partial[0]) if len(partial) else int(np.flatnonzero(np.isinf(embeddings).any(axis=1))[0])
        raise ValueError(
            f"{path}: row {row} (track {tracks['track_id'].iloc[row]}) holds NaN or Inf values; only whole rows "
            f"may be NaN (tracks extract.on_error: skip masked); re-run `dvc repro extract@{path.stem}`"
        )
    return embeddings


def masked_rows(embeddings: np.ndarray) -> np.ndarray:
    """Tracks the extraction skipped (extract.on_error: skip): their rows are entirely NaN."""
    if embeddings.shape[1] == 0:
        return np.zeros(len(embeddings), dtype=bool)
    return np.isnan(embeddings).all(axis=1)


def usable_tracks(item_embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """What a model may use: the matrix with masked rows set to zero (models cannot take NaN)
    and the indices of the unmasked tracks, the only ones to learn from or recommend; None
    when no track is masked."""
    masked = masked_rows(item_embeddings)
    if not masked.any():
        return item_embeddings, None
    return np.where(masked[:, None], 0, item_embeddings).astype(item_embeddings.dtype), np.flatnonzero(~masked)
