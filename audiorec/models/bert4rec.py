"""BERT4Rec (Sun et al. 2019) on frozen audio item embeddings, as in Tamm & Aljanaki.

A user is the sequence of their unique train tracks in order of first play, the
last `max_seq_len` of them. Training hides positions behind a mask token (each
with `mlm_probability`; the most recent one also with `force_last_item_masking_prob`)
and a bidirectional Transformer, Hugging Face's `BertModel` as in the original,
predicts the hidden tracks. A track's input is its audio vector, fed as
`inputs_embeds` (optionally projected to `hidden_dim`); BERT adds its position and
token-type embeddings. A track's score is the inner product of the output at a
position with the same (projected) vectors: the output layer is tied to the item
table, so retrieval is the shared `top_k_unseen` and tracks nobody played in
train can be ranked too. Without audio (a zero-width matrix: the `baselines` run)
the item table is learned from BERT's N(0, 0.02) initialisation instead.

The loss is the cross-entropy over the `vocabulary` (the original: the train
tracks, plus the cold tracks in the journal, plus its mask and padding rows)
at the masked positions only, gathered *before* the output layer: logits are
`[n_masked x n_classes]`, never `[batch x seq x n_classes]` as in the original
(128 x 300 x 56k floats, 8.6 GB), and computed a block of rows at a time
(`ChunkedCrossEntropy` in `audiorec.models.kernels`); tests check it is the same
loss, and the same gradients. `loss: sampled_softmax` scores each masked position
against `n_negatives` shared negatives instead, drawn uniformly or by popularity,
with the logQ correction that keeps the estimate unbiased.

Every way the default departs from the original code is a parameter; params.yaml
`model_settings: study` sets them all to the original's (docs/deviations.md).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from audiorec.models.base import VAL_K, Recommender, user_rows, validation_metrics
from audiorec.models import kernels
from audiorec.models.kernels import ChunkedCrossEntropy
from audiorec.models.training import (
    monitored_metric,
    resolve_device,
    saved_config,
    scheduler_mode,
    seed_deterministic,
    train_epochs,
    training_fingerprint,
)
from audiorec.retrieval import top_k_unseen
from audiorec.settings.bert4rec import BERT4RecSettings

if TYPE_CHECKING:
    from dvclive import Live

logger = logging.getLogger(__name__)

IGNORE = -100  # target of a position that is not masked (F.cross_entropy's ignore_index)
INIT_STD = 0.02  # BERT's initializer_range, also the original's for its learned and special rows
CHECKPOINT = "checkpoint.pt"


class BERT4RecNet(nn.Module):
    """Token ids are catalogue track indices, `n_items` for padding and `n_items + 1` for the mask.

    `special_tokens`: `learned`, two learned rows outside the scored classes; `table`, the
    original's layout: two rows of the item table (N(0, 0.02), the padding row zero), trained
    or frozen with it, and scored as two more classes. `positions`: `from_end`, sequences
    right-aligned with positions counted back from the most recent track (the same position
    embedding for it at any length); `from_start`, the original's left-aligned sequences with
    positions counted from the first track."""

    def __init__(
        self,
        items: torch.Tensor,
        *,
        hidden_dim: int,
        max_seq_len: int,
        n_layers: int,
        n_heads: int,
        intermediate_dim: int,
        dropout: float,
        item_freeze: bool,
        normalize_items: bool = False,
        special_tokens: str = "learned",
        positions: str = "from_end",
        learned_dim: int = 128,
    ):
        from transformers import BertConfig, BertModel

        super().__init__()
        n_items, audio_dim = items.shape
        learned = audio_dim == 0
        if learned:  # no audio: the item table itself is learned
            items, audio_dim = torch.empty(n_items, learned_dim).normal_(0, INIT_STD), learned_dim
        self.n_items, self.normalize_items = n_items, normalize_items
        self.items = nn.Embedding.from_pretrained(items, freeze=item_freeze and not learned)
        self.score_special_tokens, self.count_from_end = special_tokens == "table", positions == "from_end"
        if self.score_special_tokens:
            special = torch.empty(2, audio_dim).normal_(0, INIT_STD)
            special[0] = 0.0  # the padding row, as nn.Embedding(padding_idx=...) leaves it
            self.special = nn.Parameter(special, requires_grad=self.items.weight.requires_grad)
        else:
            self.special = nn.Parameter(torch.randn(2, audio_dim) * float(items.std()))
        width = hidden_dim or audio_dim
        # No projection when the widths agree: the study feeds the audio vectors as they are.
        self.project = nn.Linear(audio_dim, width) if width != audio_dim else nn.Identity()
        if isinstance(self.project, nn.Linear):
            nn.init.normal_(self.project.weight, 0.0, INIT_STD)
            nn.init.zeros_(self.project.bias)
        config = BertConfig(
            vocab_size=2,  # BERT's own word embeddings go unused: inputs come as inputs_embeds
            hidden_size=width,
            num_hidden_layers=n_layers,
            num_attention_heads=n_heads,
            intermediate_size=intermediate_dim,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
            max_position_embeddings=max_seq_len,
            initializer_range=INIT_STD,
        )
        self.bert = BertModel(config, add_pooling_layer=False)

    @property
    def padding(self) -> int:
        return self.n_items

    @property
    def mask(self) -> int:
        return self.n_items + 1

    @property
    def width(self) -> int:
        return self.bert.config.hidden_size

    def item_vectors(self, indices: torch.Tensor | None = None) -> torch.Tensor:
        """The output table: the (projected) vectors of catalogue tracks `indices`, or of every track."""
        return self._output(self.items.weight if indices is None else self.items(indices))

    def class_vectors(self, classes: torch.Tensor | None) -> torch.Tensor:
        """The vectors of the softmax classes: the tracks `classes` (None: every track), then
        the padding and mask rows when they are scored (`special_tokens: table`)."""
        vectors = self.item_vectors(classes)
        return torch.cat([vectors, self._output(self.special)]) if self.score_special_tokens else vectors

    def class_vectors_are_trained(self) -> bool:
        """Whether a training step changes `class_vectors`: not for the study's frozen,
        unprojected audio vectors, whose classes can then be computed once an epoch."""
        trained = any(parameter.requires_grad for parameter in (*self.items.parameters(), *self.project.parameters()))
        return trained or (self.score_special_tokens and self.special.requires_grad)

    def _output(self, rows: torch.Tensor) -> torch.Tensor:
        vectors = self.project(rows)
        return F.normalize(vectors, dim=-1) if self.normalize_items else vectors

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """`(batch, seq)` token ids -> `(batch, seq, width)` outputs; padding is never attended to."""
        is_special = tokens >= self.n_items
        audio = self.items(tokens.clamp(max=self.n_items - 1))
        special = self.special[(tokens - self.n_items).clamp(min=0, max=1)]
        inputs = self.project(torch.where(is_special[..., None], special, audio))
        length, positions = tokens.shape[1], self.bert.config.max_position_embeddings
        first = positions - length if self.count_from_end else 0
        position_ids = torch.arange(first, first + length, device=tokens.device).expand(len(tokens), -1)
        attention = (tokens != self.padding).long()
        return self.bert(inputs_embeds=inputs, attention_mask=attention, position_ids=position_ids).last_hidden_state


def layout(sequences: Sequence[np.ndarray], length: int, padding: int, from_end: bool) -> torch.Tensor:
    """The last `length` tracks of each sequence, padded to the longest of them: on the left
    (`from_end`, the most recent track in the last column) or on the right."""
    length = max(1, min(length, max(map(len, sequences), default=1)))
    tokens = np.full((len(sequences), length), padding, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        tail = sequence[-length:]
        if from_end:
            tokens[row, length - len(tail) :] = tail
        else:
            tokens[row, : len(tail)] = tail
    return torch.from_numpy(tokens)


def last_positions(tokens: torch.Tensor, padding: int) -> torch.Tensor:
    """The column of each row's most recent track (its last non-padding token)."""
    columns = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
    return torch.where(tokens != padding, columns, -1).amax(dim=1).clamp(min=0)


