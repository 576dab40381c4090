"""Beyond-accuracy metrics against values worked out by hand and against rs_metrics where it
defines the metric (popularity, surprisal, coverage, hitrate, recall)."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import rs_metrics
from rs_metrics.statistics import item_pop

from audiorec.evaluation import beyond
from audiorec.evaluation.beyond import (
    bucket_accuracy,
    bucket_of_tracks,
    catalogue_metrics,
    gini,
    per_user_beyond,
    track_popularity,
    train_plays,
)

SQRT_HALF = 1 / math.sqrt(2)


def log_of(pairs: dict[str, list[int]], counts: dict[str, list[int]] | None = None) -> pd.DataFrame:
    """A train log, one row per (user, track) pair, in the pipeline's columns."""
    users = [user for user, tracks in pairs.items() for _ in tracks]
    tracks = [track for user_tracks in pairs.values() for track in user_tracks]
    plays = [count for user_counts in counts.values() for count in user_counts] if counts else [1] * len(tracks)
    return pd.DataFrame(
        {"user_id": users, "track_idx": tracks, "timestamp": pd.Timestamp("2020-01-01"), "count": plays}
    )


def lists_of(ranked: dict[str, list[int]]) -> pd.DataFrame:
    return pd.DataFrame({"user_id": list(ranked), "track_idx": list(ranked.values())})


# Four train users over five tracks; track 0 played by all, 1 by a and c, 2 by b, 3 and 4 by none.
HAND_TRAIN = log_of(
    {"a": [0, 1], "b": [0, 2], "c": [0, 1], "d": [0]},
    counts={"a": [5, 1], "b": [2, 7], "c": [1, 1], "d": [1]},
)
# a repeats track 2; b's list is shorter than k; c's is empty; d has none; e has no train tracks.
HAND_PREDICTIONS = lists_of({"a": [3, 2, 2, 1, 0], "b": [1], "c": [], "e": [2, 0]})
HAND_USERS = np.array(["a", "b", "c", "d", "e"], dtype=object)
# t0 and t4 point the same way, t1 is orthogonal to them, t2 halfway (cosine 1/sqrt(2) with
# t0 and with t1), t3 is the zero vector.
HAND_VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [2.0, 0.0]])


def test_track_popularity_is_the_share_of_train_users():
    # 4 train users: t0 by 4, t1 by 2, t2 by 1, t3 and t4 by none.
    assert track_popularity(HAND_TRAIN, 5).tolist() == [1.0, 0.5, 0.25, 0.0, 0.0]


def test_train_plays_sum_the_counts():
    # t0: 5 + 2 + 1 + 1, t1: 1 + 1, t2: 7.
    assert train_plays(HAND_TRAIN, 5).tolist() == [9.0, 2.0, 7.0, 0.0, 0.0]


@pytest.fixture
def hand_beyond() -> pd.DataFrame:
    popularity = track_popularity(HAND_TRAIN, 5)
    return per_user_beyond(HAND_PREDICTIONS, HAND_TRAIN, popularity, [1, 3], HAND_USERS, HAND_VECTORS)


def test_hand_worked_popularity_and_lift(hand_beyond):
    values = hand_beyond.set_index("user_id")
    assert hand_beyond["user_id"].tolist() == ["a", "b", "c", "d", "e"]
    # a, deduplicated [3, 2, 1, 0]: @1 t3 (0), @3 (0 + 0.25 + 0.5) / 3; its history (1 + 0.5) / 2.
    assert values.loc["a", "popularity@1"] == 0.0
    assert values.loc["a", "popularity@3"] == pytest.approx(0.25)
    assert values.loc["a", "popularity_lift@3"] == pytest.approx(0.25 / 0.75)
    # b: [1] at either k, 0.5; its history (1 + 0.25) / 2.
    assert values.loc["b", "popularity@3"] == 0.5
    assert values.loc["b", "popularity_lift@1"] == pytest.approx(0.8)
    # e: [2, 0], (0.25 + 1) / 2, but no train tracks to compare with.
    assert values.loc["e", "popularity@3"] == pytest.approx(0.625)
    assert math.isnan(values.loc["e", "popularity_lift@3"])
    # c's empty list and d's missing one have nothing to average.
    assert values.loc[["c", "d"]].isna().all().all()


