"""EASE (Steck, WWW 2019): closed-form item-item regression on the binary train matrix.

Pure collaborative filtering, no audio: the reference for how far audio-based
models are from what interactions alone give. `B = I - P diag(1/diag(P))` with
`P = (X^T X + l2 I)^-1`, diagonal forced to zero; a user's scores are `x_u B`.

Memory: the Gram matrix, its inverse and B are dense `n_items x n_items`
float32 arrays, about 3 x 4 n^2 bytes at peak: 108 MB for 3,000 tracks, 37.6 GB
for Music4All's 56,000 (12.5 GB each). `fit` refuses up front when that does
not fit in the memory available.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import psutil
from scipy import sparse

from audiorec.models.base import Recommender, log_validation, seen_by_user, user_rows
from audiorec.retrieval import top_k_by_score

if TYPE_CHECKING:
    from dvclive import Live

DENSE_COPIES = 3  # Gram matrix, its inverse, B


def required_bytes(n_items: int) -> int:
    return DENSE_COPIES * 4 * n_items * n_items


def ease_weights(interactions: sparse.csr_matrix, l2: float) -> np.ndarray:
    """The `(n_items, n_items)` EASE weight matrix with zero diagonal, in float32."""
    gram = (interactions.T @ interactions).toarray().astype(np.float32)
    gram[np.diag_indices_from(gram)] += l2
    inverse = np.linalg.inv(gram)
    del gram
    weights = inverse / -np.diag(inverse)[None, :]
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


class EASERecommender(Recommender):
    def __init__(self, l2: float = 500.0, batch_size: int = 1024):
        if l2 <= 0:
            raise ValueError(f"ease.l2={l2!r}; EASE's lambda must be > 0 (the Gram matrix is singular without it)")
        self.l2, self.batch_size = l2, batch_size

    def fit(
        self,
        item_embeddings: np.ndarray,
        train: pd.DataFrame,
        val: pd.DataFrame | None = None,
        live: Live | None = None,
        cold_items: np.ndarray | None = None,
    ) -> "EASERecommender":
        """Learn B from which (user, track) pairs occur in `train`; `item_embeddings` only gives the catalogue size."""
        n_items = len(item_embeddings)
        needed, available = required_bytes(n_items), psutil.virtual_memory().available
        if needed > available:
            raise MemoryError(
                f"EASE on {n_items} tracks needs about {needed / 2**30:.1f} GiB (three dense {n_items} x {n_items} "
                f"float32 matrices) but {available / 2**30:.1f} GiB is available; run it on a machine with more "
                "memory or remove ease from params.yaml: baselines"
            )
        self.seen_items = seen_by_user(train)
        self._user_rows = pd.Index(self.seen_items)
        rows = self._user_rows.get_indexer(train["user_id"])
        self.interactions = sparse.csr_matrix(
            (np.ones(len(train), dtype=np.float32), (rows, train["track_idx"].to_numpy())),
            shape=(len(self._user_rows), n_items),
        )
        self.interactions.data[:] = 1.0  # binary, even if a pair were listed twice
        self.weights = ease_weights(self.interactions, self.l2)
        log_validation(self, val, train, live)
        return self

    def recommend(self, user_ids: Sequence[str], top_k: int, candidates: np.ndarray | None = None) -> pd.DataFrame:
        rows = user_rows(self._user_rows, user_ids, "EASE")
        ranked: list[np.ndarray] = []
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            scores = self.interactions[batch] @ self.weights
            ranked += top_k_by_score(scores, [self.seen_items[self._user_rows[row]] for row in batch], top_k, candidates)
        return pd.DataFrame({"user_id": list(user_ids), "track_idx": ranked})

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "item_weights.npy", self.weights)
