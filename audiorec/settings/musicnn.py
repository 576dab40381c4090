"""params.yaml `musicnn`: the MusiCNN backend (audiorec.backends.musicnn)."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import Section


class MusicnnSettings(Section):
    """MusiCNN through the checkpoints shipped in the `musicnn` package, averaged over 3 s patches."""

    model: Literal["MSD_musicnn", "MTT_musicnn"]
    """The checkpoint shipped in the `musicnn` package: `MSD_musicnn` (Million Song Dataset tags) or `MTT_musicnn`
    (MagnaTagATune)."""
    layer: Literal["mean_pool", "max_pool", "penultimate"]
    """The layer averaged over 3 s patches (one of the per-patch vectors)."""
