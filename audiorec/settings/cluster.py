"""params.yaml `cluster` (optional): the Ray resources of each stage's task
(audiorec.workflow.cluster, docs/cluster.md)."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import NonNegativeFloat, Section

# The Ray task options a stage may ask for: CPUs, GPUs (a fraction shares one) and memory in bytes.
Resource = Literal["num_cpus", "num_gpus", "memory"]


class ClusterSettings(Section):
    """How `python -m stages.cluster` sizes the Ray task of each stage."""

    resources: dict[str, dict[Resource, NonNegativeFloat]] | None = None
    """Stage-address pattern (fnmatch, e.g. `train*@*bert4rec*`) -> the Ray resources of its task; the first
    matching pattern wins; absent or empty: DEFAULT_RESOURCES in audiorec/workflow/cluster.py."""
