"""params.yaml `mule`: the MULE backend (audiorec.backends.mule); not in `backends` by default."""

from __future__ import annotations

from audiorec.settings.base import Section


class MuleSettings(Section):
    """MULE through `mule-torch`: its 1728-dim embedding averaged over ~2 s slices."""

    model: str
    """mule-torch's converted weights: a hub name or a local folder."""
