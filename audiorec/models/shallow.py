"""The Shallow Net of Tamm & Aljanaki (RecSys 2024): one shared layer on frozen audio embeddings.

A track is its audio embedding through `Linear + ReLU`; a user is a learnable
vector (by default the mean audio embedding of their train tracks) through the
same layer. The score is the cosine of the two representations or, for the
`interaction` variant, a sigmoid of a linear read-out of their element-wise
product. Training minimises a hinge loss between each positive (user, track)
pair and sampled negatives: negative users for the pair's track
(`sample_type: item`) or negative tracks for the pair's user (`sample_type: user`).
The hand-written kernels it trains with (`GatheredDot`, `NormalizedReLU`,
`sum_rows_by_group`) live in `audiorec.models.kernels`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from audiorec.models.base import VAL_K, Recommender, seen_by_user, user_rows, validation_metrics
from audiorec.models import kernels
from audiorec.models.kernels import GatheredDot, NormalizedReLU, sum_rows_by_group
from audiorec.models.training import (
    monitored_metric,
    resolve_device,
    from_saved_config,
    saved_config,
    scheduler_mode,
    seed_deterministic,
    train_epochs,
    training_fingerprint,
)
from audiorec.retrieval import top_k_unseen
from audiorec.settings.shallow import ShallowSettings

if TYPE_CHECKING:
    from dvclive import Live

logger = logging.getLogger(__name__)

# Parameters that fix which tensors exist and which are trained: a checkpoint only loads with the same values.
ARCHITECTURE_PARAMS = ("hidden_dim", "variant", "item_freeze", "user_freeze")
# A negative that is really a positive is redrawn; the cap only binds for a user
# (or track) that is positive with nearly every track (or user).
RESAMPLE_ROUNDS = 50
CHECKPOINT = "checkpoint.pt"
# Candidates per table row above which the layer runs over the whole table, not the distinct rows:
# at 3 draws per row, 95% of the rows are drawn.
WHOLE_TABLE_DRAWS = 3
# Distinct candidate rows per candidate up to which one (batch x distinct) product scores the
# batch faster than scoring each candidate on its own, forward and backward: between 2 and 4
# at every width from 104 to 4,800 (benchmarks/shallow_scoring.py). The product does
# distinct / candidates times the FLOPs, at a few times the rate.
ALL_PAIRS_ROWS_PER_CANDIDATE = 3
ITEM_TABLE = "items.weight"


def hinge_loss(
    positive: torch.Tensor, negative: torch.Tensor, margin: float, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over all (positive, negative) pairs of `max(0, margin - positive + negative)`.

    `positive` is (batch,), `negative` (batch, n_negatives); `weights` (batch,)
    scales every term of its positive pair.
    """
    terms = F.relu(margin - positive[:, None] + negative)
    if weights is not None:
        terms = terms * weights[:, None]
    return terms.mean()


def confidence(counts: torch.Tensor) -> torch.Tensor:
    """The weight `1 + 2 log(1 + play count)` of a positive pair."""
    return 1 + 2 * torch.log1p(counts)


