"""Per-user ranking metrics, vectorised over users, equal to rs_metrics' with its sharp edges guarded.

rs_metrics (the reference, tests/test_metrics.py) loops over users in Python: about 9 s per
split at Music4All's 17,000 users. Here each user's list is deduplicated keeping first
occurrences (a duplicated item can push rs_metrics' NDCG above 1), a user without
predictions has an empty list (rs_metrics' precision would be NaN), and precision is
hits / k (rs_metrics divides by the length of the list). Otherwise each metric is
rs_metrics' own on the top-k list of each user:

- hitrate: 1 if any of the list's tracks is a truth track, else 0;
- mrr: 1 / the rank of the first hit, 0 without a hit;
- precision: the hits over k;
- recall: the share of the truth rows whose track is in the list (a repeated truth track
  counts every time);
- ndcg: the sum of 1 / log2(rank + 1) over the hits, over the ideal DCG of
  min(k, distinct truth tracks) hits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# scipy.special, not scipy.stats: the same t quantile, and it imports in a fraction of the
# time, which every train and evaluate stage pays.
from scipy.special import stdtrit

METRICS = ("hitrate", "mrr", "precision", "recall", "ndcg")


def column(metric: str, k: int) -> str:
    return f"{metric}@{k}"


def _integer_tracks(values: np.ndarray) -> np.ndarray:
    """`values` as int64; refused unless they are whole numbers, as only those can equal a
    ranked track (the lists' tracks are cast to integers)."""
    tracks = values.astype(np.int64)
    if not np.array_equal(tracks, values):
        raise ValueError("truth track_idx must be whole numbers (track indices)")
    return tracks


def _ranked_entries(predictions: pd.DataFrame, users: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """The entries of the lists of `users`, list by list in rank order: each one's user (a
    position in `users`) and track, int64."""
    # A user listed twice keeps the last list, as a dictionary of the lists would.
    ranked = predictions.drop_duplicates("user_id", keep="last")
    rows = users.get_indexer(ranked["user_id"])
    lists = ranked["track_idx"].to_numpy()[rows >= 0]
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    # An empty list concatenates as float: the cast gives integers back, truncating as int() does.
    tracks = np.concatenate(list(lists)).astype(np.int64) if len(lists) else np.empty(0, dtype=np.int64)
    return np.repeat(rows[rows >= 0], lengths), tracks


def _sorted_entries(keys: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (user, track) `keys` of list entries (users `rows`, list by list in rank order) sorted,
    the first occurrence of a (user, track) ahead of its repeats, and aligned with them each
    entry's 0-based rank among the distinct tracks of its list up to it: at a first
    occurrence, its rank in the deduplicated list."""
    # A stable sort, not a hash table: 40 ms where pandas' duplicated took 200 at Music4All's shape.
    order = np.argsort(keys, kind="stable")
    by_key = keys[order]
    first = np.empty(len(keys), dtype=bool)
    first[order] = np.diff(by_key, prepend=-1) != 0
    distinct = np.cumsum(first)
    # A list's entries are contiguous and each user has one list, so a change of user starts a list.
    starts = np.diff(rows, prepend=-1) != 0
    before_list = np.maximum.accumulate(np.where(starts, distinct - first, 0))
    return by_key, (distinct - before_list - 1)[order]


def _truth_ranks(
    truth_rows: np.ndarray, truth_tracks: np.ndarray, predictions: pd.DataFrame, users: pd.Index, depth: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each truth row's 0-based rank in its user's deduplicated list (`depth` where it is not
    among the first `depth`), and whether it is the first truth row of its (user, track)."""
    entry_rows, entry_tracks = _ranked_entries(predictions, users)
    # Codes 0..n-1 of the tracks of both make user x n + code a (user, track) key within int64.
    codes, tracks = pd.factorize(np.concatenate([truth_tracks, entry_tracks]))
    truth_keys = truth_rows * len(tracks) + codes[: len(truth_tracks)]
    by_key, ranks = _sorted_entries(entry_rows * len(tracks) + codes[len(truth_tracks) :], entry_rows)
    # The leftmost equal key is the track's first occurrence in the list.
    at = np.searchsorted(by_key, truth_keys)
    listed = at < len(by_key)
    listed[listed] = by_key[at[listed]] == truth_keys[listed]
    truth_ranks = np.full(len(truth_keys), depth)
    truth_ranks[listed] = np.minimum(ranks[at[listed]], depth)
    return truth_ranks, ~pd.Series(truth_keys).duplicated().to_numpy()


def _metrics_at(
    k: int, rows: np.ndarray, ranks: np.ndarray, first_of_track: np.ndarray, n_users: int
) -> dict[str, np.ndarray]:
    """Every metric of `METRICS` at k for each user, from their truth rows' `rows` (users),
    `ranks` (_truth_ranks) and `first_of_track`. A repeated truth track counts once in all but
    recall, as in rs_metrics: the others test each of the list's tracks against the truth,
    recall each truth row against the list."""
    in_top = ranks < k
    distinct_rows = rows[first_of_track]
    hits = np.bincount(distinct_rows, weights=in_top[first_of_track], minlength=n_users)
    gain = np.where(in_top, 1 / np.log2(ranks + 2), 0.0)[first_of_track]
    ideal_hits = np.minimum(np.bincount(distinct_rows, minlength=n_users), k)
    ideal = np.cumsum(1 / np.log2(np.arange(ideal_hits.max(initial=0)) + 2))  # the ideal DCG of i + 1 hits
    first_hit = np.full(n_users, k)
    np.minimum.at(first_hit, rows, ranks)
    return {
        "hitrate": (hits > 0).astype(np.float64),
        "mrr": np.where(first_hit < k, 1 / (first_hit + 1), 0.0),
        "precision": hits / k,
        "recall": np.bincount(rows, weights=in_top, minlength=n_users) / np.bincount(rows, minlength=n_users),
        "ndcg": np.bincount(distinct_rows, weights=gain, minlength=n_users) / ideal[ideal_hits - 1],
    }


def per_user_metrics(
    truth: pd.DataFrame, predictions: pd.DataFrame, ks: list[int], metrics: tuple[str, ...] = METRICS
) -> pd.DataFrame:
    """One row per user in `truth`, sorted, with each of `metrics` (of `METRICS`) at every k.

    `truth` has `user_id, track_idx` rows (the held-out tracks); `predictions`
    has `user_id` and a ranked `track_idx` list.
    """
    if any(k <= 0 for k in ks):
        raise ValueError(f"evaluate.ks must be positive integers, got {ks}")
    if unknown := set(metrics) - set(METRICS):
        raise ValueError(f"unknown metrics {sorted(unknown)}: per_user_metrics computes {METRICS}")
    # Sorted, and a missing user id (-1) left out, as truth.groupby("user_id") gives the users.
    rows, users = pd.factorize(truth["user_id"], sort=True)
    tracks = _integer_tracks(truth["track_idx"].to_numpy()[rows >= 0])
    rows = rows[rows >= 0]
    ranks, first_of_track = _truth_ranks(rows, tracks, predictions, pd.Index(users), max(ks, default=0))
    result = {"user_id": users.tolist()}  # Python values, as the frame had when built from the users' dictionary
    for k in ks:
        values = _metrics_at(k, rows, ranks, first_of_track, len(users))
        result |= {column(metric, k): values[metric] for metric in metrics}
    return pd.DataFrame(result)


def summarise(per_user: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Mean and 95% Student-t half-width (standard error × t(0.975, n−1)) per metric column, over
    the users it is defined for: a NaN (a bucket metric of a user without a track in that bucket,
    audiorec.evaluation.beyond) is left out, and `users` counts the rest."""
    summary = {}
    for name in per_user.columns.drop("user_id"):
        values = per_user[name].to_numpy(dtype=np.float64)
        values = values[~np.isnan(values)]
        n = len(values)
        half_width = values.std(ddof=1) / np.sqrt(n) * stdtrit(n - 1, 0.975) if n > 1 else float("nan")
        mean = float(values.mean()) if n else float("nan")
        summary[name] = {"mean": mean, "ci95": float(half_width), "users": n}
    return summary


def mean_over_seeds(per_seed: list[pd.DataFrame]) -> pd.DataFrame:
    """Evaluate's per-user frames (split, user_id, metric@k...) of one model's runs, one per
    seed, as one frame: each user's metrics averaged over the seeds. The runs must have
    evaluated the same users, or an average would mix users seen by some seeds only."""
    keys = ["split", "user_id"]
    indexed = [frame.set_index(keys).sort_index() for frame in per_seed]
    for frame in indexed[1:]:
        if not frame.index.equals(indexed[0].index):
            raise ValueError("the seeds' runs evaluated different users; re-run their evaluate stages")
    if len(indexed) == 1:
        return per_seed[0]
    return pd.concat(indexed).groupby(level=keys, sort=False).mean().reset_index()
