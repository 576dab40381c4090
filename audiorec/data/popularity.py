"""How skewed a log's popularity is: the Gini coefficient, and the share of the top tracks.

The built-in dataset is generated to match a real Music4All-Onion month on these (docs/data.md),
and the evaluation measures how evenly a model's lists spread over the catalogue with the same
coefficient (audiorec.evaluation.beyond).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TOP_SHARE = 0.2


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts: 0 when all are equal, (n - 1) / n when one holds
    everything; 0 for all-zero counts, NaN for none. G = 2 sum_i i x_(i) / (n sum x) - (n + 1) / n,
    the x_(i) ascending, i = 1..n."""
    n = len(counts)
    if n == 0:
        return float("nan")
    ascending = np.sort(np.asarray(counts, dtype=np.float64))
    total = ascending.sum()
    if total == 0:
        return 0.0
    weighted = np.dot(np.arange(1, n + 1, dtype=np.float64), ascending)
    return float(2 * weighted / (n * total) - (n + 1) / n)


def top_share(counts: np.ndarray, share: float = TOP_SHARE) -> float:
    """The part of the total held by the largest ceil(share * n) counts."""
    descending = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    return float(descending[: int(np.ceil(share * len(descending)))].sum() / descending.sum())


def skew(train: pd.DataFrame) -> dict[str, float]:
    """The train split's popularity skew over the tracks it holds: Gini of the (user, track) pairs per
    track and of the plays per track, and the share of pairs on the most-played 20% of tracks."""
    pairs = train.groupby("track_idx").size().to_numpy()
    plays = train.groupby("track_idx")["count"].sum().to_numpy()
    return {
        "gini_of_pairs": round(gini(pairs), 4),
        "gini_of_plays": round(gini(plays), 4),
        "top20_share_of_pairs": round(top_share(pairs), 4),
    }
