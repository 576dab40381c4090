"""The recommender interface: `fit` on train interactions, `recommend` for users, `save`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from audiorec.metrics import per_user_metrics

if TYPE_CHECKING:
    from dvclive import Live

VAL_K = 50


class Recommender(ABC):
    # True for models that represent a track by its audio, so they can rank tracks without
    # train interactions (the cold-start protocol); interactions-only models have no score for them.
    # A model may decide it per instance (BERT4Rec without audio vectors cannot).
    ranks_cold_tracks: bool = False

    @abstractmethod
    def fit(
        self,
        item_embeddings: np.ndarray,
        train: pd.DataFrame,
        val: pd.DataFrame | None = None,
        live: Live | None = None,
        cold_items: np.ndarray | None = None,
    ) -> "Recommender":
        """Learn from `train` (`user_id, track_idx, timestamp, count`); row i of
        `item_embeddings` is track i of tracks.parquet. `val` (`user_id, track_idx`,
        `timestamp`) is held-out truth for model selection; `live` receives per-step
        metrics. `cold_items` are the tracks of the cold split, which the journal's code
        knew at training time (its BERT4Rec scored them in its softmax); other models
        ignore them."""

    @abstractmethod
    def recommend(self, user_ids: Sequence[str], top_k: int, candidates: np.ndarray | None = None) -> pd.DataFrame:
        """`user_id` and a ranked `track_idx` list of unseen tracks per user, drawn from
        `candidates` (track indices; default: the whole catalogue)."""

    @abstractmethod
    def save(self, directory: str | Path) -> None:
        """Write what was learned (the user and item representations, or the item scores) to `directory`."""


def seen_by_user(train: pd.DataFrame) -> dict[str, np.ndarray]:
    return {user: group.to_numpy() for user, group in train.groupby("user_id", sort=True)["track_idx"]}


def binary_matrix(train: pd.DataFrame, users: pd.Index, n_items: int) -> sparse.csr_matrix:
    """The binary `len(users) x n_items` matrix of which (user, track) pairs occur in `train`."""
    rows = users.get_indexer(train["user_id"])
    matrix = sparse.csr_matrix(
        (np.ones(len(train), dtype=np.float32), (rows, train["track_idx"].to_numpy())), shape=(len(users), n_items)
    )
    matrix.data[:] = 1.0  # binary, even if a pair were listed twice
    return matrix


def user_rows(known_users: pd.Index, user_ids: Sequence[str], model: str) -> np.ndarray:
    """Row of each user in `known_users` (the train users a model has vectors for)."""
    rows = known_users.get_indexer(list(user_ids))
    if (rows < 0).any():
        unknown = [user for user, row in zip(user_ids, rows) if row < 0]
        raise KeyError(
            f"{len(unknown)} users have no train interactions (first: {unknown[0]}); {model} cannot represent them"
        )
    return rows


def validation_metrics(
    recommender: Recommender, truth: pd.DataFrame, train: pd.DataFrame, k: int = VAL_K
) -> dict[str, float]:
    """Mean HitRate@k and NDCG@k of `recommender` on held-out `truth`, for model selection and
    logs; tracks are ranked among those of `train`, as in evaluation (audiorec.evaluation.ranking)."""
    candidates = np.sort(pd.unique(train["track_idx"].to_numpy()))  # np.unique: 30x slower on 5M pairs
    ranked = recommender.recommend(list(np.sort(truth["user_id"].unique())), k, candidates)
    # Only the two logged: every epoch of the torch models pays for this.
    per_user = per_user_metrics(truth, ranked, [k], metrics=("hitrate", "ndcg"))
    return {
        f"val/hitrate@{k}": float(per_user[f"hitrate@{k}"].mean()),
        f"val/ndcg@{k}": float(per_user[f"ndcg@{k}"].mean()),
    }


def log_validation(recommender: Recommender, val: pd.DataFrame | None, train: pd.DataFrame, live: Live | None) -> None:
    """For models without epochs: the validation metrics of the fitted model as dvclive step 0."""
    if live is None or val is None:
        return
    for name, value in validation_metrics(recommender, val, train).items():
        live.log_metric(name, value)
