"""Metrics against values worked out by hand (log2(3) = 1.5849625) and against rs_metrics."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import rs_metrics

from audiorec.metrics import METRICS, column, per_user_metrics, summarise

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


def rs_metrics_reference(
    truth: pd.DataFrame, predictions: pd.DataFrame, ks: list[int], metrics: tuple[str, ...] = METRICS
) -> pd.DataFrame:
    """per_user_metrics as it was: rs_metrics per metric over dictionaries of the users' lists,
    deduplicated, an empty list for a user without one, precision rescaled to hits / k."""
    true_items = {user: items.tolist() for user, items in truth.groupby("user_id", sort=True)["track_idx"]}
    ranked = {
        user: list(dict.fromkeys(int(item) for item in items))
        for user, items in zip(predictions["user_id"], predictions["track_idx"])
    }
    pred_items = {user: ranked.get(user, []) for user in true_items}
    result = pd.DataFrame({"user_id": list(true_items)})
    for k in ks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # rs_metrics' precision of an empty list
            for metric in metrics:
                values = getattr(rs_metrics, metric)(true=true_items, pred=pred_items, k=k, apply_mean=False)
                result[column(metric, k)] = np.asarray(values, dtype=np.float64)
        if "precision" in metrics:
            list_length = np.array([min(len(pred_items[user]), k) for user in true_items])
            result[column("precision", k)] = np.nan_to_num(result[column("precision", k)]) * list_length / k
    return result


def random_evaluation(seed: int, n_users: int = 60, n_tracks: int = 150) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Truth of 1..10 rows per user (a track may repeat) and lists of 0..120 tracks drawn with
    replacement (so with duplicates, and hits at every depth), as numpy arrays like a parquet
    file gives; about a tenth of the users have no list, and a quarter of the listed users no truth."""
    rng = np.random.default_rng(seed)
    users = [f"u{user:03d}" for user in rng.permutation(n_users)]
    truth_users = users[: n_users * 3 // 4]
    sizes = rng.integers(1, 11, size=len(truth_users))
    truth = pd.DataFrame(
        {"user_id": np.repeat(truth_users, sizes), "track_idx": rng.integers(0, n_tracks // 3, size=sizes.sum())}
    )
    listed = [user for user in users if rng.random() > 0.1]
    # Half the lists drawn from the truth tracks' range (many hits), half from all tracks; one in ten empty.
    lengths = np.where(rng.random(len(listed)) < 0.1, 0, rng.integers(0, 121, size=len(listed)))
    lists = [rng.integers(0, n_tracks // 3 if rng.random() < 0.5 else n_tracks, size=length) for length in lengths]
    return truth, pd.DataFrame({"user_id": listed, "track_idx": lists})


def assert_same_frame(values: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert values.columns.tolist() == expected.columns.tolist()
    assert values["user_id"].tolist() == expected["user_id"].tolist()
    assert values.dtypes.tolist() == expected.dtypes.tolist()
    numbers = values.columns.drop("user_id")
    np.testing.assert_allclose(values[numbers].to_numpy(), expected[numbers].to_numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_equals_rs_metrics_on_random_lists(seed):
    truth, predictions = random_evaluation(seed)
    ks = [1, 10, 50, 100]
    assert_same_frame(per_user_metrics(truth, predictions, ks), rs_metrics_reference(truth, predictions, ks))


def test_equals_rs_metrics_for_some_metrics_any_ks_order_and_a_user_listed_twice():
    truth, predictions = random_evaluation(7)
    predictions = pd.concat(
        [predictions, predictions.iloc[:5].assign(track_idx=lambda frame: frame["track_idx"][::-1])]
    )
    ks, metrics = [50, 3, 50], ("ndcg", "hitrate", "precision")
    assert_same_frame(
        per_user_metrics(truth, predictions, ks, metrics), rs_metrics_reference(truth, predictions, ks, metrics)
    )


def test_equals_rs_metrics_with_python_lists_and_huge_or_negative_tracks():
    truth = pd.DataFrame({"user_id": [2, 1, 1, 3], "track_idx": [2**40, -5, 7, 2**40]})
    predictions = pd.DataFrame({"user_id": [1, 2, 3], "track_idx": [[7, 7, -5], [], [1.0, 2**40]]})
    assert_same_frame(per_user_metrics(truth, predictions, [1, 2]), rs_metrics_reference(truth, predictions, [1, 2]))


def test_no_lists_at_all_scores_zero_and_no_truth_gives_no_rows():
    truth, predictions = random_evaluation(8)
    none = predictions.iloc[:0]
    assert_same_frame(per_user_metrics(truth, none, [5]), rs_metrics_reference(truth, none, [5]))
    assert (per_user_metrics(truth, none, [5]).drop(columns="user_id") == 0).all().all()
    empty = truth.iloc[:0]
    assert_same_frame(per_user_metrics(empty, predictions, [5]), rs_metrics_reference(empty, predictions, [5]))


def test_fractional_truth_tracks_and_unknown_metrics_are_refused():
    truth = pd.DataFrame({"user_id": ["u"], "track_idx": [1.5]})
    with pytest.raises(ValueError, match="whole numbers"):
        per_user_metrics(truth, truth.assign(track_idx=[[1]]), ks=[1])
    with pytest.raises(ValueError, match="unknown metrics"):
        per_user_metrics(truth.astype({"track_idx": int}), truth.assign(track_idx=[[1]]), ks=[1], metrics=("mapr",))
