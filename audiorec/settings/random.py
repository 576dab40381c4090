"""params.yaml `random`: the random-vector backend, the paper's control (audiorec.backends.random)."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import NonNegativeInt, PositiveInt, Section


class RandomSettings(Section):
    """A seeded random vector per track, no audio involved: the control every audio backend must beat."""

    dim: PositiveInt
    """The width of the random vectors."""
    seed: NonNegativeInt
    """Their seed."""
    distribution: Literal["normal", "uniform"]
    """`normal`, or `uniform` in [0, 1) as the original Shallow Net's (with `dim` 64 or 128)."""
