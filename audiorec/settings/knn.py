"""params.yaml `knn`: the nearest-neighbour recommender (audiorec.models.knn)."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import PositiveInt, Section


class KNNSettings(Section):
    """A user is a vector in the tracks' space; tracks rank by cosine similarity to it."""

    batch_size: PositiveInt
    """Users scored per float32 BLAS product (another size may round a near-tie the other way)."""
    user_rows: Literal["tracks", "item_ids"]
    """`tracks`: a user is the mean of their tracks' vectors; `item_ids`: the journal code's indexing bug
    ([Deviations](deviations.md#the-deviation-table))."""
