"""KNN of the original study: a user is the mean of their train tracks' audio vectors."""
from __future__ import annotations

import numpy as np
import pandas as pd

from audiorec.models.base import Recommender, seen_by_user
from audiorec.retrieval import l2_normalise, top_k_unseen


class KNNRecommender(Recommender):
    def __init__(self, batch_size: int = 1024):
        self.batch_size = batch_size

    def fit(self, item_embeddings: np.ndarray, train: pd.DataFrame) -> "KNNRecommender":
        self.item_vectors = l2_normalise(item_embeddings.astype(np.float32))
        self.seen_items = seen_by_user(train)
        self.user_vectors = {
            user: item_embeddings[items].mean(axis=0) for user, items in self.seen_items.items()
        }
        return self

    def recommend(self, user_ids: np.ndarray, top_k: int) -> pd.DataFrame:
        unknown = [user for user in user_ids if user not in self.seen_items]
        if unknown:
            raise KeyError(f"{len(unknown)} users have no train interactions (first: {unknown[0]}); KNN cannot represent them")
        user_vectors = l2_normalise(np.stack([self.user_vectors[user] for user in user_ids]).astype(np.float32))
        ranked = top_k_unseen(
            user_vectors, self.item_vectors, [self.seen_items[user] for user in user_ids], top_k, self.batch_size
        )
        return pd.DataFrame({"user_id": list(user_ids), "track_idx": ranked})
