"""params.yaml `musicfm`: the MusicFM backend (audiorec.backends.musicfm); not in `backends` by default."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import Section


class MusicFMSettings(Section):
    """MusicFM from a clone of its repository: a layer's output pooled over time (docs/backends.md)."""

    repo: str
    """A clone of the MusicFM repository (not a package)."""
    stat_path: str
    """Its normalisation statistics (`msd_stats.json`)."""
    model_path: str
    """Its checkpoint (`pretrained_msd.pt`)."""
    layer: int
    """The layer read."""
    pooling: Literal["mean", "max"]
    """Over time: `mean` or `max` (the original averaged over channels, a bug)."""
