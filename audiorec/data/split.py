"""The Music4All-Onion time split of the original study.

Plays from `start_date` on are collapsed to one row per (user, track) with the
first-play time and the play count. A pair first played before `test_date`
is training data; one first played on or after it belongs to the test period,
so every test row is a track new to that user. The test period keeps only
users and tracks present in train, and its users are split into validation
and test users.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SPLIT_COLUMNS = ["user_id", "track_idx", "timestamp", "count"]


class EmptySplitError(ValueError):
    pass


def first_plays(plays: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, track): first-play timestamp and play count."""
    grouped = plays.groupby(["user_id", "track_idx"], observed=True, sort=True)["timestamp"]
    pairs = grouped.agg(timestamp="min", count="size").reset_index()
    pairs["user_id"] = pairs["user_id"].astype(str)
    return pairs[SPLIT_COLUMNS]


def time_split(
    plays: pd.DataFrame,
    start_date: str,
    test_date: str,
    val_fraction: float = 0.5,
    seed: int = 42,
) -> dict[str, pd.DataFrame]:
    """Split plays into train, val and test as in the original study."""
    start, test = pd.Timestamp(start_date), pd.Timestamp(test_date)
    if test <= start:
        raise ValueError(f"split.test_date ({test_date}) must be after split.start_date ({start_date})")
    pairs = first_plays(plays[plays["timestamp"] >= start])
    train = pairs[pairs["timestamp"] < test]
    test_period = pairs[pairs["timestamp"] >= test]
    test_period = test_period[
        test_period["user_id"].isin(train["user_id"]) & test_period["track_idx"].isin(train["track_idx"])
    ]
    if train.empty or test_period.empty:
        raise EmptySplitError(
            f"the split is empty: {len(train)} train pairs from {start_date} to {test_date}, "
            f"{len(test_period)} test-period pairs on or after {test_date} for users and tracks seen in train. "
            "Move split.start_date / split.test_date inside the log's time range."
        )
    users = np.sort(test_period["user_id"].unique())
    shuffled = np.random.default_rng(seed).permutation(users)
    val_users = set(shuffled[: int(round(len(users) * val_fraction))])
    is_val = test_period["user_id"].isin(val_users)
    if is_val.all() or not is_val.any():
        raise EmptySplitError(
            f"the test period has {len(users)} users, too few to split into val and test with "
            f"split.val_fraction={val_fraction}; use a larger dataset or move split.test_date earlier"
        )
    return {
        "train": train.reset_index(drop=True),
        "val": test_period[is_val].reset_index(drop=True),
        "test": test_period[~is_val].reset_index(drop=True),
    }


def split_statistics(splits: dict[str, pd.DataFrame]) -> dict[str, dict[str, int]]:
    return {
        name: {
            "users": int(frame["user_id"].nunique()),
            "items": int(frame["track_idx"].nunique()),
            "interactions": len(frame),
        }
        for name, frame in splits.items()
    }
