"""params.yaml `hybrid`: the journal's ELSA with item factors from audio (audiorec.models.hybrid)."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import NonNegativeInt, PositiveFloat, PositiveInt
from audiorec.settings.trained import TrainedSettings


class HybridSettings(TrainedSettings):
    """ELSA's reconstruction loss, with each track's factors an MLP of its audio."""

    hidden_dim: PositiveInt
    """The MLP: Linear → ReLU → Linear, this wide."""
    catalogue: Literal["train", "all"]
    """The reconstructed rows' columns: `train`, the tracks played in train; `all`, the whole catalogue
    (the journal's code), cold tracks included as columns nobody plays."""
    lr: PositiveFloat
    """Adam's learning rate."""
    batch_size: PositiveInt
    """Users per step."""
    max_epochs: PositiveInt
    """At most this many epochs."""
    stop_on: Literal["val_ndcg", "val_loss"]
    """`val_ndcg`: early stopping on val NDCG@50; `val_loss`: the journal's, on the val rows' loss."""
    patience: PositiveInt
    """Early stopping's patience."""
    scheduler_patience: NonNegativeInt
    """ReduceLROnPlateau on the val rows' loss (the journal's)."""
