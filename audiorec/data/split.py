"""The time splits of the original study, as its code ran them.

Two protocols (params.yaml `split.protocol`, each defined by its own section):

- `recsys24` (RecSys 2024): plays from `start_date` on; the test period runs from
  `test_date` to the end of the log; test rows of tracks absent from train are
  dropped; the test-period users are split into validation and test users by
  `sklearn.model_selection.train_test_split(users, test_size=0.5, random_state=42)`.
- `journal` (the follow-up): a train year before `test_date`, a test month after
  it; test rows of tracks absent from train form the cold split; validation users
  are drawn the same way (`test_size=0.7`) from the users without cold tracks,
  and every other test-period user's hot rows are the test split.

In both, plays inside the window are collapsed to one row per (user, track) with
its first-play time. A pair first played before `test_date` is a train pair whose
`count` is its plays *before* `test_date` (the original compresses train from
those plays only, so later listening never reaches a train count); a pair first
played on or after `test_date` is a test-period pair, new to that user, whose
`count` is its plays in the test period. The test period keeps only train users.
Users are enumerated in sorted order, as the original's groupby leaves them, so
on the same log the validation and test users are the original's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SPLIT_COLUMNS = ["user_id", "track_idx", "timestamp", "count"]
PROTOCOLS = ("recsys24", "journal")
VAL_FROM = ("all", "without_cold")
DUPLICATE_PLAYS = ("count", "drop")


class EmptySplitError(ValueError):
    pass


@dataclass(frozen=True)
class Protocol:
    """One protocol's definition: its section of params.yaml `split`."""

    start_date: str
    test_date: str
    end_date: str | None  # None: the test period runs to the end of the log
    cold_start: bool  # test rows of tracks absent from train: a cold split (True) or dropped (False)
    val_from: str  # validation users are drawn from `all` test-period users or those `without_cold` tracks
    test_size: float  # train_test_split's test_size: the share of the drawn users that are not validation users
    seed: int  # train_test_split's random_state

    def __post_init__(self) -> None:
        start, test = pd.Timestamp(self.start_date), pd.Timestamp(self.test_date)
        if test <= start:
            raise ValueError(f"test_date ({self.test_date}) must be after start_date ({self.start_date})")
        if self.end_date is not None and pd.Timestamp(self.end_date) <= test:
            raise ValueError(f"end_date ({self.end_date}) must be after test_date ({self.test_date}), or null")
        if self.val_from not in VAL_FROM:
            raise ValueError(f"val_from={self.val_from!r}; allowed: {', '.join(VAL_FROM)}")
        if self.val_from == "without_cold" and not self.cold_start:
            raise ValueError(
                "val_from=without_cold needs cold_start: true (without a cold split no user has cold tracks)"
            )
        if not 0 < self.test_size < 1:
            raise ValueError(f"test_size={self.test_size}; must be strictly between 0 and 1")

    @classmethod
    def from_params(cls, split: dict) -> "Protocol":
        """The protocol params.yaml `split.protocol` names, from its section of `split`."""
        return cls(**split[split["protocol"]])

    def in_window(self, timestamps: pd.Series) -> pd.Series:
        inside = timestamps >= pd.Timestamp(self.start_date)
        if self.end_date is not None:
            inside &= timestamps < pd.Timestamp(self.end_date)
        return inside


def compress(plays: pd.DataFrame, test_date: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train pairs, test-period pairs) of the window's `plays`: one row per (user, track)
    with the first-play time and the plays on its side of `test_date`."""
    before = (plays["timestamp"] < pd.Timestamp(test_date)).rename("before")
    grouped = plays.assign(before=before).groupby(["user_id", "track_idx"], observed=True, sort=True)
    pairs = grouped.agg(
        timestamp=("timestamp", "min"), plays=("timestamp", "size"), before=("before", "sum")
    ).reset_index()
    pairs["user_id"] = pairs["user_id"].astype(str)
    is_train = pairs["before"] > 0
    train = pairs[is_train].assign(count=pairs["before"])
    test_period = pairs[~is_train].assign(count=pairs["plays"])
    return train[SPLIT_COLUMNS].reset_index(drop=True), test_period[SPLIT_COLUMNS].reset_index(drop=True)


def draw_val_users(eligible: np.ndarray, test_size: float, seed: int) -> np.ndarray:
    """The validation users: the train part of sklearn's `train_test_split` over the sorted
    `eligible` users, as both original splits drew them."""
    # Imported here: scikit-learn takes seconds to import, and only the split stage needs it.
    from sklearn.model_selection import train_test_split

    try:
        val_users, _ = train_test_split(np.sort(eligible), test_size=test_size, random_state=seed)
    except ValueError as error:  # too few users for both parts
        raise EmptySplitError(
            f"{len(eligible)} test-period users are too few to split into val and test with test_size={test_size} "
            f"({error}); use a larger log or move the protocol's test_date"
        ) from None
    return np.sort(val_users)


def time_split(plays: pd.DataFrame, protocol: Protocol, duplicate_plays: str = "count") -> dict[str, pd.DataFrame]:
    """train, val, test and cold_test (empty unless `protocol.cold_start`) of `plays`
    (`user_id, track_idx, timestamp`). Exact duplicate rows are plays (`count`, as both
    studies counted them) or are dropped first (`drop`)."""
    if duplicate_plays not in DUPLICATE_PLAYS:
        raise ValueError(f"split.duplicate_plays={duplicate_plays!r}; allowed: {', '.join(DUPLICATE_PLAYS)}")
    window = plays[protocol.in_window(plays["timestamp"])]
    if duplicate_plays == "drop":
        window = window.drop_duplicates(["user_id", "track_idx", "timestamp"])
    train, test_period = compress(window, protocol.test_date)
    test_period = test_period[test_period["user_id"].isin(train["user_id"])]
    is_cold = ~test_period["track_idx"].isin(train["track_idx"])
    hot, cold = test_period[~is_cold], test_period[is_cold]
    if train.empty or hot.empty:
        raise EmptySplitError(
            f"the split is empty: {len(train)} train pairs from {protocol.start_date} to {protocol.test_date}, "
            f"{len(hot)} test-period pairs of train users and tracks from {protocol.test_date} "
            f"to {protocol.end_date or 'the end of the log'}. Move the protocol's dates inside the log's time range."
        )
    if not protocol.cold_start:
        cold = cold.iloc[:0]
    eligible = hot["user_id"].unique()
    if protocol.val_from == "without_cold":
        eligible = np.setdiff1d(eligible, cold["user_id"].unique())
    is_val = hot["user_id"].isin(draw_val_users(eligible, protocol.test_size, protocol.seed))
    return {
        "train": train,
        "val": hot[is_val].reset_index(drop=True),
        "test": hot[~is_val].reset_index(drop=True),
        "cold_test": cold.reset_index(drop=True),
    }


def split_statistics(
    splits: dict[str, pd.DataFrame], plays: pd.DataFrame, protocol: Protocol
) -> dict[str, dict[str, int]]:
    """Users, tracks and pairs per split, and the plays outside the protocol's window."""
    outside = int((~protocol.in_window(plays["timestamp"])).sum())
    return {"ignored": {"plays_outside_window": outside}} | {
        name: {
            "users": int(frame["user_id"].nunique()),
            "items": int(frame["track_idx"].nunique()),
            "interactions": len(frame),
        }
        for name, frame in splits.items()
    }
