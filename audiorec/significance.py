"""Paired tests over per-user metric values, Holm-corrected across the comparisons of one table."""
from __future__ import annotations

import numpy as np
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
    scipy's NaN or error.
    """
    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    if not np.any(differences):
        return 1.0, 1.0
    t_p = stats.ttest_rel(first, second).pvalue
    if np.isnan(t_p):  # every user differs by the same amount: no variance, the t statistic is infinite
        t_p = 0.0
    return float(t_p), float(stats.wilcoxon(differences).pvalue)
