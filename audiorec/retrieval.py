"""Top-k retrieval by inner product with the user's already-seen tracks removed.

Shared by every recommender whose scores are an inner product of a user and
an item representation (KNN on audio vectors, the Shallow net, BERT4Rec).
"""
from __future__ import annotations

from typing import Sequence

import faiss
import numpy as np


def top_k_unseen(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    seen_items: Sequence[np.ndarray],
    top_k: int,
    batch_size: int = 1024,
    candidates: np.ndarray | None = None,
) -> list[np.ndarray]:
    """For each user, the `top_k` highest-scoring items not in `seen_items[user]`,
    among `candidates` (sorted item indices; default: every item).

    Searching `top_k` and filtering afterwards would leave users with long
    histories short of `top_k`; instead each batch searches `top_k` plus the
    longest history in the batch, so every user gets exactly `top_k` unseen
    items whenever the catalogue has that many. Users are batched in order of
    history length to keep that search depth small.
    """
    if top_k <= 0:
        raise ValueError(f"top_k must be positive, got {top_k}")
    if user_vectors.shape[1] != item_vectors.shape[1]:
        raise ValueError(f"user vectors have dim {user_vectors.shape[1]}, item vectors {item_vectors.shape[1]}")
    if candidates is not None:
        # Search the candidates' own matrix, then map positions back to item indices.
        candidates = np.unique(candidates)
        positions = [np.searchsorted(candidates, seen[np.isin(seen, candidates)]) for seen in seen_items]
        ranked = top_k_unseen(user_vectors, item_vectors[candidates], positions, top_k, batch_size)
        return [candidates[r] for r in ranked]
    n_items = item_vectors.shape[0]
    index = faiss.IndexFlatIP(item_vectors.shape[1])
    index.add(np.ascontiguousarray(item_vectors, dtype=np.float32))
    history_length = np.array([len(seen) for seen in seen_items])
    order = np.argsort(history_length, kind="stable")
    recommendations: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(seen_items)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        depth = min(n_items, top_k + int(history_length[batch].max()))
        _, candidates = index.search(np.ascontiguousarray(user_vectors[batch], dtype=np.float32), depth)
        for user, ranked in zip(batch, candidates):
            ranked = ranked[ranked >= 0]
            unseen = ranked[~np.isin(ranked, seen_items[user])]
            recommendations[user] = unseen[:top_k]
    return recommendations


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Unit rows, so inner product is cosine; all-zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def top_k_by_score(
    scores: np.ndarray, seen_items: Sequence[np.ndarray], top_k: int, candidates: np.ndarray | None = None
) -> list[np.ndarray]:
    """For each row of `scores` (users x items), the `top_k` highest-scoring items not in
    `seen_items[row]`, among `candidates` (default: every item); equal scores rank the
    lower track index first, so ties never depend on the sort algorithm. For models that
    score every item explicitly."""
    if top_k <= 0:
        raise ValueError(f"top_k must be positive, got {top_k}")
    masked = np.array(scores, dtype=np.float64)
    if candidates is not None:
        outside = np.ones(masked.shape[1], dtype=bool)
        outside[candidates] = False
        masked[:, outside] = -np.inf
    for row, seen in enumerate(seen_items):
        masked[row, seen] = -np.inf
    order = np.argsort(-masked, axis=1, kind="stable")
    recommendations = []
    for row, ranked in enumerate(order):
        ranked = ranked[: top_k + len(seen_items[row])]
        recommendations.append(ranked[np.isfinite(masked[row, ranked])][:top_k])
    return recommendations


def top_k_in_order(
    order: np.ndarray, seen_items: Sequence[np.ndarray], top_k: int, candidates: np.ndarray | None = None
) -> list[np.ndarray]:
    """For models that rank every user's tracks the same way (`order`: all item indices, best
    first): for each user, the first `top_k` items of `order` not in `seen_items[user]`, among
    `candidates` (default: every item). The same lists as `top_k_by_score` on the scores that
    `order` sorts, without a users x items matrix: the first `top_k` unseen items lie within
    the first `top_k + len(seen)` of the order, so each user costs O(top_k + len(seen))."""
    if top_k <= 0:
        raise ValueError(f"top_k must be positive, got {top_k}")
    n_items = len(order)
    if candidates is not None:
        allowed = np.zeros(n_items, dtype=bool)
        allowed[candidates] = True
        order = order[allowed[order]]
    is_seen = np.zeros(n_items, dtype=bool)  # set and cleared per user: no allocation per user
    recommendations = []
    for seen in seen_items:
        is_seen[seen] = True
        head = order[: top_k + len(seen)]
        recommendations.append(head[~is_seen[head]][:top_k])
        is_seen[seen] = False
    return recommendations
