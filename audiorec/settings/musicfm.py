"""params.yaml `musicfm`: the MusicFM backend (audiorec.backends.musicfm); not in `backends` by default."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.layers import HiddenStatesSettings


class MusicFMSettings(HiddenStatesSettings):
    """MusicFM from a clone of its repository: a hidden state of its conformer pooled over time, 0 to 12
    (docs/backends.md)."""

    repo: str
    """A clone of the MusicFM repository (not a package)."""
    stat_path: str
    """Its normalisation statistics (`msd_stats.json`)."""
    model_path: str
    """Its checkpoint (`pretrained_msd.pt`)."""
    pooling: Literal["mean", "max"]
    """Over time: `mean` or `max` (the original averaged over channels, a bug)."""
