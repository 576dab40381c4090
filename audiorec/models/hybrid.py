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
    check_at_least,
    check_choice,
    resolve_device,
    seed_deterministic,
    train_epochs,
    training_fingerprint,
)

if TYPE_CHECKING:
    from dvclive import Live
    from scipy import sparse

logger = logging.getLogger(__name__)

# val_ndcg: early stopping on val NDCG@50; val_loss: the journal's, on the loss of the val rows.
STOP_ON = {"val_ndcg": "val/ndcg@50", "val_loss": "val/loss"}
# The columns of the reconstructed rows: the tracks played in train, or every track of the
# catalogue (the journal's code), cold tracks included as columns nobody ever plays.
CATALOGUES = ("train", "all")


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

    def __init__(
        self,
        *,
        hidden_dim: int = 768,
        catalogue: str = "train",
        lr: float = 0.01,
        batch_size: int = 128,
        max_epochs: int = 200,
        stop_on: str = "val_ndcg",
        patience: int = 16,
        scheduler_patience: int = 5,
        device: str = "auto",
        seed: int = 0,
        resume: bool = False,
        checkpoint_dir: str | None = None,
    ):
        check_choice("hybrid", "stop_on", stop_on, tuple(STOP_ON))
        check_choice("hybrid", "catalogue", catalogue, CATALOGUES)
        positive = {"hidden_dim": hidden_dim, "batch_size": batch_size, "max_epochs": max_epochs, "patience": patience}
        for key, value in positive.items():
            check_at_least("hybrid", key, value, 1)
        self.hidden_dim, self.catalogue = hidden_dim, catalogue
        self.lr, self.batch_size, self.max_epochs = lr, batch_size, max_epochs
        self.stop_on, self.patience, self.scheduler_patience = stop_on, patience, scheduler_patience
        self.device, self.seed, self.resume, self.checkpoint_dir = device, seed, resume, checkpoint_dir
        self.torch_device = resolve_device("hybrid", device)

    def config(self) -> dict:
        return {
            "hidden_dim": self.hidden_dim, "catalogue": self.catalogue, "lr": self.lr, "batch_size": self.batch_size, "max_epochs": self.max_epochs,
            "stop_on": self.stop_on, "patience": self.patience, "scheduler_patience": self.scheduler_patience,
            "device": self.device, "seed": self.seed, "resume": self.resume, "checkpoint_dir": self.checkpoint_dir,
        }

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
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=self.scheduler_patience)
        self.columns = np.arange(len(item_embeddings)) if self.catalogue == "all" else np.unique(train["track_idx"])
        rows = self._rows(train, self._user_rows)
        truth = None if val is None else val[val["user_id"].isin(self._user_rows)]
        self.epoch, self.loss = train_epochs(
            "hybrid", self.net, optimizer, scheduler, self.generator, self.patience, self.max_epochs,
            train_epoch=lambda: self._train_epoch(rows, optimizer),
            validate=(lambda: self._validate(truth, train)) if truth is not None else None,
            schedule_on="val/loss",
            resume_dir=self.checkpoint_dir if self.resume else None,
            fingerprint=training_fingerprint(__file__, self.config(), item_embeddings, train, val),
            live=live,
            stop_on=STOP_ON[self.stop_on],
        )
        self.refresh_vectors()
        return self

    def _make_net(self, item_embeddings: np.ndarray) -> None:
        self.audio = torch.tensor(np.asarray(item_embeddings, dtype=np.float32), device=self.torch_device)
        self.net = HybridNet(self.audio.shape[1], self.hidden_dim).to(self.torch_device)

    def _rows(self, interactions: pd.DataFrame, users: pd.Index) -> sparse.csr_matrix:
        """The users' binary rows over `self.columns` (tracks outside them are dropped)."""
        inside = interactions[interactions["track_idx"].isin(self.columns)]
        return binary_matrix(inside.assign(track_idx=np.searchsorted(self.columns, inside["track_idx"])), users, len(self.columns))

    def _loss(self, rows: sparse.csr_matrix) -> torch.Tensor:
        batch = torch.tensor(rows.toarray(), dtype=torch.float32, device=self.torch_device)
        return normalised_mse(self.net(batch, self.audio[self.columns]), batch)

    def _train_epoch(self, rows: sparse.csr_matrix, optimizer: torch.optim.Optimizer) -> float:
        self.net.train()
        order = torch.randperm(rows.shape[0], generator=self.generator).numpy()
        total = 0.0
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
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
        for start in range(0, val_rows.shape[0], self.batch_size):
            batch = val_rows[start : start + self.batch_size]
            total += self._loss(batch).item() * batch.shape[0]
        self.refresh_vectors()
        return {"val/loss": total / val_rows.shape[0], **validation_metrics(self, truth, train)}

    def _item_vectors(self) -> np.ndarray:
        return self.net.factors(self.audio).cpu().numpy()