class PositivePairs:
    """Which `user * n_items + item` codes are positive pairs.

    A bitmap with one bit per cell answers by indexing while the user x track grid
    fits DENSE_LIMIT cells (512 MiB of bits; Music4All's 17,053 x 56,512 grid takes
    120 MiB), about 20x cheaper per negative than binary search in the sorted codes,
    which a larger grid uses instead.
    """

    DENSE_LIMIT = 2**32

    def __init__(self, codes: torch.Tensor, n_cells: int):
        self.codes = torch.unique(codes)
        self.bitmap = None
        if n_cells <= self.DENSE_LIMIT:
            self.bitmap = torch.zeros(n_cells // 8 + 1, dtype=torch.uint8, device=codes.device)
            # The codes are distinct, so adding each one's bit into its byte sets it.
            self.bitmap.index_add_(0, self.codes >> 3, (1 << (self.codes & 7)).to(torch.uint8))

    def contains(self, codes: torch.Tensor) -> torch.Tensor:
        if self.bitmap is not None:
            # index_select: half the time of [] for this random gather from a large table.
            flat = codes.reshape(-1)
            return ((self.bitmap.index_select(0, flat >> 3) >> (flat & 7)) & 1 == 1).view(codes.shape)
        if len(self.codes) == 0:
            return torch.zeros_like(codes, dtype=torch.bool)
        found = torch.searchsorted(self.codes, codes).clamp_(max=len(self.codes) - 1)
        return self.codes[found] == codes

    def contains_array(self, codes: np.ndarray) -> np.ndarray:
        """`contains` for a numpy array of codes, on a table held on the CPU."""
        if self.bitmap is not None:
            return (self.bitmap.numpy()[codes >> 3] >> (codes & 7)) & 1 == 1
        return self.contains(torch.from_numpy(codes)).numpy()


def sample_negatives(
    users: torch.Tensor,
    items: torch.Tensor,
    n_users: int,
    n_items: int,
    neg_samples: int,
    sample_type: str,
    generator: torch.Generator,
    positives: PositivePairs | None = None,
) -> torch.Tensor:
    """(batch, neg_samples) negatives for the positive pairs (`users[b]`, `items[b]`).

    `sample_type="item"` draws user indices (each scored against the pair's
    track), `"user"` draws track indices (scored against the pair's user).
    With `positives`, draws that form a positive pair are redrawn until none is
    left or RESAMPLE_ROUNDS is reached.
    """
    size = n_users if sample_type == "item" else n_items
    negatives = torch.randint(size, (len(users), neg_samples), generator=generator, device=users.device)
    if positives is None:
        return negatives

    # A code is drawn * n_items + item (negative users) or user * n_items + drawn (negative tracks).
    anchor_codes, scale = (items, n_items) if sample_type == "item" else (users * n_items, 1)
    # The first check covers the whole (batch, neg_samples) grid at once; the redraws only the few
    # positives, which at Music4All's skew are the negatives of its most played tracks.
    positive = positives.contains(torch.add(anchor_codes[:, None], negatives, alpha=scale))
    pending = torch.nonzero(positive.view(-1)).squeeze(1)
    pending_anchors = anchor_codes[pending // neg_samples]

    def draw(n: int) -> torch.Tensor:
        return torch.randint(size, (n,), generator=generator, device=negatives.device)

    def draw_array(n: int) -> np.ndarray:
        return draw(n).numpy()

    if negatives.device.type == "cpu":
        # The rounds in numpy views of the same memory: a round is a dozen operations on a few
        # thousand draws or fewer, where torch's fixed cost per call dominated (17-20 ms of a
        # Music4All batch, 12 in numpy). The draws come from `generator` either way.
        left = redraw_positives(
            negatives.view(-1).numpy(),
            pending.numpy(),
            pending_anchors.numpy(),
            positives.contains_array,
            draw_array,
            scale,
        )
    else:
        left = redraw_positives(negatives.view(-1), pending, pending_anchors, positives.contains, draw, scale)
    if left:
        logger.debug("%d negatives may still be positives after %d redraws", left, RESAMPLE_ROUNDS)
    return negatives


# The redraw rounds run on torch tensors, or on numpy views of the same memory on the CPU.
Codes = TypeVar("Codes", torch.Tensor, np.ndarray)


def redraw_positives(
    flat: Codes,
    pending: Codes,
    pending_anchors: Codes,
    contains: Callable[[Codes], Codes],
    draw: Callable[[int], Codes],
    scale: int,
) -> int:
    """Redraw the entries `pending` of `flat` (negatives whose anchors' codes are `pending_anchors`)
    while they form a positive pair, for at most RESAMPLE_ROUNDS rounds; how many still may."""
    for _ in range(RESAMPLE_ROUNDS):
        if len(pending) == 0:
            return 0
        drawn = draw(len(pending))
        flat[pending] = drawn
        positive = contains(pending_anchors + drawn * scale)
        pending, pending_anchors = pending[positive], pending_anchors[positive]
    return len(pending)


class ShallowNet(nn.Module):
    def __init__(
        self,
        items: torch.Tensor,
        users: torch.Tensor,
        hidden_dim: int,
        variant: str,
        item_freeze: bool,
        user_freeze: bool,
    ):
        super().__init__()
        d_in = items.shape[1]
        d_out = hidden_dim or d_in
        # The flags mean what they say (paper semantics); the original code had item/user freezing inverted.
        self.items = nn.Embedding.from_pretrained(items, freeze=item_freeze)
        self.users = nn.Embedding.from_pretrained(users, freeze=user_freeze)
        self.tower = nn.Linear(d_in, d_out)
        self.readout = nn.Linear(d_out, 1) if variant == "interaction" else None

    def represent_users(self, indices: torch.Tensor) -> torch.Tensor:
        return self._represent(self.users, indices)

    def represent_items(self, indices: torch.Tensor) -> torch.Tensor:
        return self._represent(self.items, indices)

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of broadcast user and item representations (last dim is the feature)."""
        if self.readout is None:
            return (users * items).sum(-1)  # unit vectors: the cosine
        return torch.sigmoid(self.readout(users * items)).squeeze(-1)

    def candidate_scores(self, anchors: torch.Tensor, table: nn.Embedding, candidates: torch.Tensor) -> torch.Tensor:
        """(batch, n_candidates) scores of each anchor representation against its candidate rows of `table`."""
        if candidates.numel() >= WHOLE_TABLE_DRAWS * table.num_embeddings:
            # Nearly every row is drawn (Music4All: 210,000 negatives among 17,053 users): the
            # layer over the whole table costs what it would over the distinct rows, without their sort.
            representations, rows = self._tower(table.weight), candidates
        else:
            # Negatives repeat rows many times over: run the layer once per distinct row.
            unique, rows = torch.unique(candidates, return_inverse=True)
            representations = self._tower(table(unique))
        if len(representations) <= ALL_PAIRS_ROWS_PER_CANDIDATE * candidates.shape[1]:
            return self._all_pairs(anchors, representations).gather(1, rows)
        if self.readout is None:
            return GatheredDot.apply(anchors, representations, rows)
        # readout(a * r) = (a * w) . r + b
        return torch.sigmoid(
            GatheredDot.apply(anchors * self.readout.weight[0], representations, rows) + self.readout.bias
        )

    def _all_pairs(self, anchors: torch.Tensor, representations: torch.Tensor) -> torch.Tensor:
        if self.readout is None:
            return anchors @ representations.T
        # readout(a * r) = (a * w) . r + b
        return torch.sigmoid((anchors * self.readout.weight[0]) @ representations.T + self.readout.bias)

    def _represent(self, table: nn.Embedding, indices: torch.Tensor) -> torch.Tensor:
        unique, inverse = torch.unique(indices, return_inverse=True)
        # embedding's backward is a sort-based scatter, far faster on CPU than indexing's accumulate.
        return F.embedding(inverse, self._tower(table(unique)))

    def _tower(self, rows: torch.Tensor) -> torch.Tensor:
        if self.readout is None:
            return NormalizedReLU.apply(self.tower(rows))
        return F.relu(self.tower(rows))


@dataclass
class _Pairs:
    """Positive (user row, track) pairs on the training device, with their confidence weights."""

    users: torch.Tensor
    items: torch.Tensor
    weights: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.users)


class ShallowRecommender(Recommender):
    ranks_cold_tracks = True

    def __init__(self, settings: ShallowSettings, *, seed: int = 0, checkpoint_dir: str | None = None):
        self.settings, self.seed, self.checkpoint_dir = settings, seed, checkpoint_dir
        self.torch_device = resolve_device(settings.device)

    def config(self) -> dict:
        """What the checkpoint stores to rebuild the model: its settings and seed."""
        return saved_config(self)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return self.net.items.num_embeddings

    def fit(
        self,
        item_embeddings: np.ndarray,
        train: pd.DataFrame,
        val: pd.DataFrame | None = None,
        live: Live | None = None,
        cold_items: np.ndarray | None = None,
    ) -> "ShallowRecommender":
        """Train on `train`; with `val` (`user_id, track_idx` truth), schedule the learning
        rate on `schedule_on` and stop early on `stop_on` (val loss or val NDCG@50), keeping
        the best epoch. `cold_items` are not used: a cold track is its audio vector.
        With `live`, every epoch's metrics go to `live.log_metric`, then `live.next_step()`.
        With `resume` and a `checkpoint_dir`, the state after every epoch is kept
        there, and a run that was killed continues from its last finished epoch,
        to the same result as an uninterrupted run."""
        self._build(item_embeddings, train)
        pairs = self._pairs(train)
        train_codes = self._codes(pairs) if self.settings.exclude_positives else None
        validation = self._validation_data(val, pairs) if val is not None else None
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode=scheduler_mode(self.settings.schedule_on), patience=self.settings.scheduler_patience
        )
        self.epoch, self.loss = train_epochs(
            "shallow",
            self.net,
            self.optimizer,
            scheduler,
            self.generator,
            self.settings.patience,
            self.settings.max_epochs,
            train_epoch=lambda: self._train_epoch(pairs, train_codes),
            validate=(lambda: self._validate(*validation, train)) if validation is not None else None,
            schedule_on=monitored_metric(self.settings.schedule_on),
            stop_on=monitored_metric(self.settings.stop_on),
            resume_dir=self.checkpoint_dir if self.settings.resume else None,
            fingerprint=training_fingerprint((__file__, kernels.__file__), self.config(), item_embeddings, train, val),
            live=live,
        )
        return self

    def recommend(self, user_ids: Sequence[str], top_k: int, candidates: np.ndarray | None = None) -> pd.DataFrame:
        rows = self._rows(user_ids)
        users, items = self._retrieval_vectors(rows)
        ranked = top_k_unseen(users, items, [self.seen_items[row] for row in rows], top_k, candidates=candidates)
        return pd.DataFrame({"user_id": list(user_ids), "track_idx": ranked})

    def save(self, directory: str | Path) -> None:
        """Retrieval vectors (`user_representations.npy` rows follow the checkpoint's
        `user_ids`) and `checkpoint.pt`. A frozen item table is the caller's audio
        embeddings, so it is left out and `load` takes it back from them."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        users, items = self._retrieval_vectors(np.arange(self.n_users))
        np.save(directory / "user_representations.npy", users)
        np.save(directory / "item_representations.npy", items)
        state = self.net.state_dict()
        if self.settings.item_freeze:
            del state[ITEM_TABLE]
        torch.save(
            {
                "epoch": self.epoch,
                "model_state_dict": state,
                "optimizer_state_dict": self.optimizer.state_dict(),
                "loss": self.loss,
                "config": self.config(),
                "item_shape": list(self.net.items.weight.shape),
                "user_ids": [str(user) for user in self.user_ids],
                "seen_items": torch.from_numpy(np.concatenate(self.seen_items).astype(np.int64)),
                "seen_lengths": torch.tensor([len(seen) for seen in self.seen_items], dtype=torch.int64),
            },
            directory / CHECKPOINT,
        )

    @classmethod
    def load(cls, directory: str | Path, item_embeddings: np.ndarray, **params) -> "ShallowRecommender":
        """A model saved by `save`; `params` (keys of params.yaml's `shallow`) override the
        stored settings but must agree with them on ARCHITECTURE_PARAMS."""
        checkpoint = torch.load(Path(directory) / CHECKPOINT, map_location="cpu", weights_only=True)
        config = checkpoint["config"]
        for name in ARCHITECTURE_PARAMS:
            if name in params and params[name] != config[name]:
                raise ValueError(
                    f"shallow.{name}={params[name]!r} but the checkpoint in {directory} "
                    f"was trained with {name}={config[name]!r}"
                )
        if list(item_embeddings.shape) != checkpoint["item_shape"]:
            raise ValueError(
                f"item embeddings have shape {tuple(item_embeddings.shape)}, the checkpoint in {directory} "
                f"was trained on {tuple(checkpoint['item_shape'])}"
            )
        model = from_saved_config(cls, {**config, **params})
        model._restore(checkpoint, item_embeddings)
        return model

    def _build(self, item_embeddings: np.ndarray, train: pd.DataFrame) -> None:
        seen = seen_by_user(train)
        self.user_ids, self.seen_items = list(seen), list(seen.values())
        self._user_rows = pd.Index(self.user_ids)
        # A copy: from_pretrained shares storage, and a trained item table must not write into the caller's array.
        items = torch.tensor(np.asarray(item_embeddings, dtype=np.float32))
        seed_deterministic(self.seed)
        self._make_net(items, self._initial_users(items, train))
        self.generator = torch.Generator(device=self.torch_device).manual_seed(self.seed)
        self.epoch, self.loss = 0, float("nan")

    def _make_net(self, items: torch.Tensor, users: torch.Tensor) -> None:
        self.net = ShallowNet(
            items,
            users,
            self.settings.hidden_dim,
            self.settings.variant,
            self.settings.item_freeze,
            self.settings.user_freeze,
        )
        self.net.to(self.torch_device)
        self.trainable = [parameter for parameter in self.net.parameters() if parameter.requires_grad]
        # Fused: one kernel per step instead of a dozen passes over the user table
        # (about 7x faster at Music4All's size).
        self.optimizer = torch.optim.Adam(self.trainable, lr=self.settings.lr, fused=True)
        # The original's L2 term, l2 * (sum of every parameter squared), is part of the loss; the
        # frozen tables' share is a constant, computed once.
        with torch.no_grad():
            self.frozen_l2 = sum(float(p.pow(2).sum()) for p in self.net.parameters() if not p.requires_grad)

    def _initial_users(self, items: torch.Tensor, train: pd.DataFrame) -> torch.Tensor:
        if not self.settings.user_init:
            return torch.randn(self.n_users, items.shape[1])
        rows = torch.tensor(self._user_rows.get_indexer(train["user_id"]), dtype=torch.int64)
        tracks = torch.tensor(train["track_idx"].to_numpy(), dtype=torch.int64)
        # One bag of tracks per user, averaged in place: indexing `items[tracks]` first built a
        # pairs x dim copy (16 GiB for Music4All's 5.3M pairs at 768-d, 100 GiB at 4,800-d).
        return sum_rows_by_group(rows, self.n_users, items, tracks, mode="mean")

    def _restore(self, checkpoint: dict, item_embeddings: np.ndarray) -> None:
        self.user_ids = checkpoint["user_ids"]
        self._user_rows = pd.Index(self.user_ids)
        lengths = checkpoint["seen_lengths"].tolist()
        self.seen_items = [part.numpy() for part in torch.split(checkpoint["seen_items"], lengths)]
        items = torch.tensor(np.asarray(item_embeddings, dtype=np.float32))
        state = checkpoint["model_state_dict"]
        state.setdefault(ITEM_TABLE, items)
        self._make_net(items, torch.empty(self.n_users, items.shape[1]))
        self.net.load_state_dict(state)
        self.optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
        self.generator = torch.Generator(device=self.torch_device).manual_seed(self.seed)
        self.epoch, self.loss = checkpoint["epoch"], checkpoint["loss"]

    def _rows(self, user_ids: Sequence[str]) -> np.ndarray:
        return user_rows(self._user_rows, user_ids, "the Shallow net")

    def _pairs(self, frame: pd.DataFrame) -> _Pairs:
        def on_device(values: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            return torch.tensor(values, dtype=dtype, device=self.torch_device)

        weights = None
        if self.settings.use_confidence:
            weights = confidence(on_device(frame["count"].to_numpy(), torch.float32))
        return _Pairs(
            users=on_device(self._rows(frame["user_id"]), torch.int64),
            items=on_device(frame["track_idx"].to_numpy(), torch.int64),
            weights=weights,
        )

    def _codes(self, *pair_sets: _Pairs) -> PositivePairs:
        codes = torch.cat([pairs.users * self.n_items + pairs.items for pairs in pair_sets])
        return PositivePairs(codes, self.n_users * self.n_items)

    def _validation_data(
        self, val: pd.DataFrame, train_pairs: _Pairs
    ) -> tuple[_Pairs, pd.DataFrame, PositivePairs | None]:
        """Val pairs of users known from train, their truth frame, and the codes negatives must avoid."""
        known = val[val["user_id"].isin(self._user_rows)]
        if known.empty:
            raise ValueError("val has no user with train interactions: nothing to validate the Shallow net on")
        pairs = self._pairs(known)
        codes = self._codes(train_pairs, pairs) if self.settings.exclude_positives else None
        return pairs, known[["user_id", "track_idx"]], codes

    def _train_epoch(self, pairs: _Pairs, positives: PositivePairs | None) -> float:
        self.net.train()
        order = torch.randperm(len(pairs), generator=self.generator, device=self.torch_device)
        total = 0.0
        for start in range(0, len(pairs), self.settings.batch_size):
            batch = order[start : start + self.settings.batch_size]
            loss = self._loss(pairs, batch, self.generator, positives)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(batch)
        return total / len(pairs)

    @torch.no_grad()
    def _validate(
        self, pairs: _Pairs, truth: pd.DataFrame, positives: PositivePairs | None, train: pd.DataFrame
    ) -> dict[str, float]:
        self.net.eval()
        # The same negatives every epoch, so the val loss curve moves only with the model.
        generator = torch.Generator(device=self.torch_device).manual_seed(self.seed + 1)
        total = 0.0
        for start in range(0, len(pairs), self.settings.batch_size):
            batch = torch.arange(start, min(start + self.settings.batch_size, len(pairs)), device=self.torch_device)
            total += self._loss(pairs, batch, generator, positives).item() * len(batch)
        return {"val/loss": total / len(pairs), **validation_metrics(self, truth, train, VAL_K)}

    def _loss(
        self, pairs: _Pairs, batch: torch.Tensor, generator: torch.Generator, positives: PositivePairs | None
    ) -> torch.Tensor:
        users, items = pairs.users[batch], pairs.items[batch]
        negatives = sample_negatives(
            users,
            items,
            self.n_users,
            self.n_items,
            self.settings.neg_samples,
            self.settings.sample_type,
            generator,
            positives,
        )
        # Column 0 holds the positive pair, columns 1.. its negatives, so one score call covers both.
        if self.settings.sample_type == "item":
            anchors, table, candidates = self.net.represent_items(items), self.net.users, users
        else:
            anchors, table, candidates = self.net.represent_users(users), self.net.items, items
        scores = self.net.candidate_scores(anchors, table, torch.cat([candidates[:, None], negatives], dim=1))
        weights = None if pairs.weights is None else pairs.weights[batch]
        loss = hinge_loss(scores[:, 0], scores[:, 1:], self.settings.margin, weights)
        if self.settings.l2 > 0:
            loss = loss + self.settings.l2 * (
                sum(parameter.pow(2).sum() for parameter in self.trainable) + self.frozen_l2
            )
        return loss

    @torch.no_grad()
    def _retrieval_vectors(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """User and item vectors whose inner product ranks tracks exactly as the model's score."""
        self.net.eval()
        users = self.net.represent_users(torch.as_tensor(rows, dtype=torch.int64, device=self.torch_device))
        items = self.net.represent_items(torch.arange(self.n_items, device=self.torch_device))
        if self.net.readout is not None:
            # sigmoid(w . (u * i) + b) is increasing in (u * w) . i, so inner-product search on these is exact.
            users = users * self.net.readout.weight[0]
        return users.cpu().numpy(), items.cpu().numpy()
