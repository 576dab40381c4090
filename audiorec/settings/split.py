"""params.yaml `split`: the time split into train, val, test and cold_test (audiorec.data.split).

Each protocol's section is its definition, as its paper's code ran it (docs/study.md).
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from audiorec.settings.base import NonNegativeInt, Section


def parse_date(value: str) -> datetime.datetime:
    """A date or date-time in ISO form ('2019-02-01', '2019-02-01 12:00'), as pandas reads it in the split."""
    return datetime.datetime.fromisoformat(value)


class ProtocolSettings(Section):
    """One split protocol: its time window, what happens to cold tracks, and how validation users are drawn."""

    start_date: str
    """Plays before it are ignored."""
    test_date: str
    """Pairs first played on or after it are the test period; it must be after `start_date`."""
    end_date: str | None
    """The end of the test period, after `test_date`; `null`: the test period runs to the end of the log."""
    cold_start: bool
    """Test rows of tracks absent from train: `true` makes them the `cold_test` split, `false` drops them."""
    val_from: Literal["all", "without_cold"]
    """Validation users are drawn from `all` test-period users, or from those `without_cold` tracks (which needs
    `cold_start: true`)."""
    test_size: Annotated[float, Field(gt=0, lt=1)]
    """`train_test_split`'s `test_size`: the share of the drawn users that are not validation users."""
    seed: NonNegativeInt
    """`train_test_split`'s `random_state`."""

    @field_validator("start_date", "test_date", "end_date", mode="before")
    @classmethod
    def as_text(cls, value: Any) -> Any:
        """An unquoted YAML date (a datetime.date) is read as its ISO text."""
        return value.isoformat() if isinstance(value, datetime.date) else value

    @field_validator("start_date", "test_date", "end_date")
    @classmethod
    def in_order(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Each date parses, and start_date < test_date < end_date."""
        if value is None:
            return value
        try:
            when = parse_date(value)
        except ValueError:
            raise PydanticCustomError("date", "not a date; write it as 'YYYY-MM-DD'") from None
        before = {"test_date": "start_date", "end_date": "test_date"}.get(info.field_name or "")
        earlier = info.data.get(before) if before else None
        if earlier is not None:
            try:
                ordered = when > parse_date(earlier)
            except TypeError:  # one with a time zone, one without
                raise PydanticCustomError("date", "give both dates with a time zone or neither") from None
            if not ordered:
                null = ", or null" if info.field_name == "end_date" else ""
                raise PydanticCustomError("date_order", f"must be after {before} ({earlier}){null}")
        return value

    @field_validator("val_from")
    @classmethod
    def cold_users_need_cold_split(cls, value: str, info: ValidationInfo) -> str:
        if value == "without_cold" and info.data.get("cold_start") is False:
            raise PydanticCustomError(
                "val_from", "without_cold needs cold_start: true (without a cold split no user has cold tracks)"
            )
        return value


class SplitSettings(Section):
    """Which split protocol runs, how duplicate log rows count, and each protocol's definition."""

    protocol: Literal["recsys24", "journal"]
    """`journal`: the follow-up's split (hot and cold test); `recsys24`: the RecSys 2024 paper's."""
    duplicate_plays: Literal["count", "drop"]
    """`count`: an exact duplicate log row is a play, as both studies counted; `drop` removes them first."""
    recsys24: ProtocolSettings
    """The RecSys 2024 paper's protocol: a year of train, the test period to the end of the log, cold test rows
    dropped, validation users half of all test-period users."""
    journal: ProtocolSettings
    """The follow-up's protocol: a train year, a test month, cold test rows as the `cold_test` split, validation
    users 30% of the users without cold tracks."""