def test_hand_worked_novelty(hand_beyond):
    values = hand_beyond.set_index("user_id")
    # -log2: t0 0, t1 1, t2 2; the unplayed t3 counts log2(4 train users) = 2.
    assert values.loc["a", "novelty@1"] == 2.0
    assert values.loc["a", "novelty@3"] == pytest.approx(5 / 3)
    assert values.loc["b", "novelty@3"] == 1.0
    assert values.loc["e", "novelty@3"] == 1.0


def test_hand_worked_diversity(hand_beyond):
    values = hand_beyond.set_index("user_id")
    # a@3, [3, 2, 1]: t3 is zero (distance 1 to t2 and to t1), t2-t1 distance 1 - 1/sqrt(2).
    assert values.loc["a", "diversity@3"] == pytest.approx((3 - SQRT_HALF) / 3)
    # e@3, [2, 0]: one pair at distance 1 - 1/sqrt(2).
    assert values.loc["e", "diversity@3"] == pytest.approx(1 - SQRT_HALF)
    # One track or none: no pair.
    assert values[["diversity@1"]].isna().all().all()
    assert math.isnan(values.loc["b", "diversity@3"])


def test_columns_in_k_order_and_diversity_only_with_vectors(hand_beyond):
    assert hand_beyond.columns.tolist() == [
        "user_id",
        *[f"{metric}@{k}" for k in (1, 3) for metric in ("popularity", "popularity_lift", "novelty", "diversity")],
    ]
    without = per_user_beyond(HAND_PREDICTIONS, HAND_TRAIN, track_popularity(HAND_TRAIN, 5), [3], HAND_USERS)
    assert without.columns.tolist() == ["user_id", "popularity@3", "popularity_lift@3", "novelty@3"]
    assert (without.drop(columns="user_id").dtypes == "float64").all()


def test_non_positive_k_is_refused():
    with pytest.raises(ValueError, match="evaluate.ks"):
        per_user_beyond(HAND_PREDICTIONS, HAND_TRAIN, track_popularity(HAND_TRAIN, 5), [0], HAND_USERS)


def test_a_user_listed_twice_keeps_the_last_list_as_per_user_metrics_does():
    predictions = pd.DataFrame({"user_id": ["a", "a"], "track_idx": [[1], [2, 0]]})
    values = per_user_beyond(predictions, HAND_TRAIN, track_popularity(HAND_TRAIN, 5), [2], np.array(["a"]))
    assert values["popularity@2"].tolist() == [pytest.approx(0.625)]  # (0.25 + 1) / 2, not t1's 0.5


def test_track_indices_too_large_for_int32_keys_are_deduplicated_alike():
    # (2^40 + 1) x 4 positions overflows the int32 sort keys: the int64 ones take over.
    lists = beyond._top_lists(lists_of({"u": [2**40, 7, 2**40, 9]}), np.array(["u"]), 3)
    assert lists.tolist() == [[2**40, 7, 9]]


