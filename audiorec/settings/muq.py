"""params.yaml `muq`: the MuQ backend (audiorec.backends.muq); not in `backends` by default."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import Section


class MuQSettings(Section):
    """MuQ through the `muq` package: a hidden state pooled over time."""

    model: str
    """MuQ's weights: a hub name or a local folder."""
    layer: int
    """The hidden state read (-1: the last)."""
    pooling: Literal["mean", "max"]
    """Over time: `mean` or `max`."""
