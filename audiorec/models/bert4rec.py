"""BERT4Rec (Sun et al. 2019) on frozen audio item embeddings, as in Tamm & Aljanaki.

A user is the sequence of their unique train tracks in order of first play,
the last `max_seq_len` of them, right-aligned (padding on the left, so the most
recent track always sits at the last position). Training hides positions behind
a mask token (each with `mlm_probability`; the last one also with
`force_last_item_masking_prob`) and a bidirectional Transformer predicts the
hidden tracks. A track's input is its frozen audio vector, optionally projected
to `hidden_dim`, plus a learned position embedding; padding and mask are two
learned rows. A track's score is the inner product of the output at a position
with the same (projected) audio vectors, so retrieval is the shared
`top_k_unseen` and tracks nobody played can be ranked too.

The loss is cross-entropy on the masked positions only, and they are gathered
*before* the output layer: logits are `[n_masked x n_items]`, never
`[batch x seq x n_items]` (the original code's 128 x 300 x 56k floats, 8.6 GB).
`loss: sampled_softmax` scores each masked position against `n_negatives`
shared negatives instead of the whole catalogue, drawn uniformly or by
popularity, with the logQ correction that keeps the estimate unbiased.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from audiorec.models.base import VAL_K, Recommender, user_rows, validation_metrics
from audiorec.models.training import (
    check_at_least,
    check_choice,
    constructor_config,
    resolve_device,
    seed_deterministic,
    train_epochs,
    training_fingerprint,
)
from audiorec.retrieval import top_k_unseen

if TYPE_CHECKING:
    from dvclive import Live

logger = logging.getLogger(__name__)

LOSSES = ("softmax", "sampled_softmax")
NEGATIVE_SAMPLING = ("uniform", "popularity")
IGNORE = -100  # target of a position that is not masked (F.cross_entropy's ignore_index)
CHECKPOINT = "checkpoint.pt"


class BERT4RecNet(nn.Module):
    """Token ids are track indices, `n_items` for padding and `n_items + 1` for the mask."""

    def __init__(
        self,
        items: torch.Tensor,
        hidden_dim: int,
        max_seq_len: int,
        n_layers: int,
        n_heads: int,
        intermediate_dim: int,
        dropout: float,
        item_freeze: bool,
        normalize_items: bool = False,
    ):
        super().__init__()
        self.normalize_items = normalize_items
        n_items, audio_dim = items.shape
        width = hidden_dim or audio_dim
        self.n_items = n_items
        self.items = nn.Embedding.from_pretrained(items, freeze=item_freeze)
        self.special = nn.Parameter(torch.randn(2, audio_dim) * float(items.std()))
        # No projection when the widths agree: the study feeds the audio vectors as they are.
        self.project = nn.Linear(audio_dim, width) if width != audio_dim else nn.Identity()
        self.positions = nn.Embedding(max_seq_len, width)
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            width, n_heads, intermediate_dim, dropout, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)

    @property
    def padding(self) -> int:
        return self.n_items

    @property
    def mask(self) -> int:
        return self.n_items + 1

    def item_vectors(self, indices: torch.Tensor | None = None) -> torch.Tensor:
        """The output table: the (projected) audio vectors of `indices`, or of every track."""
        vectors = self.project(self.items.weight if indices is None else self.items(indices))
        return F.normalize(vectors, dim=-1) if self.normalize_items else vectors

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """`(batch, seq)` token ids -> `(batch, seq, width)` outputs; padding is never attended to."""
        is_special = tokens >= self.n_items
        audio = self.items(tokens.clamp(max=self.n_items - 1))
        special = self.special[(tokens - self.n_items).clamp(min=0, max=1)]
        inputs = self.project(torch.where(is_special[..., None], special, audio))
        # Batches are padded only to their longest sequence, so positions count back from the
        # end: the most recent track has the same position embedding at any padded length.
        first = self.positions.num_embeddings - tokens.shape[1]
        inputs = inputs + self.positions(torch.arange(first, self.positions.num_embeddings, device=tokens.device))
        return self.encoder(self.dropout(self.norm(inputs)), src_key_padding_mask=tokens == self.padding)


def mask_tokens(
    tokens: torch.Tensor,
    padding: int,
    mask: int,
    mlm_probability: float,
    force_last_item_masking_prob: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked tokens, targets): real positions are masked with `mlm_probability`, the
    last one (the most recent track) also with `force_last_item_masking_prob`, and
    every sequence gets at least one masked position; targets are IGNORE elsewhere."""
    real = tokens != padding
    draws = torch.rand(tokens.shape, generator=generator, device=tokens.device)
    masked = real & (draws < mlm_probability)
    force = torch.rand(len(tokens), generator=generator, device=tokens.device) < force_last_item_masking_prob
    masked[:, -1] |= force & real[:, -1]
    # A sequence with nothing masked would teach nothing: mask its last track.
    masked[:, -1] |= ~masked.any(dim=1) & real[:, -1]
    targets = torch.where(masked, tokens, torch.full_like(tokens, IGNORE))
    return torch.where(masked, torch.full_like(tokens, mask), tokens), targets


