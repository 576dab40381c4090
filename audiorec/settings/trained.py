"""What the sections of the models trained by gradient steps share."""

from __future__ import annotations

from audiorec.settings.base import Device, Section


class TrainedSettings(Section):
    """Where a model trains and whether a killed run continues."""

    device: Device
    """`auto`: CUDA when available; `cpu`; `cuda` or `cuda:<index>`."""
    resume: bool
    """A killed train stage continues from its last finished epoch (state in `data/resume/`), to the same result."""
