"""params.yaml `encodecmae`: the EnCodecMAE backend (audiorec.backends.encodecmae); not in `backends` by default."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from audiorec.settings.base import Section


class EncodecMAESettings(Section):
    """EnCodecMAE through the `encodecmae` package: its last encoder layer averaged over time."""

    model: Annotated[str, Field(min_length=1)]
    """The `encodecmae` package's size name (base: 768 dims, last layer)."""
