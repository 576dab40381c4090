"""params.yaml `mostpop`: the popularity baseline (audiorec.models.mostpop)."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import Section


class MostPopSettings(Section):
    """Every user gets the most popular unseen tracks."""

    count_by: Literal["plays", "users"]
    """`plays`, or `users` (distinct listeners)."""
