"""params.yaml `bert4rec`: BERT4Rec on the frozen audio vectors (audiorec.models.bert4rec)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from audiorec.settings.base import Monitored, NonNegativeInt, PositiveFloat, PositiveInt, Probability
from audiorec.settings.trained import TrainedSettings


class BERT4RecSettings(TrainedSettings):
    """A masked-item transformer (transformers' BertModel) over each user's first plays, in order."""

    max_seq_len: Annotated[int, Field(ge=2)]
    """The last this many unique train tracks per user (the study: 300)."""
    predict_seq_len: NonNegativeInt
    """`0`: predict from the last `max_seq_len` − 1 tracks (the RecSys code: 50, i.e. 49 tracks); else 2 to
    `max_seq_len`."""
    hidden_dim: NonNegativeInt
    """`0`: the embedding width, no projection (the study); otherwise a learned projection."""
    learned_dim: PositiveInt
    """The learned item table's width without audio (`bert4rec` in `baselines`)."""
    n_layers: PositiveInt
    """Transformer layers."""
    n_heads: PositiveInt
    """Attention heads (they must divide the width)."""
    intermediate_dim: PositiveInt
    """The feed-forward width."""
    dropout: Probability
    """Dropout in the transformer (the study: 0.1)."""
    mlm_probability: Probability
    """The share of positions masked."""
    force_last_item_masking_prob: Probability
    """The probability that the last position is masked too."""
    masked_input: Literal["mask", "bert"]
    """What a masked position shows in training: `mask`, the mask token (the original); `bert`, BERT's 80/10/10 as
    in RecTools: the mask token, a random train track for a tenth of them, the track itself for another tenth."""
    mask_at_least_one: bool
    """A sequence with nothing masked gets its last track masked (the original: not)."""
    item_freeze: bool
    """The paper's frozen items; the original code's inverted flag fine-tuned the item table."""
    special_tokens: Literal["learned", "table"]
    """`learned`: mask and padding are two learned vectors; `table`: rows of the item table, scored as classes
    (the original)."""
    positions: Literal["from_end", "from_start"]
    """`from_end`: right-aligned, positions counted from the most recent track; `from_start`: the original's."""
    standardize_items: bool
    """Z-score each embedding dimension over the catalogue first (`false`: the raw vectors, as the study)."""
    normalize_items: bool
    """Score tracks by cosine, as KNN and Shallow do (`false`: the study's raw inner product)."""
    vocabulary: Literal["catalogue", "train", "train_and_cold"]
    """The softmax's tracks: `train` (the RecSys code), `train_and_cold` (the journal's) or `catalogue`."""
    loss: Literal["softmax", "sampled_softmax"]
    """`softmax`, or `sampled_softmax`: `n_negatives` classes instead of every track, fewer FLOPs; the softmax runs
    in blocks, so it saves no memory ([Scale](scale.md))."""
    n_negatives: PositiveInt
    """`sampled_softmax` only: the number of negatives, shared by the batch."""
    negative_sampling: Literal["uniform", "popularity"]
    """`sampled_softmax` only: `uniform`, or `popularity` with the logQ correction."""
    shuffle_positions: bool
    """The order control (`controls.unordered` runs it): each sequence's tracks in random order."""
    batching: Literal["by_length", "random"]
    """`by_length`: users of similar length share a batch; `random` (the original)."""
    lr: PositiveFloat
    """Adam's learning rate."""
    adam_beta2: Annotated[float, Field(gt=0, lt=1)]
    """Adam's second-moment decay: 0.999 is torch's default, which the original used; transformer recipes, RecTools'
    BERT4Rec among them, use 0.98."""
    batch_size: PositiveInt
    """Users per batch (the study: 128, for ~15k users)."""
    max_epochs: PositiveInt
    """At most this many epochs."""
    min_epochs: NonNegativeInt
    """Epochs at the initial learning rate before stopping or scheduling may act."""
    patience: PositiveInt
    """Early stopping's patience on `stop_on`, after `min_epochs`."""
    min_gain: Annotated[float, Field(ge=0)]
    """A gain in `stop_on` smaller than this does not reset the patience (the best epoch is kept all the
    same): about the epoch-to-epoch noise of the validation metric (docs/models.md "Stopping")."""
    scheduler_patience: NonNegativeInt
    """ReduceLROnPlateau's patience on `schedule_on`, after `min_epochs`."""
    stop_on: Monitored
    """`ndcg`: val NDCG@50; `loss`: the masked-item loss on the val users' val sequences (the original)."""
    schedule_on: Monitored
    """The same choice for the learning-rate scheduler."""
    val_min_tracks: NonNegativeInt
    """The val loss reads only val users with this many val tracks (the RecSys code: 10)."""

    @model_validator(mode="after")
    def _prediction_fits_the_sequence(self) -> "BERT4RecSettings":
        if self.predict_seq_len and not 2 <= self.predict_seq_len <= self.max_seq_len:
            raise ValueError(
                f"predict_seq_len={self.predict_seq_len} must be 0 (max_seq_len) "
                f"or between 2 and max_seq_len ({self.max_seq_len})"
            )
        return self
