"""The Music4All-Onion time split of the original study.

Plays from `start_date` on are collapsed to one row per (user, track) with the
first-play time and the play count. A pair first played before `test_date`
is training data; one first played on or after it belongs to the test period,
so every test row is a track new to that user. The test period keeps only
users present in train, and its users are split into validation and test users.

Tracks absent from train ("cold" tracks, released during the test period) are
dropped in the RecSys version. With `cold_start` (the journal follow-up) their
rows become a separate `cold_test` split instead; the hot val and test splits
keep only tracks seen in train, and validation users are drawn from the users
without cold tracks, so every cold row belongs to a test user.
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
    cold_start: bool = False,
) -> dict[str, pd.DataFrame]:
    """Split plays into train, val, test and cold_test (empty unless `cold_start`).

    `val_fraction` is the share of test-period users that become validation
    users; with `cold_start` they are drawn from the users without cold tracks.
    """
    start, test = pd.Timestamp(start_date), pd.Timestamp(test_date)
    if test <= start:
        raise ValueError(f"split.test_date ({test_date}) must be after split.start_date ({start_date})")
    pairs = first_plays(plays[plays["timestamp"] >= start])
    train = pairs[pairs["timestamp"] < test]
    test_period = pairs[(pairs["timestamp"] >= test) & pairs["user_id"].isin(train["user_id"])]
    is_cold = ~test_period["track_idx"].isin(train["track_idx"])
    cold = test_period[is_cold] if cold_start else test_period.iloc[:0]
    users = np.sort(test_period[~is_cold | cold_start]["user_id"].unique())
    test_period = test_period[~is_cold]
    if train.empty or test_period.empty:
        raise EmptySplitError(
            f"the split is empty: {len(train)} train pairs from {start_date} to {test_date}, "
            f"{len(test_period)} test-period pairs on or after {test_date} for users and tracks seen in train. "
            "Move split.start_date / split.test_date inside the log's time range."
        )
    val_users = draw_val_users(users, np.setdiff1d(users, cold["user_id"].unique()), val_fraction, seed)
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
        "cold_test": cold.reset_index(drop=True),
    }


def draw_val_users(users: np.ndarray, eligible: np.ndarray, val_fraction: float, seed: int) -> set[str]:
    """`val_fraction` of `users`, drawn at random from the sorted `eligible` ones."""
    wanted = int(round(len(users) * val_fraction))
    if wanted > len(eligible):
        raise EmptySplitError(
            f"split.val_fraction={val_fraction} asks for {wanted} validation users, but only {len(eligible)} of the "
            f"{len(users)} test-period users have no cold tracks; lower split.val_fraction"
        )
    return set(np.random.default_rng(seed).permutation(eligible)[:wanted])


def split_statistics(splits: dict[str, pd.DataFrame], plays: pd.DataFrame, start_date: str) -> dict[str, dict[str, int]]:
    """Users, tracks and pairs per split, and the plays no split window holds (those before `start_date`)."""
    ignored = {"ignored": {"plays_before_start_date": int((plays["timestamp"] < pd.Timestamp(start_date)).sum())}}
    return ignored | {
        name: {
            "users": int(frame["user_id"].nunique()),
            "items": int(frame["track_idx"].nunique()),
            "interactions": len(frame),
        }
        for name, frame in splits.items()
    }
