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
    return embeddings
