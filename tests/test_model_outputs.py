"""What the models without training loops write and log, against hand computations: the files
`save` writes, the validation metrics `fit` logs, and the model named when a user is unknown."""

import math

import numpy as np
import pandas as pd
import pytest

from audiorec.models.ease import EASERecommender
from audiorec.models.knn import KNNRecommender
from audiorec.models.mostpop import MostPopRecommender
from audiorec.settings.base import SettingsError
from model_settings import demo

TRAIN = pd.DataFrame({"user_id": ["a", "a", "b", "b", "c"], "track_idx": [0, 1, 1, 2, 0], "count": [3, 1, 2, 1, 1]})
ITEMS = np.array([[3.0, 0.0], [0.0, 2.0], [1.0, 1.0], [2.0, 2.0]], dtype=np.float32)


class RecordingLive:
    def __init__(self):
        self.metrics, self.steps = {}, 0

    def log_metric(self, name, value):
        self.metrics[name] = value

    def next_step(self):
        self.steps += 1


def test_mostpop_saves_the_play_counts_and_logs_validation_by_hand(tmp_path):
    # Plays: track 0: 3 + 1 = 4, track 1: 1 + 2 = 3, track 2: 1, track 3: 0. Ranked among train tracks 0, 1, 2:
    # a (played 0, 1) gets [2]; b (played 1, 2) gets [0]; c (played 0) gets [1, 2].
    val = pd.DataFrame({"user_id": ["a", "b", "c"], "track_idx": [2, 0, 2]})
    live = RecordingLive()
    model = MostPopRecommender(demo("mostpop")).fit(ITEMS, TRAIN, val=val, live=live)
    # a and b: a hit at rank 1; c: its track at rank 2, NDCG 1 / log2(3).
    assert live.metrics == {"val/hitrate@50": 1.0, "val/ndcg@50": pytest.approx((2 + 1 / math.log2(3)) / 3)}
    model.save(tmp_path / "nested" / "mostpop")
    np.testing.assert_array_equal(np.load(tmp_path / "nested/mostpop/item_popularity.npy"), [4, 3, 1, 0])
    by_users = MostPopRecommender(demo("mostpop", count_by="users")).fit(ITEMS, TRAIN)
    np.testing.assert_array_equal(by_users.popularity, [2, 2, 1, 0])


