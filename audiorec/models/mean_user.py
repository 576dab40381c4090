"""What the journal's Bimodal and Hybrid models share: an MLP maps each track to a
vector, a user is the mean of their train tracks' vectors, and tracks are ranked
by inner product (the shared `top_k_unseen`), cold tracks included.

Subclasses build their `net` (`_make_net`), train it, and say which vector each
track gets (`_item_vectors`); this class keeps the users, ranks, saves and loads.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from torch import nn

from audiorec.models.base import Recommender, seen_by_user, user_rows
from audiorec.models.training import from_saved_config, saved_config
from audiorec.retrieval import top_k_unseen

CHECKPOINT = "checkpoint.pt"


def mlp(in_dim: int, width: int) -> nn.Sequential:
    """The journal's tower: Linear -> ReLU -> Linear, `width` wide."""
    return nn.Sequential(nn.Linear(in_dim, width), nn.ReLU(), nn.Linear(width, width))


def mean_rows(vectors: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """For each group of row indices, the mean of those rows of `vectors` (one sparse product)."""
    lengths = np.array([len(group) for group in groups])
    averaging = sparse.csr_matrix(
        (np.repeat(1.0 / lengths, lengths), np.concatenate(groups), np.concatenate([[0], np.cumsum(lengths)])),
        shape=(len(groups), len(vectors)),
    )
    return np.asarray(averaging @ vectors, dtype=np.float32)


class MeanUserRecommender(Recommender):
    ranks_cold_tracks = True
    name: ClassVar[str]  # the params.yaml section, for messages

    net: nn.Module
    # Set by the subclasses' fit (and by load): the epoch kept and its train loss.
    epoch: int
    loss: float

    def config(self) -> dict:
        """What the checkpoint stores to rebuild the model: its settings and seed."""
        return saved_config(self)

    @abstractmethod
    def _make_net(self, item_embeddings: np.ndarray) -> None:
        """Build `self.net` (untrained) and the frozen input tensors it reads."""

    @abstractmethod
    def _item_vectors(self) -> np.ndarray:
        """The current retrieval vector of every track (n_tracks x dim)."""

    def _index_users(self, train: pd.DataFrame) -> None:
        seen = seen_by_user(train)
        self.user_ids, self.seen_items = list(seen), list(seen.values())
        self._user_rows = pd.Index(self.user_ids)

    @torch.no_grad()
    def refresh_vectors(self) -> None:
        """Recompute the item vectors from the net, and the users as the mean of their train tracks'."""
        self.net.eval()
        self.item_vectors = self._item_vectors()
        self.user_vectors = mean_rows(self.item_vectors, self.seen_items)

    def recommend(self, user_ids: Sequence[str], top_k: int, candidates: np.ndarray | None = None) -> pd.DataFrame:
        rows = user_rows(self._user_rows, user_ids, self.name)
        seen = [self.seen_items[row] for row in rows]
        ranked = top_k_unseen(self.user_vectors[rows], self.item_vectors, seen, top_k, candidates=candidates)
        return pd.DataFrame({"user_id": list(user_ids), "track_idx": ranked})

    def save(self, directory: str | Path) -> None:
        """The retrieval vectors (`user_representations.npy` rows follow the sorted train user
        ids) and `checkpoint.pt`: the MLP weights, config, users and their train tracks. The
        frozen inputs (audio vectors, ELSA factors) are left out; `load` takes them back."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "user_representations.npy", self.user_vectors)
        np.save(directory / "item_representations.npy", self.item_vectors)
        torch.save(
            {
                "epoch": self.epoch,
                "loss": self.loss,
                "model_state_dict": self.net.state_dict(),
                "config": self.config(),
                "user_ids": [str(user) for user in self.user_ids],
                "seen_items": torch.from_numpy(np.concatenate(self.seen_items).astype(np.int64)),
                "seen_lengths": torch.tensor([len(seen) for seen in self.seen_items], dtype=torch.int64),
            },
            directory / CHECKPOINT,
        )

    @classmethod
    def load(cls, directory: str | Path, item_embeddings: np.ndarray, **inputs) -> "MeanUserRecommender":
        """A model saved by `save`, on the same `item_embeddings` (and frozen `inputs`, such
        as Bimodal's `collaborative_factors`) it was trained on."""
        checkpoint = torch.load(Path(directory) / CHECKPOINT, map_location="cpu", weights_only=True)
        model = from_saved_config(cls, checkpoint["config"], **inputs)
        model.user_ids = checkpoint["user_ids"]
        model._user_rows = pd.Index(model.user_ids)
        lengths = checkpoint["seen_lengths"].tolist()
        model.seen_items = [part.numpy() for part in torch.split(checkpoint["seen_items"], lengths)]
        model._make_net(item_embeddings)
        model.net.load_state_dict(checkpoint["model_state_dict"])
        model.epoch, model.loss = checkpoint["epoch"], checkpoint["loss"]
        model.refresh_vectors()
        return model
