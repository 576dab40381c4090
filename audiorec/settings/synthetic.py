"""params.yaml `synthetic`: a mapping of size name (`tiny`, `small`, ...) to a `SyntheticSize`.

`dataset.size` names the entry the synthetic dataset is generated with; audiorec.config checks
each entry as a `SyntheticSize` (where="synthetic.<size>") and that `dataset.size` is one of them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from audiorec.settings.base import PositiveFloat, PositiveInt, Section


class SyntheticSize(Section):
    """One size of the synthetic dataset: how many tracks and users, and how long each clip."""

    n_tracks: PositiveInt
    """Tracks of the dataset; with fewer than 300, a top-50 list covers too much of the catalogue to tell
    models apart, and with fewer than 3000 a 200-dim embedding can memorise tracks (docs/data.md)."""
    n_users: PositiveInt
    """Its users."""
    clip_seconds: PositiveFloat
    """The length of each synthetic clip (3: one musicnn patch per track)."""
    cold_fraction: Annotated[float, Field(gt=0, lt=1)]
    """The share of tracks released in the test month: the cold-start tracks."""
