"""params.yaml `shallow`: the study's Shallow Net (audiorec.models.shallow)."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import Monitored, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from audiorec.settings.trained import TrainedSettings


class ShallowSettings(TrainedSettings):
    """Users and tracks in one space, trained with a hinge loss on sampled negatives."""

    hidden_dim: NonNegativeInt
    """`0`: output width = embedding width (the journal's launcher; the RecSys one: 128)."""
    variant: Literal["cosine", "interaction"]
    """`cosine`, or `interaction`: a sigmoid of a linear read-out of the element-wise product."""
    margin: float
    """The hinge loss's margin."""
    neg_samples: PositiveInt
    """Negatives per positive pair."""
    sample_type: Literal["item", "user"]
    """`item`: negative users for each (user, track), as the study ran; `user`: negative tracks."""
    exclude_positives: bool
    """A negative is never a true pair (the original drew any user)."""
    use_confidence: bool
    """Weight positives by 1 + 2 log(1 + play count)."""
    l2: NonNegativeFloat
    """l2 × (the sum of every parameter squared) is added to the loss, as in the original."""
    item_freeze: bool
    """The audio item embeddings stay frozen, as the paper describes."""
    user_freeze: bool
    """The user embeddings stay frozen (the original code's inverted flags froze them, and trained the items)."""
    user_init: bool
    """Users start as the mean of their train tracks' embeddings."""
    lr: PositiveFloat
    """Adam's learning rate."""
    batch_size: PositiveInt
    """Pairs per batch."""
    max_epochs: PositiveInt
    """At most this many epochs."""
    patience: PositiveInt
    """Early stopping's patience, on `stop_on`."""
    scheduler_patience: NonNegativeInt
    """ReduceLROnPlateau's patience, on `schedule_on`."""
    stop_on: Monitored
    """`ndcg`: val NDCG@50; `loss`: the val hinge loss (the original)."""
    schedule_on: Monitored
    """The same choice for the learning-rate scheduler."""
