import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audiorec.evaluation.report import Run, model_table, to_markdown
from audiorec.evaluation.significance import compare_runs, holm, paired_pvalues


def test_holm_by_hand():
    # sorted: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04); back in input order.
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    # monotone: a later raw product below an earlier one is raised to it; capped at 1.
    assert holm([0.5, 0.001, 0.3]) == pytest.approx([0.6, 0.003, 0.6])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])


def test_identical_runs_are_not_different():
    values = np.random.default_rng(0).random(50)
    assert paired_pvalues(values, values.copy()) == (1.0, 1.0)


def test_one_user_is_no_evidence_for_the_t_test_and_a_constant_shift_of_many_is():
    # One pair: the paired t-test has n - 1 = 0 degrees of freedom, so it gives no p-value (not 0);
    # Wilcoxon's exact p for one nonzero difference is 1 (both signs equally likely: 2 * 1/2).
    p_t, p_wilcoxon = paired_pvalues(np.array([0.5]), np.array([0.2]))
    assert np.isnan(p_t) and p_wilcoxon == pytest.approx(1.0)
    # Ten users all better by 0.1: no variance, an infinite t statistic, p = 0.
    p_t, _ = paired_pvalues(np.full(10, 0.6), np.full(10, 0.5))
    assert p_t == 0.0
    # Holm reads the missing p-value as no evidence.
    assert holm([float("nan"), 0.01]) == pytest.approx([1.0, 0.02])


def _run(backend, hits):
    users = [f"u{i:03d}" for i in range(len(hits))]
    metrics = {f"{metric}@50": hits for metric in ("hitrate", "mrr", "precision", "recall", "ndcg")}
    return Run(backend, "knn", 8, (pd.DataFrame({"split": "test", "user_id": users, **metrics}),))


def test_planted_difference_is_found_and_noise_is_not():
    rng = np.random.default_rng(1)
    strong = (rng.random(300) < 0.6).astype(float)
    weak = np.where(rng.random(300) < 0.5, 0.0, strong)  # half of strong's hits lost: a large paired drop
    twin = strong.copy()
    twin[rng.choice(300, 4, replace=False)] = 1 - twin[rng.choice(300, 4, replace=False)]  # a few flips
    runs = [_run("weak", weak), _run("strong", strong), _run("twin", twin)]
    table = model_table(runs, k=50).set_index("backend")
    assert np.isnan(table.loc["strong", "p_t_holm"])
    assert table.loc["weak", "p_t_holm"] < 1e-6 and table.loc["weak", "p_wilcoxon_holm"] < 1e-6
    assert table.loc["twin", "p_t_holm"] > 0.05 and table.loc["twin", "p_wilcoxon_holm"] > 0.05
    # Two comparisons; weak has the smaller raw p, so Holm doubles it.
    assert table.loc["weak", "p_t_holm"] == pytest.approx(2 * stats.ttest_rel(strong, weak).pvalue)
    markdown = to_markdown({"knn": model_table(runs, k=50)}, k=50)
    assert "| best" in markdown and "*" in markdown.split("weak")[1].splitlines()[0]


def test_compare_runs_pairs_users_by_id_whatever_their_order():
    users = [f"u{i}" for i in range(6)]
    first = pd.DataFrame({"user_id": users, "split": "test", "hitrate@50": [1.0, 1, 1, 0, 1, 1]})
    # The second run lists the same users in reverse order; each user's value is 0.5 lower.
    second = pd.DataFrame({"user_id": users[::-1], "split": "test", "hitrate@50": [0.5, 0.5, -0.5, 0.5, 0.5, 0.5]})
    row = compare_runs(first, second, ["hitrate@50"]).iloc[0]
    assert (row["first"], row["second"], row["users"]) == (pytest.approx(5 / 6), pytest.approx(1 / 3), 6)
    assert row["p_t"] == 0.0  # the same difference for every user once paired by id


def test_compare_runs_refuses_runs_of_different_users():
    first = pd.DataFrame({"user_id": ["a", "b"], "split": "test", "ndcg@50": [0.1, 0.2]})
    second = pd.DataFrame({"user_id": ["a", "c"], "split": "test", "ndcg@50": [0.1, 0.2]})
    with pytest.raises(ValueError, match="different test users"):
        compare_runs(first, second, ["ndcg@50"])


def test_compare_runs_names_its_columns_and_a_metric_evaluate_did_not_write():
    first = pd.DataFrame(
        {"user_id": ["a", "b", "c"], "split": "test", "hitrate@50": [1.0, 0.0, 1.0], "ndcg@50": [0.5, 0.0, 0.2]}
    )
    second = first.assign(**{"hitrate@50": [0.0, 0.0, 1.0]})
    table = compare_runs(first, second, ["hitrate@50"])
    assert list(table.columns) == ["metric", "first", "second", "p_t", "p_wilcoxon", "users"]
    assert (
        table.iloc[0]["metric"] == "hitrate@50"
        and table.iloc[0]["p_wilcoxon"] == stats.wilcoxon([1.0, 0.0, 0.0]).pvalue
    )
    # A metric only the second run has is still unknown: the first run's columns are what evaluate wrote.
    with pytest.raises(ValueError, match=r"^no metric 'mrr@50'; evaluate wrote: hitrate@50, ndcg@50$"):
        compare_runs(first, second.assign(**{"mrr@50": 1.0}), ["mrr@50"])
    with pytest.raises(
        ValueError, match=r"evaluated different test users \(0 and 3\); compare runs of the same split$"
    ):
        compare_runs(first.assign(split="val"), second, ["hitrate@50"])