def masked_softmax_loss(outputs: torch.Tensor, targets: torch.Tensor, item_vectors: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the whole catalogue at the masked positions only, gathered first."""
    at = targets != IGNORE
    return F.cross_entropy(outputs[at] @ item_vectors.T, targets[at])


def sampled_softmax_loss(
    outputs: torch.Tensor,
    targets: torch.Tensor,
    net: BERT4RecNet,
    negatives: torch.Tensor,
    log_q: torch.Tensor,
) -> torch.Tensor:
    """Cross-entropy of each masked position's track against `negatives` (shared by the
    batch, so their logits are one `[n_masked x n_negatives]` product), each logit minus the
    log of its sampling probability (logQ correction); a negative that is the position's
    own track is left out."""
    at = targets != IGNORE
    hidden, positives = outputs[at], targets[at]
    positive_logits = (hidden * net.item_vectors(positives)).sum(dim=-1) - log_q[positives]
    negative_logits = hidden @ net.item_vectors(negatives).T - log_q[negatives]
    negative_logits = negative_logits.masked_fill(negatives[None, :] == positives[:, None], float("-inf"))
    logits = torch.cat([positive_logits[:, None], negative_logits], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(positives), dtype=torch.int64, device=logits.device))


def length_batches(lengths: np.ndarray, batch_size: int, generator: torch.Generator) -> list[np.ndarray]:
    """Rows grouped into batches of similar length (each padded only to its longest, so
    less padding is computed), in random order. Lengths are jittered by up to a factor
    of 1.25 before sorting so the batches are not the same users every epoch (1.25 pads
    14% more tokens than exact lengths would, 1.5 pads 23% more)."""
    jitter = torch.rand(len(lengths), generator=generator, dtype=torch.float64).numpy()
    order = np.argsort(np.log(np.maximum(lengths, 1)) + np.log(1.25) * jitter, kind="stable")
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).numpy()]


def user_sequences(train: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each user's unique train tracks in order of first play (ties: track index), by sorted user id."""
    ordered = train.sort_values(["user_id", "timestamp", "track_idx"], kind="stable")
    return {user: group.to_numpy() for user, group in ordered.groupby("user_id", sort=True)["track_idx"]}


