"""params.yaml `mert`: the MERT backend (audiorec.backends.mert); not in `backends` by default."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import PositiveInt
from audiorec.settings.layers import HiddenStatesSettings


class MertSettings(HiddenStatesSettings):
    """MERT-v1-330M through transformers: a hidden state pooled over time (docs/backends.md)."""

    model: str
    """MERT's weights: a hub name or a local folder."""
    trust_remote_code: bool
    """MERT's model class is code in its hub repository: `true` runs it (read it first)."""
    sample_rate: PositiveInt
    """The model's input rate."""
    pooling: Literal["mean", "max"]
    """Over time: `mean` or `max`."""
    feature_extractor: str | None = None
    """The input preprocessing, a hub name or a local folder; absent: the one in `model`'s repository."""
