"""params.yaml `compare`: how far a metric may move before `python -m stages.compare` fails."""

from __future__ import annotations

from audiorec.settings.base import NonNegativeFloat, Section


class CompareSettings(Section):
    """The tolerances of the run comparisons: between revisions, and against the tiny reference run."""

    tolerance: NonNegativeFloat
    """`python -m stages.compare REV` fails when a test or cold metric moved more than this (docs/workflows.md)."""
    reference_tolerance: NonNegativeFloat
    """CI's tiny run against `tests/reference/tiny_metrics.json`: other CPUs round torch and TensorFlow differently
    (docs/ci.md)."""
