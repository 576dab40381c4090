"""The journal's Bimodal model: a track's audio and collaborative views aligned by contrastive learning.

Two MLPs (`mean_user.mlp`) map a track's frozen audio vector (the content view)
and its frozen ELSA item factor (the collaborative view; train@none-elsa-<seed>'s
`item_factors.npy`) into one space, L2-normalised. Training pulls a track's two
views together and pushes them from the other tracks of the batch with the
decoupled contrastive loss (Yeh et al., ECCV 2022), in both directions, over
batches of the tracks played in train.

Recommendation, as in the journal: a user is the mean of their train tracks'
vectors, scored by inner product against the `content`, `collaborative` or
`average` (mean of the two) item vectors (`retrieval`). A track nobody played
in train, a cold track in particular, has no collaborative view (ELSA never saw
it played), so in every mode it is represented by its content vector
(`cold_collaborative: none`); that is what lets the model rank cold tracks, and
the user side still carries the chosen mode. `cold_collaborative: elsa_row`
restores the journal's code, which fed ELSA's row for such a track (trained
only to predict that nobody plays it) through the collaborative MLP too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from audiorec.models.base import validation_metrics
from audiorec.models.mean_user import MeanUserRecommender, mlp
from audiorec.models.training import (
    resolve_device,
    seed_deterministic,
    train_epochs,
    training_fingerprint,
)
from audiorec.settings.bimodal import BimodalSettings

if TYPE_CHECKING:
    from dvclive import Live

logger = logging.getLogger(__name__)

# val_ndcg: early stopping on val NDCG@50; train_loss: the journal's, on the train loss.
STOP_ON = {"val_ndcg": "val/ndcg@50", "train_loss": "train/loss"}


def decoupled_contrastive_loss(anchors: torch.Tensor, positives: torch.Tensor, temperature: float) -> torch.Tensor:
    """One-way DCL (Yeh et al. 2022): for each row i of `anchors`, `-a_i.p_i / t` plus the
    log-sum-exp of its similarities to every other row of both views (`a_i.a_j`, `a_i.p_j`,
    j != i); unlike InfoNCE the positive pair is left out of the denominator."""
    cross = anchors @ positives.T / temperature
    within = anchors @ anchors.T / temperature
    self_pairs = torch.eye(len(anchors), dtype=torch.bool, device=anchors.device)
    negatives = torch.cat(
        [within.masked_fill(self_pairs, -torch.inf), cross.masked_fill(self_pairs, -torch.inf)], dim=1
    )
    return (torch.logsumexp(negatives, dim=1) - cross.diagonal()).mean()


class BimodalNet(nn.Module):
    def __init__(self, content_dim: int, collaborative_dim: int, hidden_dim: int):
        super().__init__()
        self.content = mlp(content_dim, hidden_dim)
        self.collaborative = mlp(collaborative_dim, hidden_dim)

    def forward(self, audio: torch.Tensor, factors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two views of the same tracks, L2-normalised (what the loss compares)."""
        return F.normalize(self.content(audio), dim=-1), F.normalize(self.collaborative(factors), dim=-1)


