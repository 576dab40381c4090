"""KNN of the original study: a user is the mean of their train tracks' audio vectors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from audiorec.models.base import Recommender, log_validation, seen_by_user, user_rows
from audiorec.retrieval import l2_normalise, top_k_unseen
from audiorec.settings.knn import KNNSettings

if TYPE_CHECKING:
    from dvclive import Live


class KNNRecommender(Recommender):
    ranks_cold_tracks = True

    def __init__(self, settings: KNNSettings):
        self.settings = settings

    def fit(
        self,
        item_embeddings: np.ndarray,
        train: pd.DataFrame,
        val: pd.DataFrame | None = None,
        live: Live | None = None,
        cold_items: np.ndarray | None = None,
    ) -> "KNNRecommender":
        """Nothing is trained; with `val` and `live`, the validation metrics are logged as step 0.

        `user_rows: item_ids` reproduces the journal code's indexing bug: it averaged the
        catalogue rows numbered like the user's item ids (each track's rank among the train and
        cold tracks) instead of the tracks' own rows."""
        self.item_vectors = l2_normalise(item_embeddings.astype(np.float32))
        self.seen_items = seen_by_user(train)
        rows = self.seen_items
        if self.settings.user_rows == "item_ids":
            known = np.union1d(train["track_idx"].to_numpy(), [] if cold_items is None else cold_items)
            rows = {user: np.searchsorted(known, items) for user, items in rows.items()}
        self.user_vectors = l2_normalise(
            np.stack([item_embeddings[items].mean(axis=0) for items in rows.values()]).astype(np.float32)
        )
        self._user_rows = pd.Index(self.seen_items)
        log_validation(self, val, train, live)
        return self

    def recommend(self, user_ids: Sequence[str], top_k: int, candidates: np.ndarray | None = None) -> pd.DataFrame:
        rows = user_rows(self._user_rows, user_ids, "KNN")
        seen_items = [self.seen_items[user] for user in user_ids]
        ranked = top_k_unseen(
            self.user_vectors[rows], self.item_vectors, seen_items, top_k, self.settings.batch_size, candidates
        )
        return pd.DataFrame({"user_id": list(user_ids), "track_idx": ranked})

    def save(self, directory: str | Path) -> None:
        """The retrieval vectors; user rows follow the sorted train user ids."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "user_representations.npy", self.user_vectors)
        np.save(directory / "item_representations.npy", self.item_vectors)
