"""params.yaml `muq_mulan`: the MuQ-MuLan backend (audiorec.backends.muq_mulan); not in `backends` by default."""

from __future__ import annotations

from audiorec.settings.base import Section


class MuQMuLanSettings(Section):
    """MuQ-MuLan's audio tower through the `muq` package: one 512-dim joint music-text embedding per clip."""

    model: str
    """MuQ-MuLan's weights (the audio tower's joint embedding): a hub name or a local folder."""
