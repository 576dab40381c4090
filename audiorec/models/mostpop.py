"""Most popular: every user gets the most played train tracks they have not heard.

No audio and no personalisation: the floor any content model has to clear.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from audiorec.models.base import Recommender, log_validation, seen_by_user, user_rows
from audiorec.retrieval import top_k_in_order
from audiorec.settings.mostpop import MostPopSettings

if TYPE_CHECKING:
    from dvclive import Live


class MostPopRecommender(Recommender):
    def __init__(self, settings: MostPopSettings):
        self.settings = settings

    def fit(
        self,
        item_embeddings: np.ndarray,
        train: pd.DataFrame,
        val: pd.DataFrame | None = None,
        live: Live | None = None,
        cold_items: np.ndarray | None = None,
    ) -> "MostPopRecommender":
        """Popularity of each of the `len(item_embeddings)` tracks: total plays, or distinct listeners."""
        weights = train["count"].to_numpy(dtype=np.float64) if self.settings.count_by == "plays" else None
        self.popularity = np.bincount(train["track_idx"], weights=weights, minlength=len(item_embeddings))
        # One ranking for everybody; stable on the negated counts, so ties go to the lower track index.
        self.order = np.argsort(-self.popularity, kind="stable")
        self.seen_items = seen_by_user(train)
        self._user_rows = pd.Index(self.seen_items)
        log_validation(self, val, train, live)
        return self

    def recommend(self, user_ids: Sequence[str], top_k: int, candidates: np.ndarray | None = None) -> pd.DataFrame:
        user_ids = list(user_ids)
        user_rows(self._user_rows, user_ids, "mostpop")  # raises for users without train history
        ranked = top_k_in_order(self.order, [self.seen_items[user] for user in user_ids], top_k, candidates)
        return pd.DataFrame({"user_id": user_ids, "track_idx": ranked})

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "item_popularity.npy", self.popularity)
