"""Metrics against values worked out by hand (log2(3) = 1.5849625)."""

import math

import pandas as pd
import pytest

from audiorec.metrics import per_user_metrics, summarise

IDCG_2 = 1 + 1 / math.log2(3)


@pytest.fixture
def per_user():
    truth = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3"], "track_idx": [1, 2, 5, 7]})
    predictions = pd.DataFrame(
        {
            "user_id": ["u1", "u2"],  # u3 has no predictions at all
            "track_idx": [[3, 1, 1, 2], [5, 8]],  # u1 repeats item 1; u2's list is shorter than k
        }
    )
    return per_user_metrics(truth, predictions, ks=[2, 3]).set_index("user_id")


def test_hand_worked_values_at_3(per_user):
    # u1 deduplicated: [3, 1, 2] -> hits at ranks 2 and 3.
    assert per_user.loc["u1", "hitrate@3"] == 1
    assert per_user.loc["u1", "mrr@3"] == pytest.approx(0.5)
    assert per_user.loc["u1", "precision@3"] == pytest.approx(2 / 3)
    assert per_user.loc["u1", "recall@3"] == pytest.approx(1.0)
    assert per_user.loc["u1", "ndcg@3"] == pytest.approx((1 / math.log2(3) + 1 / 2) / IDCG_2)
    # u2: [5, 8] -> hit at rank 1; precision counts the missing third slot as a miss.
    assert per_user.loc["u2", "precision@3"] == pytest.approx(1 / 3)
    assert per_user.loc["u2", "ndcg@3"] == pytest.approx(1.0)
    assert per_user.loc["u2", "mrr@3"] == pytest.approx(1.0)


def test_hand_worked_values_at_2(per_user):
    assert per_user.loc["u1", "precision@2"] == pytest.approx(0.5)
    assert per_user.loc["u1", "recall@2"] == pytest.approx(0.5)
    assert per_user.loc["u1", "ndcg@2"] == pytest.approx((1 / math.log2(3)) / IDCG_2)
    assert per_user.loc["u2", "precision@2"] == pytest.approx(0.5)


def test_user_without_predictions_scores_zero_not_nan(per_user):
    assert per_user.loc["u3"].tolist() == [0.0] * len(per_user.columns)


def test_ndcg_never_exceeds_one_with_duplicates():
    truth = pd.DataFrame({"user_id": ["u"], "track_idx": [1]})
    predictions = pd.DataFrame({"user_id": ["u"], "track_idx": [[1, 1, 1]]})
    assert per_user_metrics(truth, predictions, ks=[3])["ndcg@3"].iloc[0] == pytest.approx(1.0)


def test_student_t_interval():
    values = pd.DataFrame({"user_id": list("abcd"), "hitrate@1": [1.0, 0.0, 1.0, 1.0]})
    summary = summarise(values)["hitrate@1"]
    # sd = 0.5, se = 0.25, t(0.975, 3) = 3.182446
    assert summary["mean"] == pytest.approx(0.75)
    assert summary["ci95"] == pytest.approx(0.25 * 3.182446, rel=1e-6)
    assert summary["users"] == 4


def test_non_positive_k_is_refused():
    truth = pd.DataFrame({"user_id": ["u"], "track_idx": [1]})
    with pytest.raises(ValueError, match="evaluate.ks"):
        per_user_metrics(truth, truth.assign(track_idx=[[1]]), ks=[0])


def test_one_row_per_user_in_sorted_order_and_k_of_one():
    truth = pd.DataFrame({"user_id": ["u3", "u1", "u2", "u1"], "track_idx": [7, 1, 5, 2]})
    predictions = pd.DataFrame({"user_id": ["u2", "u1", "u3"], "track_idx": [[4, 5], [2, 9], [8]]})
    result = per_user_metrics(truth, predictions, ks=[1])
    assert result["user_id"].tolist() == ["u1", "u2", "u3"]  # sorted, as the per-user files are paired by position
    # At k = 1 only the first track counts: u1's 2 is a hit (1 of its 2 tracks), u2's 4 and u3's 8 are not.
    assert result["hitrate@1"].tolist() == [1.0, 0.0, 0.0]
    assert result["recall@1"].tolist() == [0.5, 0.0, 0.0]
    assert result["precision@1"].tolist() == [1.0, 0.0, 0.0]
    assert (result.drop(columns="user_id").dtypes == "float64").all()


def test_student_t_interval_of_two_users_and_of_one():
    two = summarise(pd.DataFrame({"user_id": ["a", "b"], "hitrate@1": [1.0, 0.0]}))["hitrate@1"]
    # sd = 0.7071068, se = 0.5, t(0.975, 1) = 12.7062047
    assert two["mean"] == 0.5 and two["ci95"] == pytest.approx(0.5 * 12.7062047, rel=1e-6) and two["users"] == 2
    one = summarise(pd.DataFrame({"user_id": ["a"], "hitrate@1": [1.0]}))["hitrate@1"]
    assert one["mean"] == 1.0 and math.isnan(one["ci95"]) and one["users"] == 1
