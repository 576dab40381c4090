"""params.yaml `elsa`: ELSA, the journal's collaborative reference (audiorec.models.elsa, the elsarec package)."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import PositiveFloat, PositiveInt
from audiorec.settings.trained import TrainedSettings


class ELSASettings(TrainedSettings):
    """A shallow linear autoencoder of the interactions, without audio."""

    factors: PositiveInt
    """Item factors (the journal's: 768)."""
    lr: PositiveFloat
    """NAdam's learning rate: what the journal ran (its script's 0.01 never reached ELSA; the package default
    0.1 did)."""
    batch_size: PositiveInt
    """Users per step."""
    max_epochs: PositiveInt
    """Epochs."""
    stop_on: Literal["none", "val_ndcg"]
    """`none`: the journal's, every epoch trained and the last kept; `val_ndcg`: early stopping on val NDCG@50."""
    patience: PositiveInt
    """With `stop_on: val_ndcg` only."""
    shuffle: bool
    """Users in a new order every epoch (`false`: the journal's, the same order every epoch)."""
    retrieval_batch_size: PositiveInt
    """Users ranked at a time."""