def random_study(seed: int, n_users: int = 40, n_tracks: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A train log over tracks 0..24 (25..29 unplayed) and one non-empty ranked list per user,
    drawn with replacement from all 30 tracks (so with duplicates), as numpy arrays like a
    parquet file gives."""
    rng = np.random.default_rng(seed)
    pairs = {f"u{user:02d}": rng.choice(25, size=rng.integers(1, 9), replace=False).tolist() for user in range(n_users)}
    ranked = {user: rng.integers(0, n_tracks, size=rng.integers(1, 16)) for user in pairs}
    return log_of(pairs), lists_of(ranked)


def deduplicated(predictions: pd.DataFrame) -> dict[str, list[int]]:
    return {user: list(dict.fromkeys(tracks.tolist())) for user, tracks in predictions.itertuples(index=False)}


@pytest.mark.parametrize("seed", [0, 1])
def test_means_equal_rs_metrics_popularity_and_surprisal(seed):
    train, predictions = random_study(seed)
    users = predictions["user_id"].to_numpy()
    values = per_user_beyond(predictions, train, track_popularity(train, 30), [1, 5, 10], users)
    ranked = deduplicated(predictions)
    for k in (1, 5, 10):
        log_columns = {"user_col": "user_id", "item_col": "track_idx"}
        expected_popularity = rs_metrics.popularity(train, ranked, k, **log_columns)
        assert values[f"popularity@{k}"].mean() == pytest.approx(expected_popularity, rel=1e-12)
        assert values[f"novelty@{k}"].mean() == pytest.approx(rs_metrics.surprisal(train, ranked, k, **log_columns))


def test_track_popularity_equals_rs_metrics_item_pop():
    train, _ = random_study(2)
    expected = item_pop(train, "user_id", "track_idx").reindex(range(30), fill_value=0.0)
    np.testing.assert_allclose(track_popularity(train, 30), expected.to_numpy(), rtol=1e-15)


def pairwise_diversity(tracks: list[int], vectors: np.ndarray) -> float:
    """The mean cosine distance over the pairs, one pair at a time."""
    distances = []
    for first in range(len(tracks)):
        for second in range(first + 1, len(tracks)):
            u, v = vectors[tracks[first]], vectors[tracks[second]]
            norms = np.linalg.norm(u) * np.linalg.norm(v)
            distances.append(1 - (u @ v / norms if norms else 0.0))
    return float(np.mean(distances)) if distances else float("nan")


def test_diversity_equals_the_pairwise_definition_on_random_lists():
    train, predictions = random_study(3)
    vectors = np.random.default_rng(3).standard_normal((30, 4))
    vectors[7] = 0.0  # a zero vector: cosine 0 with everything
    users = predictions["user_id"].to_numpy()
    values = per_user_beyond(predictions, train, track_popularity(train, 30), [4, 12], users, vectors)
    for k in (4, 12):
        expected = [pairwise_diversity(tracks[:k], vectors) for tracks in deduplicated(predictions).values()]
        np.testing.assert_allclose(values[f"diversity@{k}"], expected, rtol=1e-12, atol=1e-12)


def test_float32_vectors_give_the_float64_diversity_to_single_precision():
    train, predictions = random_study(9)
    vectors = np.random.default_rng(9).standard_normal((30, 16))
    users = predictions["user_id"].to_numpy()
    arguments = (predictions, train, track_popularity(train, 30), [15], users)
    double = per_user_beyond(*arguments, vectors)["diversity@15"]
    single = per_user_beyond(*arguments, vectors.astype(np.float32))["diversity@15"]
    np.testing.assert_allclose(single, double, atol=1e-5)


def test_diversity_of_identical_vectors_is_0_and_of_orthogonal_ones_1():
    predictions = lists_of({"u": [0, 1, 2, 3]})
    users = np.array(["u"], dtype=object)
    train = log_of({"u": [0]})

    def diversity(vectors: np.ndarray) -> float:
        return per_user_beyond(predictions, train, np.ones(4), [4], users, vectors)["diversity@4"].iloc[0]

    assert diversity(np.tile([[1.0, 2.0, 3.0]], (4, 1))) == pytest.approx(0.0, abs=1e-12)
    assert diversity(np.eye(4)) == pytest.approx(1.0, abs=1e-12)
    assert diversity(np.zeros((4, 3))) == 1.0  # no direction at all: cosine 0 by convention


def test_diversity_is_the_same_across_batch_boundaries(monkeypatch):
    train, predictions = random_study(4)
    vectors = np.random.default_rng(4).standard_normal((30, 3))
    users = np.r_[predictions["user_id"].to_numpy(), ["absent"]]
    arguments = (predictions, train, track_popularity(train, 30), [3, 10], users, vectors)
    one_batch = per_user_beyond(*arguments)
    monkeypatch.setattr(beyond, "DIVERSITY_BATCH", 7)  # 41 users: five full batches and one of 6
    pd.testing.assert_frame_equal(per_user_beyond(*arguments), one_batch, rtol=1e-13)


def test_hand_worked_buckets_break_ties_by_track_index():
    # Catalogue [0, 1, 2, 4, 5, 6] by plays: 1 (9), then 0, 2, 6 (5 each, by index), 4 (1), 5 (0).
    # Head ceil(0.3 x 6) = 2: 1 and 0; tail floor(0.4 x 6) = 2: 4 and 5; 3 and 7 are not ranked.
    plays = np.array([5, 9, 5, 100, 1, 0, 5, 50])
    bucket = bucket_of_tracks(plays, np.array([0, 1, 2, 4, 5, 6]), 0.3, 0.4)
    assert bucket.tolist() == [0, 0, 1, -1, 2, 2, 1, -1]


def test_bucket_sizes_are_not_moved_by_rounding():
    # In binary floating point 0.07 x 100 is 7.000000000000001 and 0.29 x 100 28.999999999999996:
    # still a head of 7 and a tail of 29.
    bucket = bucket_of_tracks(np.arange(100.0), np.arange(100), 0.07, 0.29)
    assert np.bincount(bucket).tolist() == [7, 64, 29]


@pytest.mark.parametrize("head, tail", [(0.0, 0.5), (0.2, 0.0), (0.6, 0.5)])
def test_invalid_bucket_shares_name_the_setting(head, tail):
    with pytest.raises(ValueError, match="evaluate.popularity_buckets"):
        bucket_of_tracks(np.ones(4), np.arange(4), head, tail)


HAND_BUCKET = np.array([0, 0, 1, -1, 2, 2, 1, -1])  # the tie-breaking test's buckets


def test_hand_worked_bucket_accuracy():
    truth = pd.DataFrame(
        {
            # u1: head 1 and 0, mid 2, and 3 outside the catalogue; u2: tail 4; u3: tail 5, mid 6;
            # u4: nothing; zz is not evaluated.
            "user_id": ["u1", "u1", "u1", "u1", "u2", "u3", "u3", "zz"],
            "track_idx": [1, 0, 2, 3, 4, 5, 6, 1],
        }
    )
    # u1 deduplicated: [2, 0, 1, 5]; u3 has no list.
    predictions = lists_of({"u1": [2, 0, 0, 1, 5], "u2": [4], "u4": [1, 2]})
    users = np.array(["u1", "u2", "u3", "u4"], dtype=object)
    values = bucket_accuracy(truth, predictions, HAND_BUCKET, [1, 2, 3], users).set_index("user_id")
    # u1@1 [2]: the mid track only; @2 [2, 0]: one head track of two; @3 [2, 0, 1]: both (the
    # repeated 0 takes no slot).
    assert values.loc["u1", ["hitrate_head@1", "recall_head@1"]].tolist() == [0.0, 0.0]
    assert values.loc["u1", ["hitrate_mid@1", "recall_mid@1"]].tolist() == [1.0, 1.0]
    assert values.loc["u1", ["hitrate_head@2", "recall_head@2"]].tolist() == [1.0, 0.5]
    assert values.loc["u1", ["hitrate_head@3", "recall_head@3"]].tolist() == [1.0, 1.0]
    assert values.loc["u1", ["hitrate_tail@3", "recall_tail@3"]].isna().all()
    assert values.loc["u2", ["hitrate_tail@1", "recall_tail@1"]].tolist() == [1.0, 1.0]
    assert values.loc["u2", ["hitrate_head@1", "hitrate_mid@1"]].isna().all()
    assert values.loc["u3", ["hitrate_tail@3", "recall_tail@3", "hitrate_mid@3", "recall_mid@3"]].tolist() == [0.0] * 4
    assert values.loc["u4"].isna().all()
    assert values.columns.tolist()[:6] == [
        f"{metric}_{bucket}@1" for bucket in ("head", "mid", "tail") for metric in ("hitrate", "recall")
    ]


@pytest.mark.parametrize("seed", [5, 6])
def test_bucket_accuracy_equals_rs_metrics_on_the_bucket_s_truth(seed):
    rng = np.random.default_rng(seed)
    train, predictions = random_study(seed)
    users = np.r_[predictions["user_id"].to_numpy()[3:], ["absent"]]  # three listed users not evaluated
    truth = pd.DataFrame(
        {"user_id": rng.choice(users, size=120), "track_idx": rng.integers(0, 30, size=120)}
    ).drop_duplicates()
    catalogue = np.sort(train["track_idx"].unique())
    bucket = bucket_of_tracks(train_plays(train, 30), catalogue, 0.2, 0.5)
    values = bucket_accuracy(truth, predictions, bucket, [1, 5, 10], users)
    ranked = deduplicated(predictions)
    for index, name in enumerate(beyond.BUCKETS):
        in_bucket = truth[bucket[truth["track_idx"]] == index]
        true = in_bucket.groupby("user_id")["track_idx"].agg(list).to_dict()
        rows = values.set_index("user_id").loc[list(true)]
        assert values.set_index("user_id").drop(index=list(true)).filter(like=f"_{name}@").isna().all().all()
        for k in (1, 5, 10):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                expected_hitrate = rs_metrics.hitrate(true, ranked, k, apply_mean=False)
                expected_recall = rs_metrics.recall(true, ranked, k, apply_mean=False)
            np.testing.assert_array_equal(rows[f"hitrate_{name}@{k}"], expected_hitrate)
            np.testing.assert_allclose(rows[f"recall_{name}@{k}"], expected_recall, rtol=1e-15)


def test_hand_worked_catalogue_metrics():
    # Catalogue of six tracks; u5 recommends only tracks outside it; u6's list is empty.
    predictions = lists_of({"u1": [2, 0, 0, 1, 5], "u2": [4], "u4": [1, 2], "u5": [7, 3], "u6": []})
    metrics = catalogue_metrics(predictions, np.array([0, 1, 2, 4, 5, 6]), [1, 3])
    # @1: 2, 4 and 1 once each -> 3 of 6; gini([0, 0, 0, 1, 1, 1]) = 2 x 15 / (6 x 3) - 7/6 = 1/2.
    assert metrics["coverage@1"] == 0.5 and metrics["gini@1"] == pytest.approx(0.5)
    # @3: [2, 0, 1], [4], [1, 2] -> 0: 1, 1: 2, 2: 2, 4: 1; gini([0, 0, 1, 1, 2, 2]) = 2 x 29 / 36 - 7/6 = 4/9.
    assert metrics["coverage@3"] == pytest.approx(4 / 6) and metrics["gini@3"] == pytest.approx(4 / 9)
    assert list(metrics) == ["coverage@1", "gini@1", "coverage@3", "gini@3"]


def test_coverage_equals_rs_metrics():
    train, predictions = random_study(7, n_users=12)
    catalogue = np.sort(train["track_idx"].unique())
    metrics = catalogue_metrics(predictions, catalogue, [1, 3, 10])
    for k in (1, 3, 10):
        assert metrics[f"coverage@{k}"] == rs_metrics.coverage(catalogue, deduplicated(predictions), k)


def test_hand_worked_gini():
    # [0, 0, 0, 1]: 2 x (4 x 1) / (4 x 1) - 5/4; [1, 1, 1, 1]: 2 x 10 / (4 x 4) - 5/4.
    assert gini(np.array([0, 0, 0, 1])) == pytest.approx(0.75)
    assert gini(np.array([1, 1, 1, 1])) == pytest.approx(0.0)
    assert gini(np.zeros(3)) == 0.0
    assert math.isnan(gini(np.array([])))


def test_gini_equals_the_mean_absolute_difference_formula():
    counts = np.random.default_rng(8).poisson(2.0, size=50)
    mean_difference = np.abs(counts[:, None] - counts[None, :]).sum() / (2 * len(counts) ** 2 * counts.mean())
    assert gini(counts) == pytest.approx(mean_difference, rel=1e-12)


@pytest.mark.parametrize("split", ["val", "cold"])
def test_split_metrics_equal_the_public_functions_one_by_one(split):
    train, predictions = random_study(10)
    # u05 listed twice: the last list counts; three listed users not evaluated, one evaluated without a list.
    predictions = pd.concat([predictions, lists_of({"u05": np.array([3, 3, 7])})], ignore_index=True)
    users = np.r_[predictions["user_id"].unique()[3:], ["absent"]]
    rng = np.random.default_rng(10)
    truth = pd.DataFrame(
        {"user_id": rng.choice(users, size=100), "track_idx": rng.integers(0, 30, size=100)}
    ).drop_duplicates()
    vectors = rng.standard_normal((30, 4))
    ks = [10, 1, 5]
    per_user, by_run = beyond.split_metrics(
        beyond.Catalogue.of(train, 30, 0.2, 0.5, vectors), split, truth, predictions, ks, users
    )
    expected = per_user_beyond(predictions, train, track_popularity(train, 30), ks, users, vectors)
    hot_tracks = np.sort(train["track_idx"].unique())
    if split == "cold":
        expected = expected[["user_id", *[f"diversity@{k}" for k in ks]]]
        ranked_tracks = np.unique(truth["track_idx"])
    else:
        bucket = bucket_of_tracks(train_plays(train, 30), hot_tracks, 0.2, 0.5)
        expected = expected.merge(bucket_accuracy(truth, predictions, bucket, ks, users), on="user_id")
        ranked_tracks = hot_tracks
    pd.testing.assert_frame_equal(per_user, expected, check_exact=True)
    assert by_run == {
        name: {"value": value} for name, value in catalogue_metrics(predictions, ranked_tracks, ks).items()
    }
