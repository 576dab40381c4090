"""params.yaml `evaluate`: the metrics' cut-offs, the popularity buckets, the space diversity is measured in."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from audiorec.settings.base import PositiveInt, Section

Share = Annotated[float, Field(gt=0, lt=1)]


class PopularityBuckets(Section):
    """How the train catalogue, ordered by train plays, is cut into head, mid and tail."""

    head: Share
    """The share of the catalogue's tracks, the most played first, that is the head."""
    tail: Share
    """The share of the catalogue's tracks, the least played last, that is the tail; mid is the rest."""

    @model_validator(mode="after")
    def _leave_room(self) -> "PopularityBuckets":
        if self.head + self.tail > 1:
            raise ValueError(f"head + tail = {self.head + self.tail:g} > 1; lower one of them")
        return self


class EvaluateSettings(Section):
    """What the evaluate stage computes, at which cut-offs, and how (docs/evaluation.md)."""

    ks: Annotated[list[PositiveInt], Field(min_length=1)]
    """The cut-offs every metric is computed at (docs/evaluation.md)."""
    popularity_buckets: PopularityBuckets
    """The cut-offs of the head / mid / tail buckets that accuracy is also reported on, per bucket of the test
    tracks (docs/evaluation.md "Beyond accuracy")."""
    diversity_space: str | None
    """The backend (one of `backends`) whose vectors measure every run's intra-list diversity, so that runs on
    different backends are compared in one space; null: no diversity column."""
