"""params.yaml `oracle`: the upper-bound backend, the synthetic dataset's hidden styles (audiorec.backends.oracle)."""

from __future__ import annotations

from audiorec.settings.base import NonNegativeInt, Section


class OracleSettings(Section):
    """The synthetic dataset's hidden style of each track, embedded isometrically: the upper bound."""

    styles_path: str
    """The synthetic dataset's hidden styles (they exist only with `dataset.source: synthetic`)."""
    dim: NonNegativeInt
    """The 11 style coordinates embedded isometrically in this many dims (at least 11); `0` serves the raw style
    (docs/backends.md)."""
    seed: NonNegativeInt
    """The seed of the orthonormal embedding."""
