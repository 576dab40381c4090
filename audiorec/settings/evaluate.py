"""params.yaml `evaluate`: the cut-offs of the metrics."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from audiorec.settings.base import PositiveInt, Section


class EvaluateSettings(Section):
    """The cut-offs the evaluate stage computes every metric at."""

    ks: Annotated[list[PositiveInt], Field(min_length=1)]
    """The cut-offs every metric is computed at (docs/evaluation.md)."""
