"""params.yaml `ease`: EASE, the closed-form collaborative baseline (audiorec.models.ease)."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import PositiveFloat, PositiveInt, Section


class EASESettings(Section):
    """EASE's item-item weights from the train interactions, without audio."""

    l2: PositiveFloat
    """EASE's λ (> 0: the Gram matrix is singular without it)."""
    batch_size: PositiveInt
    """Users scored at a time."""
    dtype: Literal["float32", "float64"]
    """The type of the one tracks × tracks matrix ([Models](models.md#ease))."""
