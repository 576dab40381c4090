"""ELSA (Vančura, Alves, Kasalický, Kordík, RecSys 2022): the journal's collaborative reference.

A scalable linear shallow autoencoder from the `elsarec` package (its own
torch implementation, used as is): item factors W (n_tracks x factors), A = W
with L2-normalised rows, a user's binary train row x reconstructed as
`x A Aᵀ - x` under normalised MSE, NAdam. No audio: a baseline like EASE, but
its memory grows with n_tracks x factors instead of n_tracks², so it fits
Music4All (benchmarks/elsa_scale.py).

Ranking: a user's scores `x A Aᵀ` on unseen tracks are the inner products of
the user vector `x A` with the item vectors A, so retrieval goes through
`top_k_unseen` without a dense users x tracks score matrix (the journal's
`predict` built one: 3.8 GB for Music4All). `save` writes A
(`item_factors.npy`, one row per track of tracks.parquet) for the Bimodal
model, which reads it as its collaborative view.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import torch
from elsa import ELSA

from audiorec import paths
from audiorec.models.base import Recommender, binary_matrix, seen_by_user, user_rows, validation_metrics
from audiorec.models.training import (
    FixedLearningRate,
    saved_config,
    resolve_device,
    seed_deterministic,
    train_epochs,
    training_fingerprint,
)
from audiorec.retrieval import l2_normalise, top_k_unseen
from audiorec.settings.elsa import ELSASettings

if TYPE_CHECKING:
    from dvclive import Live

logger = logging.getLogger(__name__)

ITEM_FACTORS = paths.ELSA_ITEM_FACTORS
# none: the journal's run, every epoch trained and the last kept; val_ndcg: early stopping on val NDCG@50.
STOP_ON = {"none": None, "val_ndcg": "val/ndcg@50"}


def elsa_optimizer(model: ELSA) -> torch.optim.Optimizer:
    """ELSA's NAdam, which elsarec keeps private (name-mangled); a resumable run checkpoints its state."""
    return model._ELSA__optimizer


class ELSARecommender(Recommender):
    def __init__(self, settings: ELSASettings, *, seed: int = 0, checkpoint_dir: str | None = None):
        self.settings, self.seed, self.checkpoint_dir = settings, seed, checkpoint_dir
        self.torch_device = resolve_device(settings.device)

    def fit(
        self,
        item_embeddings: np.ndarray,
        train: pd.DataFrame,
        val: pd.DataFrame | None = None,
        live: Live | None = None,
        cold_items: np.ndarray | None = None,
    ) -> "ELSARecommender":
        """Train on which (user, track) pairs occur in `train`, one elsarec `fit` call per epoch
        (its optimizer persists between calls, so this is the same run as one call with all
        epochs, with a hook to log, validate and checkpoint); `item_embeddings` gives only the
        catalogue size."""
        n_items = len(item_embeddings)
        self.seen_items = seen_by_user(train)
        self._user_rows = pd.Index(self.seen_items)
        self.interactions = binary_matrix(train, self._user_rows, n_items)
        seed_deterministic(self.seed)  # elsarec draws its Xavier initialisation from torch's global generator
        self.model = ELSA(n_items=n_items, n_dims=self.settings.factors, device=self.torch_device, lr=self.settings.lr)
        truth = None if val is None else val[val["user_id"].isin(self._user_rows)]
        self.epoch, self.loss = train_epochs(
            "elsa",
            self.model,
            elsa_optimizer(self.model),
            FixedLearningRate(),
            torch.default_generator,
            self.settings.patience,
            self.settings.max_epochs,
            train_epoch=self._train_epoch,
            validate=(lambda: validation_metrics(self, truth, train)) if truth is not None else None,
            schedule_on="train/loss",
            resume_dir=self.checkpoint_dir if self.settings.resume else None,
            fingerprint=training_fingerprint((__file__,), saved_config(self), item_embeddings[:, :0], train, val),
            live=live,
            stop_on=STOP_ON[self.settings.stop_on],
        )
        return self

    def _train_epoch(self) -> float:
        # elsarec shuffles with torch's global generator, which train_epochs checkpoints for resume.
        losses = self.model.fit(
            self.interactions,
            epochs=1,
            batch_size=self.settings.batch_size,
            shuffle=self.settings.shuffle,
            verbose=False,
        )
        return float(losses["nmse_train"][0])

    @property
    def item_factors(self) -> np.ndarray:
        """A: the L2-normalised item factors, one row per track."""
        return l2_normalise(self.model.get_items_embeddings(as_numpy=True).astype(np.float32))

    def recommend(self, user_ids: Sequence[str], top_k: int, candidates: np.ndarray | None = None) -> pd.DataFrame:
        rows = user_rows(self._user_rows, user_ids, "ELSA")
        items = self.item_factors
        users = np.asarray(self.interactions[rows] @ items, dtype=np.float32)
        seen = [self.seen_items[self._user_rows[row]] for row in rows]
        ranked = top_k_unseen(users, items, seen, top_k, self.settings.retrieval_batch_size, candidates)
        return pd.DataFrame({"user_id": list(user_ids), "track_idx": ranked})

    def save(self, directory: str | Path) -> None:
        """`item_factors.npy` (A, aligned with tracks.parquet) and `user_representations.npy`
        (x A, rows in sorted train user order): their inner products are ELSA's scores."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        items = self.item_factors
        np.save(directory / ITEM_FACTORS, items)
        np.save(directory / "user_representations.npy", np.asarray(self.interactions @ items, dtype=np.float32))
