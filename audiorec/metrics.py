"""Per-user ranking metrics through rs_metrics, with its sharp edges guarded.

rs_metrics' precision divides by the length of the prediction list rather
than by k, a user missing from the predictions gets NaN precision, and a
duplicated item can push NDCG above 1. Predictions are therefore
de-duplicated, every evaluated user is given a (possibly empty) list, and
precision is rescaled to hits / k.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import rs_metrics

# scipy.special, not scipy.stats: the same t quantile, and it imports in a fraction of the
# time, which every train and evaluate stage pays.
from scipy.special import stdtrit

METRICS = ("hitrate", "mrr", "precision", "recall", "ndcg")


def column(metric: str, k: int) -> str:
    return f"{metric}@{k}"


def _unique_in_order(items) -> list:
    return list(dict.fromkeys(int(item) for item in items))


def per_user_metrics(
    truth: pd.DataFrame, predictions: pd.DataFrame, ks: list[int], metrics: tuple[str, ...] = METRICS
) -> pd.DataFrame:
    """One row per user in `truth` with each of `metrics` at every k.

    `truth` has `user_id, track_idx` rows (the held-out tracks); `predictions`
    has `user_id` and a ranked `track_idx` list.
    """
    if any(k <= 0 for k in ks):
        raise ValueError(f"evaluate.ks must be positive integers, got {ks}")
    true_items = {user: items.tolist() for user, items in truth.groupby("user_id", sort=True)["track_idx"]}
    ranked = {user: _unique_in_order(items) for user, items in zip(predictions["user_id"], predictions["track_idx"])}
    pred_items = {user: ranked.get(user, []) for user in true_items}
    result = pd.DataFrame({"user_id": list(true_items)})
    for k in ks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # mean of an empty list: handled below
            for metric in metrics:
                values = getattr(rs_metrics, metric)(true=true_items, pred=pred_items, k=k, apply_mean=False)
                result[column(metric, k)] = np.asarray(values, dtype=np.float64)
        if "precision" in metrics:
            list_length = np.array([min(len(pred_items[user]), k) for user in true_items])
            result[column("precision", k)] = np.nan_to_num(result[column("precision", k)]) * list_length / k
    return result


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
