"""params.yaml `jukebox`: the Jukebox backend (audiorec.backends.jukebox); not in `backends` by default."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from audiorec.settings.layers import NumberedLayersSettings

PriorLayer = Annotated[int, Field(ge=1, le=72)]


class JukeboxSettings(NumberedLayersSettings):
    """Jukebox's 5B prior through `jukemirlib` (CUDA only): transformer layers averaged over time."""

    layer: PriorLayer | Literal["best"]
    """The layer of the prior's 72 read through `jukemirlib` (the study: 36); `best`: the stored layer with the
    highest val NDCG@50 in the layer sweep (`layer_sweep`)."""
    layers: list[PriorLayer]
    """Layers (1 to 72) the same extraction also stores, one matrix each in `data/layers/jukebox/`, for a layer
    sweep, or `[]` (none). One pass runs the prior up to the deepest layer named, so deep layers cost more."""
    cache_dir: str
    """Where `jukemirlib` keeps its ~10 GB of weights (`~` is the home folder)."""