def test_knn_saves_unit_mean_user_vectors_and_unit_item_vectors(tmp_path):
    model = KNNRecommender(demo("knn")).fit(ITEMS, TRAIN)
    model.save(tmp_path / "nested" / "knn")
    users = np.load(tmp_path / "nested/knn/user_representations.npy")
    items = np.load(tmp_path / "nested/knn/item_representations.npy")
    # a: mean of (3, 0) and (0, 2) = (1.5, 1) -> / sqrt(3.25); b: mean of (0, 2), (1, 1) = (0.5, 1.5); c: (3, 0).
    expected = np.array([[1.5, 1.0], [0.5, 1.5], [3.0, 0.0]])
    np.testing.assert_allclose(users, expected / np.linalg.norm(expected, axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(items, ITEMS / np.linalg.norm(ITEMS, axis=1, keepdims=True), rtol=1e-6)


def test_ease_saves_the_closed_form_weights(tmp_path):
    model = EASERecommender(demo("ease", l2=0.5)).fit(ITEMS, TRAIN)
    model.save(tmp_path / "nested" / "ease")
    x = np.zeros((3, 4))
    x[[0, 0, 1, 1, 2], [0, 1, 1, 2, 0]] = 1.0
    p = np.linalg.inv(x.T @ x + 0.5 * np.eye(4))
    np.testing.assert_allclose(
        np.load(tmp_path / "nested/ease/item_weights.npy"), np.eye(4) - p / np.diag(p), atol=1e-5
    )


@pytest.mark.parametrize(
    "model, name",
    [
        (MostPopRecommender(demo("mostpop")), "mostpop"),
        (KNNRecommender(demo("knn")), "KNN"),
        (EASERecommender(demo("ease", l2=1.0)), "EASE"),
    ],
)
def test_an_unknown_user_is_refused_naming_the_model(model, name):
    model.fit(ITEMS, TRAIN)
    with pytest.raises(
        KeyError, match=rf"1 users have no train interactions \(first: zed\); {name} cannot represent them"
    ):
        model.recommend(["a", "zed"], top_k=2)


@pytest.mark.parametrize(
    "make", [lambda: KNNRecommender(demo("knn")), lambda: EASERecommender(demo("ease", l2=1.0))], ids=["knn", "ease"]
)
def test_fit_logs_the_validation_metrics_of_the_fitted_model_as_step_0(make):
    from audiorec.models.base import validation_metrics

    val = pd.DataFrame({"user_id": ["a", "b", "c"], "track_idx": [2, 0, 2]})
    live = RecordingLive()
    model = make().fit(ITEMS, TRAIN, val=val, live=live)
    assert live.metrics == validation_metrics(model, val, TRAIN) and live.steps == 0
    assert list(model.recommend(["b", "a"], top_k=2).columns) == ["user_id", "track_idx"]


def test_ease_refuses_a_catalogue_larger_than_the_memory_and_names_the_cure(monkeypatch):
    from types import SimpleNamespace

    from audiorec.models import ease

    # 50,000 tracks in float64: one dense matrix is 8 * 50,000^2 bytes = 18.6 GiB.
    monkeypatch.setattr(ease.psutil, "virtual_memory", lambda: SimpleNamespace(available=2**30))
    with pytest.raises(
        MemoryError, match=r"one dense 50000 x 50000 float64 matrix of 18\.6 GiB, .* but 1\.0 GiB is available"
    ) as error:
        ease.check_memory(50_000, 1024, "float64")
    assert "use ease.dtype: float32 (half the memory), lower ease.batch_size" in str(error.value)
    assert str(error.value).endswith("or remove ease from params.yaml: baselines")
    with pytest.raises(MemoryError) as error:
        ease.check_memory(50_000, 1024, "float32")
    assert "matrix of 9.3 GiB" in str(error.value) and "use ease.dtype" not in str(error.value)
    # Exactly enough is enough.
    needed = ease.required_bytes(50_000, 1024, "float32")
    monkeypatch.setattr(ease.psutil, "virtual_memory", lambda: SimpleNamespace(available=needed))
    ease.check_memory(50_000, 1024, "float32")


def test_knn_item_ids_rows_reproduce_the_journal_indexing_by_hand():
    """user_rows: item_ids averages the catalogue rows numbered like the user's tracks' ranks among
    the train (and cold) tracks. Train tracks 1 and 3, cold track 2: user a's track 3 is rank 2 among
    (1, 2, 3), so row 2 stands for it; without the cold track it is rank 1 among (1, 3)."""
    train = pd.DataFrame({"user_id": ["a", "b"], "track_idx": [3, 1], "count": 1})
    with_cold = KNNRecommender(demo("knn", user_rows="item_ids")).fit(ITEMS, train, cold_items=np.array([2]))
    np.testing.assert_allclose(with_cold.user_vectors[0], ITEMS[2] / np.linalg.norm(ITEMS[2]), rtol=1e-6)
    without = KNNRecommender(demo("knn", user_rows="item_ids")).fit(ITEMS, train)
    np.testing.assert_allclose(without.user_vectors[0], ITEMS[1] / np.linalg.norm(ITEMS[1]), rtol=1e-6)
    with pytest.raises(
        SettingsError, match=r"^params\.yaml: knn\.user_rows='rows': Input should be 'tracks' or 'item_ids'$"
    ):
        demo("knn", user_rows="rows")


def test_mean_rows_and_the_journal_tower_by_hand():
    from torch import nn

    from audiorec.models.mean_user import mean_rows, mlp

    means = mean_rows(ITEMS, [np.array([0, 1]), np.array([2]), np.array([1, 2, 3])])
    np.testing.assert_allclose(means, [[1.5, 1.0], [1.0, 1.0], [1.0, 5 / 3]], rtol=1e-6)
    assert means.dtype == np.float32
    tower = mlp(3, 5)  # Linear -> ReLU -> Linear, `width` wide
    assert [type(layer) for layer in tower] == [nn.Linear, nn.ReLU, nn.Linear]
    assert (tower[0].in_features, tower[0].out_features, tower[2].in_features, tower[2].out_features) == (3, 5, 5, 5)


def test_ease_logs_the_gram_matrix_size_and_the_inversion(caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="audiorec.models.ease"):
        EASERecommender(demo("ease", l2=1.0)).fit(np.zeros((3000, 1), np.float32), TRAIN)
    # 3000^2 float32 entries: 36,000,000 bytes = 0.0335 GiB.
    assert "EASE: Gram matrix of 3000 tracks (0.0 GiB of float32)" in caplog.messages
    assert "EASE: inverting it in place (Cholesky)" in caplog.messages


def test_shared_helpers_by_hand(tmp_path):
    from audiorec.models.base import binary_matrix, validation_metrics

    twice = pd.concat([TRAIN, TRAIN.iloc[:1]])  # (a, 0) listed twice
    matrix = binary_matrix(twice, pd.Index(["a", "b", "c"]), 4)
    assert matrix.dtype == np.float32
    assert matrix.toarray().tolist() == [[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 0]]
    # Ranked among the train tracks only: track 3 (no train plays) would outscore c's val track 2.
    items = np.array([[3.0, 0.0], [0.0, 2.0], [1.0, 1.0], [5.0, 0.1]], dtype=np.float32)
    model = KNNRecommender(demo("knn")).fit(
        items, TRAIN, val=pd.DataFrame({"user_id": ["c"], "track_idx": [2]})
    )  # no live: nothing logged
    assert validation_metrics(model, pd.DataFrame({"user_id": ["c"], "track_idx": [2]}), TRAIN, k=1) == {
        "val/hitrate@1": 1.0,
        "val/ndcg@1": 1.0,
    }
    # User rows follow the sorted user ids, whatever the order of train.
    shuffled = KNNRecommender(demo("knn")).fit(ITEMS, TRAIN.iloc[::-1])
    shuffled.save(tmp_path)
    np.testing.assert_array_equal(
        np.load(tmp_path / "user_representations.npy"), KNNRecommender(demo("knn")).fit(ITEMS, TRAIN).user_vectors
    )
