"""params.yaml `muq`: the MuQ backend (audiorec.backends.muq); not in `backends` by default."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.layers import HiddenStatesSettings


class MuQSettings(HiddenStatesSettings):
    """MuQ through the `muq` package: a hidden state of its conformer pooled over time (the large model: 0 to 12)."""

    model: str
    """MuQ's weights: a hub name or a local folder."""
    pooling: Literal["mean", "max"]
    """Over time: `mean` or `max`."""
