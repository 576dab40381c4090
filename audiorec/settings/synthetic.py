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
    mean_sessions: PositiveFloat
    """A user's mean number of listening sessions over the whole log (each user's own rate is this times a
    log-normal activity): with the number of users, it sets the size of train."""
    test_month_sessions: Annotated[float, Field(ge=0)]
    """A user's mean number of extra sessions inside the test month (times the same activity): with the
    number of users, it sets how many users the test month sees, and so the validation users."""
    popularity_exponent: PositiveFloat
    """Track popularity falls with rank as rank^-exponent (Zipf-like) before taste and sessions mix it: sets
    how skewed the train plays are (docs/data.md: train pairs' Gini over tracks)."""
