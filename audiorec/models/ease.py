"""EASE (Steck, WWW 2019): closed-form item-item regression on the binary train matrix.

Pure collaborative filtering, no audio: the reference for how far audio-based
models are from what interactions alone give. `B = I - P diag(1/diag(P))` with
`P = (X^T X + l2 I)^-1`, diagonal forced to zero; a user's scores are `x_u B`.

Memory: one dense `n_items x n_items` array (float32 by default, `ease.dtype`)
holds the Gram matrix, then its Cholesky factor, then P, then B: LAPACK's
`potrf`/`potri` overwrite it, so 56,512 tracks (Music4All) fit in 12 GiB
instead of the ~8 copies `numpy.linalg.inv` needs. `fit` refuses up front when
the measured peak (`required_bytes`, benchmarks/ease_memory.py) does not fit.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import psutil
from scipy import sparse
from scipy.linalg import lapack

from audiorec.models.base import Recommender, log_validation, seen_by_user, user_rows
from audiorec.retrieval import top_k_by_score
from audiorec.settings.ease import EASESettings

if TYPE_CHECKING:
    from dvclive import Live

log = logging.getLogger(__name__)

# Entries of X^T X built per block: the sparse block product holds at most this many
# non-zeros (~128 MB in float32), never the whole Gram matrix, which at Music4All scale
# can have up to n^2 non-zeros.
GRAM_BLOCK_ENTRIES = 2**24
# Side of the square tiles in which the inverse's triangle is mirrored (cache-sized).
MIRROR_TILE = 512
# What `required_bytes` counts, measured by benchmarks/ease_memory.py (docs/models.md):
# `fit` peaks at 1.00 copies of the n x n array + 82 MiB (fitted at 10,000 and 24,214
# tracks; 1.01 copies at 56,512); scoring a batch adds, per (user, track) cell, its
# score in `dtype` and, in `top_k_by_score`, a float64 masked copy, its negation and an
# int64 argsort (28 bytes measured in float32). The overhead rounds the 82 MiB up (Gram
# blocks, LAPACK's buffers, the train frame's per-user arrays).
MATRIX_COPIES = 1.0
SCORE_CELL_BYTES = 3 * 8
OVERHEAD_BYTES = 2**28


def required_bytes(n_items: int, batch_size: int = 1024, dtype: str = "float32") -> int:
    """Peak memory EASE needs on `n_items` tracks, scoring `batch_size` users at a time."""
    itemsize = np.dtype(dtype).itemsize
    scoring = (itemsize + SCORE_CELL_BYTES) * batch_size * n_items
    return int(MATRIX_COPIES * itemsize * n_items**2 + scoring + OVERHEAD_BYTES)


def gram_matrix(interactions: sparse.csr_matrix, l2: float, dtype: str = "float32") -> np.ndarray:
    """`X^T X + l2 I` as one dense C-ordered array, filled a block of rows at a time."""
    n_items = interactions.shape[1]
    by_user = interactions.astype(dtype).tocsr()
    by_track = by_user.T.tocsr()
    gram = np.zeros((n_items, n_items), dtype=dtype)
    rows = max(1, GRAM_BLOCK_ENTRIES // max(n_items, 1))
    for start in range(0, n_items, rows):
        # Zeros + the block: right whether toarray(out=) adds into or overwrites its buffer.
        (by_track[start : start + rows] @ by_user).toarray(out=gram[start : start + rows])
    gram.flat[:: n_items + 1] += l2
    return gram


def invert_spd_in_place(matrix: np.ndarray) -> None:
    """Overwrite the symmetric positive definite C-ordered `matrix` with its inverse (Cholesky)."""
    # The transpose is the same symmetric matrix in Fortran order, which LAPACK takes
    # without a copy; its lower triangle is the upper triangle of `matrix`.
    fortran = matrix.T
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (fortran,))
    factor, info = potrf(fortran, lower=1, clean=0, overwrite_a=1)
    if factor is not fortran:  # f2py copies an input it cannot use as is: the result would be lost
        raise TypeError(
            f"invert_spd_in_place needs a C-ordered float32/float64 matrix, got {matrix.dtype} {matrix.flags}"
        )
    if info > 0:
        raise np.linalg.LinAlgError(
            f"EASE: X^T X + l2 I is not positive definite in {matrix.dtype} (Cholesky failed at track index "
            f"{info - 1} of {len(matrix)}); raise params.yaml ease.l2 or set ease.dtype: float64"
        )
    if info < 0:
        raise ValueError(f"LAPACK {potrf.typecode}potrf rejected argument {-info} (a bug in audiorec.models.ease)")
    _, info = potri(fortran, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(
            f"EASE: LAPACK {potri.typecode}potri failed (info={info}) inverting the {len(matrix)}-track Gram matrix; "
            "raise params.yaml ease.l2 or set ease.dtype: float64"
        )
    mirror_upper_triangle(matrix)


def mirror_upper_triangle(matrix: np.ndarray, tile: int = MIRROR_TILE) -> None:
    """Copy the upper triangle onto the lower one, tile by tile (no n x n temporary)."""
    n = len(matrix)
    for top in range(0, n, tile):
        diagonal = matrix[top : top + tile, top : top + tile]
        diagonal[...] = np.triu(diagonal) + np.triu(diagonal, 1).T
        for left in range(top + tile, n, tile):
            matrix[left : left + tile, top : top + tile] = matrix[top : top + tile, left : left + tile].T


def ease_weights(interactions: sparse.csr_matrix, l2: float, dtype: str = "float32") -> np.ndarray:
    """The `(n_items, n_items)` EASE weight matrix with zero diagonal, in `dtype`, computed in one array."""
    n_items = interactions.shape[1]
    log.info(
        "EASE: Gram matrix of %d tracks (%.1f GiB of %s)", n_items, np.dtype(dtype).itemsize * n_items**2 / 2**30, dtype
    )
    weights = gram_matrix(interactions, l2, dtype)
    log.info("EASE: inverting it in place (Cholesky)")  # minutes at Music4All's size, without progress to show
    invert_spd_in_place(weights)
    np.divide(weights, -np.diag(weights), out=weights)  # column j over -P_jj: B = -P diag(1/diag(P))
    weights.flat[:: len(weights) + 1] = 0.0
    return weights


class EASERecommender(Recommender):
    def __init__(self, settings: EASESettings):
        self.settings = settings

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
        check_memory(n_items, self.settings.batch_size, self.settings.dtype)
        self.seen_items = seen_by_user(train)
        self._user_rows = pd.Index(self.seen_items)
        rows = self._user_rows.get_indexer(train["user_id"])
        self.interactions = sparse.csr_matrix(
            (np.ones(len(train), dtype=self.settings.dtype), (rows, train["track_idx"].to_numpy())),
            shape=(len(self._user_rows), n_items),
        )
        self.interactions.data[:] = 1.0  # binary, even if a pair were listed twice
        self.weights = ease_weights(self.interactions, self.settings.l2, self.settings.dtype)
        log_validation(self, val, train, live)
        return self

    def recommend(self, user_ids: Sequence[str], top_k: int, candidates: np.ndarray | None = None) -> pd.DataFrame:
        rows = user_rows(self._user_rows, user_ids, "EASE")
        ranked: list[np.ndarray] = []
        for start in range(0, len(rows), self.settings.batch_size):
            batch = rows[start : start + self.settings.batch_size]
            scores = self.interactions[batch] @ self.weights
            ranked += top_k_by_score(
                scores, [self.seen_items[self._user_rows[row]] for row in batch], top_k, candidates
            )
        return pd.DataFrame({"user_id": list(user_ids), "track_idx": ranked})

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "item_weights.npy", self.weights)


def check_memory(n_items: int, batch_size: int, dtype: str) -> None:
    """Refuse before any work when EASE's measured peak exceeds the memory available now."""
    needed, available = required_bytes(n_items, batch_size, dtype), psutil.virtual_memory().available
    if needed <= available:
        return
    matrix_gib = np.dtype(dtype).itemsize * n_items**2 / 2**30
    smaller = "use ease.dtype: float32 (half the memory), " if dtype == "float64" else ""
    raise MemoryError(
        f"EASE on {n_items} tracks needs about {needed / 2**30:.1f} GiB (one dense {n_items} x {n_items} {dtype} "
        f"matrix of {matrix_gib:.1f} GiB, plus scoring {batch_size} users at a time) but {available / 2**30:.1f} GiB "
        f"is available: {(needed - available) / 2**30:.1f} GiB short. Free that much memory, {smaller}lower "
        "ease.batch_size, run on a machine with more memory, or remove ease from params.yaml: baselines"
    )
