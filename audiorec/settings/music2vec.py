"""params.yaml `music2vec`: the Music2Vec backend (audiorec.backends.music2vec); not in `backends` by default."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import PositiveInt
from audiorec.settings.layers import HiddenStatesSettings


class Music2VecSettings(HiddenStatesSettings):
    """Music2Vec-v1 through transformers: a hidden state pooled over time (docs/backends.md)."""

    model: str
    """Music2Vec's weights: a hub name or a local folder."""
    feature_extractor: str
    """The input preprocessing its model card uses (its repository ships none)."""
    trust_remote_code: bool
    """`true` runs model code from the hub repository, as for MERT (read it first)."""
    sample_rate: PositiveInt
    """The rate fed to the model: its own is 16000; `24000` reproduces the original study, with a warning."""
    pooling: Literal["mean", "max"]
    """Over time: `mean` or `max`."""