def right_aligned(sequences: Sequence[np.ndarray], length: int, padding: int) -> torch.Tensor:
    """The last `length` tracks of each sequence, padded on the left to the longest of them."""
    length = max(1, min(length, max(map(len, sequences), default=1)))
    tokens = np.full((len(sequences), length), padding, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        tail = sequence[-length:]
        if len(tail):
            tokens[row, -len(tail) :] = tail
    return torch.from_numpy(tokens)


class BERT4RecRecommender(Recommender):
    ranks_cold_tracks = True

    def __init__(
        self,
        *,
        max_seq_len: int = 200,
        hidden_dim: int = 0,
        n_layers: int = 2,
        n_heads: int = 2,
        intermediate_dim: int = 256,
        dropout: float = 0.1,
        mlm_probability: float = 0.2,
        force_last_item_masking_prob: float = 0.0,
        item_freeze: bool = True,
        normalize_items: bool = False,
        standardize_items: bool = False,
        loss: str = "softmax",
        n_negatives: int = 1000,
        negative_sampling: str = "uniform",
        shuffle_positions: bool = False,
        lr: float = 1e-3,
        batch_size: int = 128,
        max_epochs: int = 200,
        min_epochs: int = 0,
        patience: int = 10,
        scheduler_patience: int = 4,
        device: str = "auto",
        seed: int = 0,
        resume: bool = False,
        checkpoint_dir: str | None = None,
    ):
        check_choice("bert4rec", "loss", loss, LOSSES)
        check_choice("bert4rec", "negative_sampling", negative_sampling, NEGATIVE_SAMPLING)
        for name, value in {"max_seq_len": max_seq_len, "n_layers": n_layers, "n_heads": n_heads,
                            "batch_size": batch_size, "max_epochs": max_epochs, "patience": patience,
                            "n_negatives": n_negatives}.items():
            check_at_least("bert4rec", name, value, 2 if name == "max_seq_len" else 1)
        check_at_least("bert4rec", "hidden_dim", hidden_dim, 0)
        check_at_least("bert4rec", "min_epochs", min_epochs, 0)
        for name, value in {"mlm_probability": mlm_probability, "force_last_item_masking_prob": force_last_item_masking_prob}.items():
            if not 0 <= value <= 1:
                raise ValueError(f"bert4rec.{name}={value!r}; must be between 0 and 1")
        self.max_seq_len, self.hidden_dim, self.n_layers, self.n_heads = max_seq_len, hidden_dim, n_layers, n_heads
        self.intermediate_dim, self.dropout, self.item_freeze = intermediate_dim, dropout, item_freeze
        self.normalize_items, self.standardize_items = normalize_items, standardize_items
        self.mlm_probability, self.force_last_item_masking_prob = mlm_probability, force_last_item_masking_prob
        self.loss, self.n_negatives, self.negative_sampling = loss, n_negatives, negative_sampling
        self.shuffle_positions, self.lr, self.batch_size = shuffle_positions, lr, batch_size
        self.max_epochs, self.min_epochs = max_epochs, min_epochs
        self.patience, self.scheduler_patience = patience, scheduler_patience
        self.device, self.seed = device, seed
        self.resume, self.checkpoint_dir = resume, checkpoint_dir
        self.torch_device = resolve_device("bert4rec", device)

    def config(self) -> dict:
        """The constructor's keyword arguments, as stored in the checkpoint."""
        return constructor_config(self)

    def fit(
        self,
        item_embeddings: np.ndarray,
        train: pd.DataFrame,
        val: pd.DataFrame | None = None,
        live: Live | None = None,
    ) -> "BERT4RecRecommender":
        """Train on the users' first-play sequences; with `val`, schedule the learning rate
        and stop early on val NDCG@50, keeping the best epoch. With `live`, per-epoch metrics."""
        width = self.hidden_dim or item_embeddings.shape[1]
        if width % self.n_heads:
            raise ValueError(
                f"bert4rec.n_heads={self.n_heads} must divide the model width {width} "
                f"({'hidden_dim' if self.hidden_dim else 'the embedding dim'}); change n_heads or set hidden_dim"
            )
        sequences = user_sequences(train)
        self.user_ids, self.sequences = list(sequences), list(sequences.values())
        self._user_rows = pd.Index(self.user_ids)
        seed_deterministic(self.seed)
        items = torch.tensor(np.asarray(item_embeddings, dtype=np.float32))
        if self.standardize_items:  # audio features come at arbitrary scales (MFCC's first coefficient dwarfs the rest)
            items = (items - items.mean(dim=0)) / items.std(dim=0).clamp(min=1e-6)
        self.net = BERT4RecNet(
            items, self.hidden_dim, self.max_seq_len, self.n_layers, self.n_heads,
            self.intermediate_dim, self.dropout, self.item_freeze, self.normalize_items,
        ).to(self.torch_device)
        self.generator = torch.Generator(device="cpu").manual_seed(self.seed)
        self.log_q = self._sampling_log_probabilities(train, len(items))
        trainable = [parameter for parameter in self.net.parameters() if parameter.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, lr=self.lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode="max", patience=self.scheduler_patience)
        self.epoch, self.loss_value = train_epochs(
            "bert4rec", self.net, self.optimizer, scheduler, self.generator, self.patience, self.max_epochs,
            train_epoch=self._train_epoch,
            validate=(lambda: validation_metrics(self, val, train, VAL_K)) if val is not None else None,
            schedule_on=f"val/ndcg@{VAL_K}",
            resume_dir=self.checkpoint_dir if self.resume else None,
            fingerprint=training_fingerprint(__file__, self.config(), item_embeddings, train, val),
            live=live,
            min_epochs=self.min_epochs,
        )
        return self

    def recommend(self, user_ids: Sequence[str], top_k: int, candidates: np.ndarray | None = None) -> pd.DataFrame:
        """Scores at a mask token placed after the user's last `max_seq_len - 1` tracks."""
        rows = user_rows(self._user_rows, user_ids, "BERT4Rec")
        users = self._user_vectors(rows)
        items = self.net.item_vectors().detach().cpu().numpy()
        ranked = top_k_unseen(users, items, [self.sequences[row] for row in rows], top_k, candidates=candidates)
        return pd.DataFrame({"user_id": list(user_ids), "track_idx": ranked})

    def save(self, directory: str | Path) -> None:
        """The retrieval vectors and `checkpoint.pt` (weights without a frozen item table, config, user ids)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "user_representations.npy", self._user_vectors(np.arange(len(self.user_ids))))
        np.save(directory / "item_representations.npy", self.net.item_vectors().detach().cpu().numpy())
        state = self.net.state_dict()
        if self.item_freeze:
            del state["items.weight"]
        torch.save(
            {"epoch": self.epoch, "loss": self.loss_value, "model_state_dict": state, "config": self.config(),
             "user_ids": [str(user) for user in self.user_ids]},
            directory / CHECKPOINT,
        )

    @torch.no_grad()
    def _user_vectors(self, rows: np.ndarray, batch_size: int = 64) -> np.ndarray:
        self.net.eval()
        vectors = np.empty((len(rows), self.net.positions.embedding_dim), np.float32)
        # Users in order of length, in small batches, so each batch is padded only to a similar
        # length: batches of 512 padded most users to 200 tracks and took 5x as long.
        by_length = np.argsort([len(self.sequences[row]) for row in rows], kind="stable")
        for start in range(0, len(rows), batch_size):
            at = by_length[start : start + batch_size]
            history = [self.sequences[row] for row in rows[at]]
            tokens = right_aligned([np.append(h[-(self.max_seq_len - 1) :], self.net.mask) for h in history], self.max_seq_len, self.net.padding)
            vectors[at] = self.net(tokens.to(self.torch_device))[:, -1].cpu().numpy()
        return vectors

    def _train_epoch(self) -> float:
        self.net.train()
        lengths = np.minimum([len(sequence) for sequence in self.sequences], self.max_seq_len)
        total, batches = 0.0, 0
        for rows in length_batches(lengths, self.batch_size, self.generator):
            batch = [self.sequences[row] for row in rows]
            if self.shuffle_positions:  # the control: same tracks, order destroyed
                batch = [sequence[torch.randperm(len(sequence), generator=self.generator).numpy()] for sequence in batch]
            tokens, targets = mask_tokens(
                right_aligned(batch, self.max_seq_len, self.net.padding), self.net.padding, self.net.mask,
                self.mlm_probability, self.force_last_item_masking_prob, self.generator,
            )
            outputs = self.net(tokens.to(self.torch_device))
            loss = self._loss(outputs, targets.to(self.torch_device))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total, batches = total + loss.item(), batches + 1
        return total / max(batches, 1)

    def _loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.loss == "softmax":
            return masked_softmax_loss(outputs, targets, self.net.item_vectors())
        negatives = torch.multinomial(self.log_q.exp().cpu(), self.n_negatives, replacement=True, generator=self.generator)
        return sampled_softmax_loss(outputs, targets, self.net, negatives.to(self.torch_device), self.log_q)

    def _sampling_log_probabilities(self, train: pd.DataFrame, n_items: int) -> torch.Tensor:
        """log q(track) of the negative sampler: uniform, or by train listeners (each track at least one)."""
        if self.negative_sampling == "uniform":
            weights = np.ones(n_items)
        else:
            weights = np.bincount(train["track_idx"].to_numpy(), minlength=n_items) + 1.0
        return torch.tensor(np.log(weights / weights.sum()), dtype=torch.float32, device=self.torch_device)
