"""params.yaml `train`: what every model's train stage shares."""

from __future__ import annotations

from audiorec.settings.base import PositiveInt, Section


class TrainSettings(Section):
    """Settings of the train stage common to every model."""

    top_k: PositiveInt
    """The length of each val and test user's ranked list."""
