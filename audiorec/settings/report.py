"""params.yaml `report`: the cut-offs of the report's tables.

That each is one of `evaluate.ks` is checked by audiorec.config, which sees both sections.
"""

from __future__ import annotations

from audiorec.settings.base import PositiveInt, Section


class ReportSettings(Section):
    """The cut-offs the report's hot and cold tables show."""

    k: PositiveInt
    """The cut-off of the hot tables; one of `evaluate.ks`."""
    cold_k: PositiveInt
    """The cut-off of the cold tables, which rank only the ~200 cold tracks; one of `evaluate.ks`."""
