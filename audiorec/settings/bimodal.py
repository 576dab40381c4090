"""params.yaml `bimodal`: the journal's contrastive model on audio and ELSA's item factors (audiorec.models.bimodal)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from audiorec.settings.base import NonNegativeInt, PositiveFloat, PositiveInt
from audiorec.settings.trained import TrainedSettings


class BimodalSettings(TrainedSettings):
    """Two MLPs map a track's audio and its ELSA factors to one space, trained contrastively (DCL)."""

    hidden_dim: PositiveInt
    """Both MLPs: Linear → ReLU → Linear, this wide."""
    temperature: PositiveFloat
    """The contrastive loss's temperature (DCL's)."""
    retrieval: Literal["average", "content", "collaborative"]
    """Which item vectors rank: `average`, `content` or `collaborative` (the journal's tables: average)."""
    cold_collaborative: Literal["none", "elsa_row"]
    """`none`: a track without train plays is its content vector in every mode; `elsa_row`: the journal's code."""
    normalize_outputs: bool
    """Retrieval vectors L2-normalised, as the loss sees them (`false`: the journal's raw MLP outputs)."""
    lr: PositiveFloat
    """Adam's learning rate (the journal: torch's default)."""
    batch_size: Annotated[int, Field(ge=2)]
    """Tracks per contrastive batch (the journal: 10,000 of 56k tracks, ~6 steps an epoch); a batch needs two."""
    max_epochs: PositiveInt
    """At most this many epochs."""
    stop_on: Literal["val_ndcg", "train_loss"]
    """`val_ndcg`: early stopping on val NDCG@50; `train_loss`: the journal's."""
    patience: PositiveInt
    """Early stopping's patience."""
    scheduler_patience: NonNegativeInt
    """ReduceLROnPlateau on the train loss (the journal's)."""