def mask_tokens(
    tokens: torch.Tensor,
    padding: int,
    mask: int,
    mlm_probability: float,
    force_last_item_masking_prob: float,
    generator: torch.Generator,
    at_least_one: bool = True,
    replacements: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked tokens, targets): real positions are masked with `mlm_probability`, the
    most recent one also with `force_last_item_masking_prob`; with `at_least_one`, a
    sequence with nothing masked gets its most recent track masked (the original did
    not, so such a sequence taught nothing). Targets are IGNORE elsewhere. A masked position
    shows the mask token; with `replacements` (BERT's 80/10/10, as RecTools), a tenth of them
    show a track drawn from `replacements` instead and a tenth their own track."""
    real = tokens != padding
    draws = torch.rand(tokens.shape, generator=generator, device=tokens.device)
    masked = real & (draws < mlm_probability)
    rows, last = torch.arange(len(tokens), device=tokens.device), last_positions(tokens, padding)
    force = torch.rand(len(tokens), generator=generator, device=tokens.device) < force_last_item_masking_prob
    if at_least_one:
        force |= ~masked.any(dim=1)
    masked[rows, last] |= force & real[rows, last]
    targets = torch.where(masked, tokens, torch.full_like(tokens, IGNORE))
    inputs = torch.where(masked, torch.full_like(tokens, mask), tokens)
    if replacements is not None:
        share = torch.rand(tokens.shape, generator=generator, device=tokens.device)
        drawn = torch.randint(len(replacements), tokens.shape, generator=generator, device=tokens.device)
        inputs = torch.where(masked & (share >= 0.8) & (share < 0.9), replacements[drawn], inputs)
        inputs = torch.where(masked & (share >= 0.9), tokens, inputs)
    return inputs, targets


def masked_softmax_loss(outputs: torch.Tensor, targets: torch.Tensor, class_vectors: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every class at the masked positions only, gathered first;
    `targets` are class ids (rows of `class_vectors`) or IGNORE."""
    at = targets != IGNORE
    # Whether gradients are wanted at all: a custom Function's needs_input_grad says yes under no_grad too.
    return ChunkedCrossEntropy.apply(outputs[at], class_vectors, targets[at], torch.is_grad_enabled())


def sampled_softmax_loss(
    outputs: torch.Tensor,
    targets: torch.Tensor,
    class_vectors: Callable[[torch.Tensor], torch.Tensor],
    negatives: torch.Tensor,
    log_q: torch.Tensor,
) -> torch.Tensor:
    """Cross-entropy of each masked position's class against `negatives` (class ids shared
    by the batch, so their logits are one `[n_masked x n_negatives]` product), each logit
    minus the log of its sampling probability `log_q` (the logQ correction); a negative that
    is the position's own class is left out."""
    at = targets != IGNORE
    hidden, positives = outputs[at], targets[at]
    positive_logits = (hidden * class_vectors(positives)).sum(dim=-1) - log_q[positives]
    negative_logits = hidden @ class_vectors(negatives).T - log_q[negatives]
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


def random_batches(n_rows: int, batch_size: int, generator: torch.Generator) -> list[np.ndarray]:
    """Rows in a random order, cut into batches (the original's shuffled DataLoader)."""
    order = torch.randperm(n_rows, generator=generator).numpy()
    return [order[start : start + batch_size] for start in range(0, n_rows, batch_size)]


def user_sequences(interactions: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each user's unique tracks in order of first play (ties: track index), by sorted user id."""
    ordered = interactions.sort_values(["user_id", "timestamp", "track_idx"], kind="stable")
    return {user: group.to_numpy() for user, group in ordered.groupby("user_id", sort=True)["track_idx"]}


class BERT4RecRecommender(Recommender):
    ranks_cold_tracks = True

    def __init__(self, settings: BERT4RecSettings, *, seed: int = 0, checkpoint_dir: str | None = None):
        self.settings, self.seed, self.checkpoint_dir = settings, seed, checkpoint_dir
        self.torch_device = resolve_device(settings.device)

    def config(self) -> dict:
        """What the checkpoint stores to rebuild the model: its settings and seed."""
        return saved_config(self)

    def fit(
        self,
        item_embeddings: np.ndarray,
        train: pd.DataFrame,
        val: pd.DataFrame | None = None,
        live: Live | None = None,
        cold_items: np.ndarray | None = None,
    ) -> "BERT4RecRecommender":
        """Train on the users' first-play sequences; with `val`, schedule the learning rate
        and stop early on `schedule_on` / `stop_on` (val NDCG@50, or the masked-item loss on
        the val users' own val sequences as the original did, which needs val's `timestamp`),
        keeping the best epoch. `cold_items` join the softmax with `vocabulary: train_and_cold`."""
        width = self.settings.hidden_dim or item_embeddings.shape[1] or self.settings.learned_dim
        if width % self.settings.n_heads:
            raise ValueError(
                f"bert4rec.n_heads={self.settings.n_heads} must divide the model width {width} "
                f"({'hidden_dim' if self.settings.hidden_dim else 'the embedding dim'}); "
                "change n_heads or set hidden_dim"
            )
        # Without audio the item table is learned, and nothing can place a track nobody played.
        self.ranks_cold_tracks = item_embeddings.shape[1] > 0
        sequences = user_sequences(train)
        self.user_ids, self.sequences = list(sequences), list(sequences.values())
        # The tracks BERT's random replacement draws from (`masked_input: bert`): those of the train sequences.
        self.train_tracks = torch.from_numpy(np.unique(train["track_idx"].to_numpy()).astype(np.int64))
        self._user_rows = pd.Index(self.user_ids)
        seed_deterministic(self.seed)
        items = torch.tensor(np.asarray(item_embeddings, dtype=np.float32))
        if (
            self.settings.standardize_items and items.shape[1]
        ):  # audio features come at arbitrary scales (MFCC's first coefficient dwarfs the rest)
            items = (items - items.mean(dim=0)) / items.std(dim=0).clamp(min=1e-6)
        self.net = BERT4RecNet(
            items,
            hidden_dim=self.settings.hidden_dim,
            max_seq_len=self.settings.max_seq_len,
            n_layers=self.settings.n_layers,
            n_heads=self.settings.n_heads,
            intermediate_dim=self.settings.intermediate_dim,
            dropout=self.settings.dropout,
            item_freeze=self.settings.item_freeze,
            normalize_items=self.settings.normalize_items,
            special_tokens=self.settings.special_tokens,
            positions=self.settings.positions,
            learned_dim=self.settings.learned_dim,
        ).to(self.torch_device)
        self._set_classes(train, len(items), cold_items)
        self.generator = torch.Generator(device="cpu").manual_seed(self.seed)
        trainable = [parameter for parameter in self.net.parameters() if parameter.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, lr=self.settings.lr, betas=(0.9, self.settings.adam_beta2))
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode=scheduler_mode(self.settings.schedule_on), patience=self.settings.scheduler_patience
        )
        validate = self._validation(val, train) if val is not None else None
        self.epoch, self.loss_value = train_epochs(
            "bert4rec",
            self.net,
            self.optimizer,
            scheduler,
            self.generator,
            self.settings.patience,
            self.settings.max_epochs,
            train_epoch=self._train_epoch,
            validate=validate,
            schedule_on=monitored_metric(self.settings.schedule_on),
            stop_on=monitored_metric(self.settings.stop_on),
            resume_dir=self.checkpoint_dir if self.settings.resume else None,
            fingerprint=training_fingerprint((__file__, kernels.__file__), self.config(), item_embeddings, train, val),
            live=live,
            min_epochs=self.settings.min_epochs,
            min_gain=self.settings.min_gain,
        )
        return self

    def recommend(self, user_ids: Sequence[str], top_k: int, candidates: np.ndarray | None = None) -> pd.DataFrame:
        """Scores at a mask token placed after the user's last `predict_seq_len - 1` tracks."""
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
        if not self.net.items.weight.requires_grad:
            del state["items.weight"]
        torch.save(
            {
                "epoch": self.epoch,
                "loss": self.loss_value,
                "model_state_dict": state,
                "config": self.config(),
                "user_ids": [str(user) for user in self.user_ids],
            },
            directory / CHECKPOINT,
        )

    def _set_classes(self, train: pd.DataFrame, n_items: int, cold_items: np.ndarray | None) -> None:
        """The softmax classes: `vocabulary` tracks (None: the catalogue), each track's class id
        (-1 outside), and log q of the negative sampler over the classes."""
        if self.settings.vocabulary == "catalogue":
            classes = None
        else:
            extra: np.ndarray | list[int] = (
                cold_items if self.settings.vocabulary == "train_and_cold" and cold_items is not None else []
            )
            classes = np.union1d(train["track_idx"].to_numpy(), extra).astype(np.int64)
        tracks = np.arange(n_items) if classes is None else classes
        class_of = np.full(n_items, -1, dtype=np.int64)
        class_of[tracks] = np.arange(len(tracks))
        self.classes = None if classes is None else torch.from_numpy(classes).to(self.torch_device)
        self.class_of = torch.from_numpy(class_of).to(self.torch_device)
        self.log_q = self._sampling_log_probabilities(train, tracks)

    def _class_targets(self, targets: torch.Tensor) -> torch.Tensor:
        return torch.where(targets == IGNORE, targets, self.class_of[targets.clamp(min=0)])

    @torch.no_grad()
    def _user_vectors(self, rows: np.ndarray, batch_size: int = 64) -> np.ndarray:
        self.net.eval()
        vectors = np.empty((len(rows), self.net.width), np.float32)
        history_length = (self.settings.predict_seq_len or self.settings.max_seq_len) - 1
        # Users in order of length, in small batches, so each batch is padded only to a similar
        # length: batches of 512 padded most users to 200 tracks and took 5x as long.
        by_length = np.argsort([len(self.sequences[row]) for row in rows], kind="stable")
        for start in range(0, len(rows), batch_size):
            at = by_length[start : start + batch_size]
            history = [np.append(self.sequences[row][-history_length:], self.net.mask) for row in rows[at]]
            tokens = layout(history, self.settings.max_seq_len, self.net.padding, self.net.count_from_end).to(
                self.torch_device
            )
            outputs = self.net(tokens)
            vectors[at] = outputs[torch.arange(len(tokens)), last_positions(tokens, self.net.padding)].cpu().numpy()
        return vectors

    def _batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        if self.settings.batching == "by_length":
            return length_batches(lengths, self.settings.batch_size, self.generator)
        return random_batches(len(lengths), self.settings.batch_size, self.generator)

    def _masked_batch(
        self, sequences: list[np.ndarray], generator: torch.Generator, training: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, targets = mask_tokens(
            layout(sequences, self.settings.max_seq_len, self.net.padding, self.net.count_from_end),
            self.net.padding,
            self.net.mask,
            self.settings.mlm_probability,
            self.settings.force_last_item_masking_prob,
            generator,
            self.settings.mask_at_least_one,
            self.train_tracks if training and self.settings.masked_input == "bert" else None,
        )
        return tokens.to(self.torch_device), self._class_targets(targets.to(self.torch_device))

    def _train_epoch(self) -> float:
        self.net.train()
        lengths = np.minimum([len(sequence) for sequence in self.sequences], self.settings.max_seq_len)
        total, batches = 0.0, 0
        # At Music4All's size, gathering and normalising 56,000 class vectors was a tenth of a step.
        fixed_classes = self._fixed_class_vectors()
        for rows in self._batches(lengths):
            batch = [self.sequences[row] for row in rows]
            if self.settings.shuffle_positions:  # the control: same tracks, order destroyed
                batch = [
                    sequence[torch.randperm(len(sequence), generator=self.generator).numpy()] for sequence in batch
                ]
            tokens, targets = self._masked_batch(batch, self.generator, training=True)
            if not (targets != IGNORE).any():  # nothing masked (possible without mask_at_least_one): no signal, no step
                continue
            loss = self._loss(self.net(tokens), targets, fixed_classes)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total, batches = total + loss.item(), batches + 1
        return total / max(batches, 1)

    def _validation(self, val: pd.DataFrame, train: pd.DataFrame) -> Callable[[], dict[str, float]]:
        """Per epoch: val HitRate@50 and NDCG@50 of the ranked lists and, when monitored, the
        original's val loss: the masked-item loss on the val users' own val sequences (those
        with at least `val_min_tracks` tracks), with the same masks every epoch."""
        needs_loss = "loss" in (self.settings.stop_on, self.settings.schedule_on)
        if needs_loss and "timestamp" not in val:
            raise ValueError(
                "bert4rec.stop_on/schedule_on: loss needs val with a timestamp column (its sequences' order)"
            )
        sequences = []
        if needs_loss:
            counts = val.groupby("user_id")["track_idx"].transform("size")
            sequences = list(user_sequences(val[counts >= self.settings.val_min_tracks]).values())
            if not sequences:
                raise ValueError(
                    f"no val user has bert4rec.val_min_tracks={self.settings.val_min_tracks} val tracks: lower it"
                )

        def validate() -> dict[str, float]:
            metrics = validation_metrics(self, val, train, VAL_K)
            if needs_loss:
                metrics["val/loss"] = self._sequence_loss(sequences)
            return metrics

        return validate

    @torch.no_grad()
    def _sequence_loss(self, sequences: list[np.ndarray]) -> float:
        """Mean over batches of the masked-item loss, as the original averaged its val loss."""
        self.net.eval()
        generator = torch.Generator().manual_seed(self.seed + 1)
        losses, classes = [], self._fixed_class_vectors()
        for start in range(0, len(sequences), self.settings.batch_size):
            tokens, targets = self._masked_batch(sequences[start : start + self.settings.batch_size], generator)
            if (targets != IGNORE).any():
                losses.append(self._loss(self.net(tokens), targets, classes).item())
        return float(np.mean(losses)) if losses else float("nan")

    def _fixed_class_vectors(self) -> torch.Tensor | None:
        """The softmax's class vectors when no step changes them, else None (computed per step)."""
        if self.settings.loss != "softmax" or self.net.class_vectors_are_trained():
            return None
        return self.net.class_vectors(self.classes)

    def _loss(
        self, outputs: torch.Tensor, targets: torch.Tensor, class_vectors: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The training loss; `class_vectors`, when given, are the softmax's (computed once for frozen classes)."""
        if self.settings.loss == "softmax":
            classes = self.net.class_vectors(self.classes) if class_vectors is None else class_vectors
            return masked_softmax_loss(outputs, targets, classes)
        negatives = torch.multinomial(
            self.log_q.exp().cpu(), self.settings.n_negatives, replacement=True, generator=self.generator
        )
        return sampled_softmax_loss(
            outputs, targets, self._class_vectors_of, negatives.to(self.torch_device), self.log_q
        )

    def _class_vectors_of(self, class_ids: torch.Tensor) -> torch.Tensor:
        tracks = class_ids if self.classes is None else self.classes[class_ids]
        return self.net.item_vectors(tracks)

    def _sampling_log_probabilities(self, train: pd.DataFrame, tracks: np.ndarray) -> torch.Tensor:
        """log q of the negative sampler over the track classes `tracks`: uniform, or by train
        listeners (each track at least one)."""
        if self.settings.negative_sampling == "uniform":
            weights = np.ones(len(tracks))
        else:
            weights = np.bincount(train["track_idx"].to_numpy(), minlength=len(self.class_of))[tracks] + 1.0
        return torch.tensor(np.log(weights / weights.sum()), dtype=torch.float32, device=self.torch_device)
