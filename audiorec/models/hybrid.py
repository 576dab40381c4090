"""The journal's Hybrid model: ELSA with item factors computed from audio.

An MLP (`mean_user.mlp`) maps every track's frozen audio vector to a factor
row; A = those rows L2-normalised. Training is ELSA's: each user's binary train
row x (over the whole catalogue) is reconstructed as `x A Aᵀ - x` under the
normalised MSE, in batches of users. Because A comes from audio, tracks nobody
played (cold tracks) get factors too.

Recommendation, as in the journal: a user is the mean of their train tracks'
rows of A, tracks are ranked by inner product with A, which orders unseen
tracks exactly as ELSA's `x A Aᵀ` does.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from audiorec.models.base import binary_matrix, validation_metrics
from audiorec.models.mean_user import MeanUserRecommender, mlp
from audiorec.models.training import (
    resolve_device,
    seed_deterministic,
    train_epochs,
    training_fingerprint,
)
from audiorec.settings.hybrid import HybridSettings

if TYPE_CHECKING:
    from dvclive import Live
    from scipy import sparse

logger = logging.getLogger(__name__)

# val_ndcg: early stopping on val NDCG@50; val_loss: the journal's, on the loss of the val rows.
STOP_ON = {"val_ndcg": "val/ndcg@50", "val_loss": "val/loss"}


def normalised_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ELSA's loss: the mean squared error between the L2-normalised rows of both."""
    return F.mse_loss(F.normalize(prediction, dim=-1), F.normalize(target, dim=-1))


class HybridNet(nn.Module):
    def __init__(self, audio_dim: int, hidden_dim: int):
        super().__init__()
        self.tower = mlp(audio_dim, hidden_dim)

    def factors(self, audio: torch.Tensor) -> torch.Tensor:
        """A: one L2-normalised factor row per track."""
        return F.normalize(self.tower(audio), dim=-1)

    def forward(self, rows: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """ELSA's reconstruction `x A Aᵀ - x` of the users' binary `rows`."""
        factors = self.factors(audio)
        return (rows @ factors) @ factors.T - rows


class HybridRecommender(MeanUserRecommender):
    name = "hybrid"
    net: HybridNet

    def __init__(self, settings: HybridSettings, *, seed: int = 0, checkpoint_dir: str | None = None):
        self.settings, self.seed, self.checkpoint_dir = settings, seed, checkpoint_dir
        self.torch_device = resolve_device(settings.device)

    def fit(
        self,
        item_embeddings: np.ndarray,
        train: pd.DataFrame,
        val: pd.DataFrame | None = None,
        live: Live | None = None,
        cold_items: np.ndarray | None = None,
    ) -> "HybridRecommender":
        """Train on the users' binary rows of `train`; with `val`, schedule the learning rate on
        the val rows' loss (the journal's), stop early on `stop_on` and keep the best epoch."""
        self._index_users(train)
        seed_deterministic(self.seed)
        self._make_net(item_embeddings)
        self.generator = torch.Generator().manual_seed(self.seed)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.settings.lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=self.settings.scheduler_patience)
        self.columns = (
            np.arange(len(item_embeddings)) if self.settings.catalogue == "all" else np.unique(train["track_idx"])
        )
        rows = self._rows(train, self._user_rows)
        truth = None if val is None else val[val["user_id"].isin(self._user_rows)]
        self.epoch, self.loss = train_epochs(
            "hybrid",
            self.net,
            optimizer,
            scheduler,
            self.generator,
            self.settings.patience,
            self.settings.max_epochs,
            train_epoch=lambda: self._train_epoch(rows, optimizer),
            validate=(lambda: self._validate(truth, train)) if truth is not None else None,
            schedule_on="val/loss",
            resume_dir=self.checkpoint_dir if self.settings.resume else None,
            fingerprint=training_fingerprint((__file__,), self.config(), item_embeddings, train, val),
            live=live,
            stop_on=STOP_ON[self.settings.stop_on],
        )
        self.refresh_vectors()
        return self

    def _make_net(self, item_embeddings: np.ndarray) -> None:
        self.audio = torch.tensor(np.asarray(item_embeddings, dtype=np.float32), device=self.torch_device)
        self.net = HybridNet(self.audio.shape[1], self.settings.hidden_dim).to(self.torch_device)

    def _rows(self, interactions: pd.DataFrame, users: pd.Index) -> sparse.csr_matrix:
        """The users' binary rows over `self.columns` (tracks outside them are dropped)."""
        inside = interactions[interactions["track_idx"].isin(self.columns)]
        return binary_matrix(
            inside.assign(track_idx=np.searchsorted(self.columns, inside["track_idx"])), users, len(self.columns)
        )

    def _loss(self, rows: sparse.csr_matrix) -> torch.Tensor:
        batch = torch.tensor(rows.toarray(), dtype=torch.float32, device=self.torch_device)
        return normalised_mse(self.net(batch, self.audio[self.columns]), batch)

    def _train_epoch(self, rows: sparse.csr_matrix, optimizer: torch.optim.Optimizer) -> float:
        self.net.train()
        order = torch.randperm(rows.shape[0], generator=self.generator).numpy()
        total = 0.0
        for start in range(0, len(order), self.settings.batch_size):
            batch = order[start : start + self.settings.batch_size]
            loss = self._loss(rows[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        return total / len(order)

    @torch.no_grad()
    def _validate(self, truth: pd.DataFrame, train: pd.DataFrame) -> dict[str, float]:
        """The journal's val loss (each val user's val tracks reconstructed from themselves) and val NDCG@50."""
        self.net.eval()
        val_rows = self._rows(truth, pd.Index(np.sort(truth["user_id"].unique())))
        total = 0.0
        for start in range(0, val_rows.shape[0], self.settings.batch_size):
            batch = val_rows[start : start + self.settings.batch_size]
            total += self._loss(batch).item() * batch.shape[0]
        self.refresh_vectors()
        return {"val/loss": total / val_rows.shape[0], **validation_metrics(self, truth, train)}

    def _item_vectors(self) -> np.ndarray:
        return self.net.factors(self.audio).cpu().numpy()
