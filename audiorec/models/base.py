"""The recommender interface: `fit` on train interactions, `recommend` for users."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import pandas as pd


class Recommender(ABC):
    @abstractmethod
    def fit(self, item_embeddings: np.ndarray, train: pd.DataFrame) -> "Recommender":
        """Learn from `train` (`user_id, track_idx, timestamp, count`); row i of
        `item_embeddings` is track i of tracks.parquet."""

    @abstractmethod
    def recommend(self, user_ids: np.ndarray, top_k: int) -> pd.DataFrame:
        """`user_id` and a ranked `track_idx` list of unseen tracks per user."""


def seen_by_user(train: pd.DataFrame) -> dict[str, np.ndarray]:
    return {user: group.to_numpy() for user, group in train.groupby("user_id", sort=True)["track_idx"]}