class BimodalRecommender(MeanUserRecommender):
    name = "bimodal"
    net: BimodalNet

    def __init__(
        self,
        settings: BimodalSettings,
        *,
        collaborative_factors: np.ndarray | None = None,
        seed: int = 0,
        checkpoint_dir: str | None = None,
    ):
        self.settings, self.seed, self.checkpoint_dir = settings, seed, checkpoint_dir
        self.collaborative_factors = collaborative_factors
        self.torch_device = resolve_device(settings.device)

    def fit(
        self,
        item_embeddings: np.ndarray,
        train: pd.DataFrame,
        val: pd.DataFrame | None = None,
        live: Live | None = None,
        cold_items: np.ndarray | None = None,
    ) -> "BimodalRecommender":
        """Align the two views of the tracks played in `train`; with `val`, stop early on val
        NDCG@50 (`stop_on: val_ndcg`) and keep the best epoch."""
        self._index_users(train)
        seed_deterministic(self.seed)
        self._make_net(item_embeddings)
        assert self.collaborative_factors is not None  # _make_net refuses a model without them
        self.generator = torch.Generator(device=self.torch_device).manual_seed(self.seed)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.settings.lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=self.settings.scheduler_patience)
        tracks = torch.as_tensor(np.unique(train["track_idx"].to_numpy()), device=self.torch_device)
        truth = None if val is None else val[val["user_id"].isin(self._user_rows)]
        self.epoch, self.loss = train_epochs(
            "bimodal",
            self.net,
            optimizer,
            scheduler,
            self.generator,
            self.settings.patience,
            self.settings.max_epochs,
            train_epoch=lambda: self._train_epoch(tracks, optimizer),
            validate=(lambda: self._validate(truth, train)) if truth is not None else None,
            schedule_on="train/loss",  # the journal's plateau scheduler, whatever stops training
            resume_dir=self.checkpoint_dir if self.settings.resume else None,
            fingerprint=training_fingerprint(
                (__file__,), self.config(), np.hstack([item_embeddings, self.collaborative_factors]), train, val
            ),
            live=live,
            stop_on=STOP_ON[self.settings.stop_on],
        )
        self.refresh_vectors()
        return self

    def _make_net(self, item_embeddings: np.ndarray) -> None:
        if self.collaborative_factors is None:
            raise ValueError(
                "bimodal needs ELSA's item factors (collaborative_factors): run train@none-elsa-<seed> first"
            )
        if len(self.collaborative_factors) != len(item_embeddings):
            raise ValueError(
                f"ELSA's item factors have {len(self.collaborative_factors)} rows but the audio embeddings "
                f"{len(item_embeddings)}: both must follow tracks.parquet; re-run train@none-elsa-<seed>"
            )
        self.audio = torch.tensor(np.asarray(item_embeddings, dtype=np.float32), device=self.torch_device)
        self.factors = torch.tensor(np.asarray(self.collaborative_factors, dtype=np.float32), device=self.torch_device)
        self.net = BimodalNet(self.audio.shape[1], self.factors.shape[1], self.settings.hidden_dim).to(
            self.torch_device
        )

    def _train_epoch(self, tracks: torch.Tensor, optimizer: torch.optim.Optimizer) -> float:
        self.net.train()
        order = tracks[torch.randperm(len(tracks), generator=self.generator, device=self.torch_device)]
        batches = list(torch.split(order, self.settings.batch_size))  # the journal's DataLoader: the remainder last
        if len(batches) > 1 and len(batches[-1]) == 1:  # a lone track has no negatives: it joins the batch before
            batches[-2:] = [torch.cat(batches[-2:])]
        total = 0.0
        for batch in batches:
            content, collaborative = self.net(self.audio[batch], self.factors[batch])
            loss = decoupled_contrastive_loss(content, collaborative, self.settings.temperature)
            loss = loss + decoupled_contrastive_loss(collaborative, content, self.settings.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        return total / len(order)

    def _validate(self, truth: pd.DataFrame, train: pd.DataFrame) -> dict[str, float]:
        self.refresh_vectors()
        return validation_metrics(self, truth, train)

    def _item_vectors(self) -> np.ndarray:
        content = self.net.content(self.audio)
        collaborative = self.net.collaborative(self.factors)
        if self.settings.normalize_outputs:
            content, collaborative = F.normalize(content, dim=-1), F.normalize(collaborative, dim=-1)
        if self.settings.retrieval == "content":
            return content.cpu().numpy()
        joint = collaborative if self.settings.retrieval == "collaborative" else (content + collaborative) / 2
        if self.settings.cold_collaborative == "none":
            has_view = torch.zeros(len(content), dtype=torch.bool, device=content.device)
            has_view[torch.as_tensor(np.concatenate(self.seen_items), device=content.device)] = True
            joint = torch.where(has_view[:, None], joint, content)
        return joint.cpu().numpy()
