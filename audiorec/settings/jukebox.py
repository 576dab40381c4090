"""params.yaml `jukebox`: the Jukebox backend (audiorec.backends.jukebox); not in `backends` by default."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from audiorec.settings.base import Section


class JukeboxSettings(Section):
    """Jukebox's 5B prior through `jukemirlib` (CUDA only): one transformer layer averaged over time."""

    layer: Annotated[int, Field(ge=1, le=72)]
    """The layer of the prior's 72 read through `jukemirlib` (the study: 36)."""
    cache_dir: str
    """Where `jukemirlib` keeps its ~10 GB of weights (`~` is the home folder)."""
