"""Paired tests over per-user metric values, Holm-corrected across the comparisons of one table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    m = len(pvalues)
    order = np.argsort(pvalues, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted.tolist()


def paired_pvalues(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """Two-sided p-values of the paired t-test and the Wilcoxon signed-rank test.

    Identical value pairs give 1.0 for both (no evidence of a difference) instead of
    scipy's NaN or error. A single pair that differs gives a NaN t-test p-value: the test has
    no degrees of freedom (Holm's adjustment reads NaN as 1.0).
    """
    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    if not np.any(differences):
        return 1.0, 1.0
    t_p = stats.ttest_rel(first, second).pvalue
    if (
        np.isnan(t_p) and len(differences) > 1
    ):  # every user differs by the same amount: no variance, the t statistic is infinite
        t_p = 0.0
    return float(t_p), float(stats.wilcoxon(differences).pvalue)


def compare_runs(first: pd.DataFrame, second: pd.DataFrame, metrics: list[str], split: str = "test") -> pd.DataFrame:
    """Per metric: the two runs' means over the users of `split` and the paired p-values
    (t-test, Wilcoxon), users matched by id. Inputs are evaluate's per-user frames; runs
    that did not evaluate the same users are refused, since pairing would then drop some."""
    runs = [frame[frame["split"] == split].set_index("user_id") for frame in (first, second)]
    if runs[0].empty or set(runs[0].index) != set(runs[1].index):
        raise ValueError(
            f"the two runs evaluated different {split} users ({len(runs[0])} and {len(runs[1])}); "
            "compare runs of the same split"
        )
    second_run = runs[1].loc[runs[0].index]
    rows = []
    for metric in metrics:
        if metric not in runs[0]:
            raise ValueError(f"no metric {metric!r}; evaluate wrote: {', '.join(runs[0].columns.drop('split'))}")
        p_t, p_wilcoxon = paired_pvalues(runs[0][metric].to_numpy(), second_run[metric].to_numpy())
        rows.append(
            {
                "metric": metric,
                "first": runs[0][metric].mean(),
                "second": second_run[metric].mean(),
                "p_t": p_t,
                "p_wilcoxon": p_wilcoxon,
                "users": len(runs[0]),
            }
        )
    return pd.DataFrame(rows)
