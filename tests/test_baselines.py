from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from audiorec.models import ease
from audiorec.models.ease import (
    EASERecommender,
    ease_weights,
    gram_matrix,
    invert_spd_in_place,
    mirror_upper_triangle,
    required_bytes,
)
from audiorec.models.mostpop import MostPopRecommender
from audiorec.retrieval import top_k_by_score
from audiorec.settings.base import SettingsError
from scipy import sparse
from model_settings import demo

# 4 users x 4 tracks, binary.
X = np.array(
    [
        [1, 1, 0, 0],
        [1, 1, 1, 0],
        [0, 1, 1, 1],
        [0, 0, 1, 1],
    ],
    dtype=np.float64,
)


def frame(matrix, counts=None):
    users, tracks = np.nonzero(matrix)
    counts = np.ones(len(users), dtype=int) if counts is None else counts
    return pd.DataFrame({"user_id": [f"u{u}" for u in users], "track_idx": tracks, "count": counts})


def test_ease_equals_per_track_ridge_regression():
    # EASE's closed form solves, for each track j, ridge regression of column j on the other columns.
    l2 = 0.5
    expected = np.zeros((4, 4))
    for j in range(4):
        others = [i for i in range(4) if i != j]
        A = X[:, others]
        expected[others, j] = np.linalg.solve(A.T @ A + l2 * np.eye(3), A.T @ X[:, j])
    weights = ease_weights(sparse.csr_matrix(X.astype(np.float32)), l2)
    np.testing.assert_allclose(weights, expected, rtol=1e-4, atol=1e-5)
    assert np.all(np.diag(weights) == 0)


def test_ease_recommends_unseen_by_regression_scores():
    model = EASERecommender(demo("ease", l2=0.5)).fit(np.zeros((4, 0), dtype=np.float32), frame(X))
    ranked = model.recommend(["u0", "u3"], top_k=2)
    scores = X @ ease_weights(sparse.csr_matrix(X.astype(np.float32)), 0.5)
    for user, tracks in zip([0, 3], ranked["track_idx"]):
        unseen = np.flatnonzero(X[user] == 0)
        assert list(tracks) == list(unseen[np.argsort(-scores[user, unseen], kind="stable")])


@pytest.mark.parametrize(
    "model", [EASERecommender(demo("ease", l2=0.5)), MostPopRecommender(demo("mostpop"))], ids=["ease", "mostpop"]
)
def test_interactions_only_models_rank_within_candidates_but_not_cold_tracks(model):
    model.fit(np.zeros((4, 0), dtype=np.float32), frame(X))
    assert not model.ranks_cold_tracks
    ranked = model.recommend(["u0", "u3"], top_k=4, candidates=np.array([1, 3]))
    for user, tracks in zip([0, 3], ranked["track_idx"]):
        assert set(tracks.tolist()) == {1, 3} - set(np.flatnonzero(X[user]).tolist())


def random_interactions(n_users=60, n_items=25, density=0.2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n_users, n_items)) < density).astype(np.float64)


def textbook_ease(matrix, l2):
    """Steck's formula with numpy.linalg.inv in float64: B = -P / diag(P), zero diagonal."""
    inverse = np.linalg.inv(matrix.T @ matrix + l2 * np.eye(matrix.shape[1]))
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-5), ("float64", 1e-12)])
def test_ease_weights_match_the_textbook_inverse(dtype, tolerance):
    matrix = random_interactions()
    weights = ease_weights(sparse.csr_matrix(matrix), 3.0, dtype)
    assert weights.dtype == np.dtype(dtype)
    np.testing.assert_allclose(weights, textbook_ease(matrix, 3.0), rtol=0, atol=tolerance)
    assert np.all(np.diag(weights) == 0)


def test_gram_matrix_built_in_blocks_equals_the_dense_product(monkeypatch):
    matrix = random_interactions(n_items=11)
    monkeypatch.setattr(ease, "GRAM_BLOCK_ENTRIES", 3 * 11)  # blocks of 3 rows; the last one has 2
    gram = gram_matrix(sparse.csr_matrix(matrix), 2.5)
    assert gram.dtype == np.float32 and gram.flags.c_contiguous
    np.testing.assert_array_equal(gram, matrix.T @ matrix + 2.5 * np.eye(11))


def test_inverse_overwrites_the_matrix_and_mirrors_tiles():
    matrix = random_interactions(n_items=10)
    spd = matrix.T @ matrix + np.eye(10)
    inverted = spd.copy()
    invert_spd_in_place(inverted)
    np.testing.assert_allclose(inverted, np.linalg.inv(spd), atol=1e-12)
    upper = np.triu(np.arange(49.0).reshape(7, 7))
    mirror_upper_triangle(upper, tile=3)
    np.testing.assert_array_equal(upper, np.triu(upper) + np.triu(upper, 1).T)
    assert upper[6, 0] == 6.0 and upper[5, 4] == 4 * 7 + 5


def test_inverse_refuses_a_matrix_that_is_not_positive_definite():
    with pytest.raises(np.linalg.LinAlgError, match=r"not positive definite in float64 .*track index 1 of 2.*ease\.l2"):
        invert_spd_in_place(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(TypeError, match="needs a C-ordered float32/float64 matrix, got int64"):
        invert_spd_in_place(2 * np.eye(3, dtype=np.int64))  # LAPACK would invert a copy and lose it


def test_ease_refuses_a_catalogue_too_big_for_memory(monkeypatch):
    # Music4All's 56,512 tracks fit a 24 GiB machine: one float32 matrix (11.9 GiB) plus scoring.
    assert 4 * 56_512**2 < required_bytes(56_512) < 24 * 2**30
    assert required_bytes(56_512, dtype="float64") > 8 * 56_512**2
    monkeypatch.setattr(ease.psutil, "virtual_memory", lambda: SimpleNamespace(available=2**30))
    expected = required_bytes(20_000) / 2**30
    message = (
        rf"EASE on 20000 tracks needs about {expected:.1f} GiB .* "
        rf"but 1\.0 GiB is available: {expected - 1:.1f} GiB short"
    )
    with pytest.raises(MemoryError, match=message):
        EASERecommender(demo("ease")).fit(np.zeros((20_000, 0), dtype=np.float32), frame(X))
    with pytest.raises(MemoryError, match="use ease.dtype: float32"):
        EASERecommender(demo("ease", dtype="float64")).fit(np.zeros((20_000, 0), dtype=np.float32), frame(X))


def test_ease_rejects_an_unknown_dtype():
    # Refused when the settings are built, naming the key and the allowed values.
    with pytest.raises(SettingsError, match=r"ease\.dtype='float16': Input should be 'float32' or 'float64'"):
        demo("ease", dtype="float16")


def test_mostpop_ranks_by_plays_or_listeners_and_breaks_ties_by_track_index():
    # Track plays: t0 = 2+1 = 3, t1 = 1+1+1 = 3, t2 = 5, t3 = 1; listeners: t0 2, t1 3, t2 1, t3 1.
    train = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "c", "d"],
            "track_idx": [0, 1, 0, 1, 1, 2],
            "count": [2, 1, 1, 1, 1, 5],
        }
    )
    train = pd.concat([train, pd.DataFrame({"user_id": ["d"], "track_idx": [3], "count": [1]})], ignore_index=True)
    items = np.zeros((5, 0), dtype=np.float32)  # t4 never played
    by_plays = MostPopRecommender(demo("mostpop", count_by="plays")).fit(items, train)
    assert list(by_plays.recommend(["c"], top_k=4)["track_idx"][0]) == [2, 0, 3, 4]  # t1 seen; t0 ties nothing
    assert list(by_plays.recommend(["d"], top_k=3)["track_idx"][0]) == [
        0,
        1,
        4,
    ]  # t0 and t1 tie at 3: lower index first
    by_users = MostPopRecommender(demo("mostpop", count_by="users")).fit(items, train)
    assert list(by_users.recommend(["d"], top_k=3)["track_idx"][0]) == [1, 0, 4]
    with pytest.raises(SettingsError, match=r"mostpop\.count_by='likes': Input should be 'plays' or 'users'"):
        demo("mostpop", count_by="likes")


def test_top_k_by_score_skips_seen_and_returns_what_is_left():
    scores = np.array([[0.1, 0.9, 0.9, 0.5], [1.0, 1.0, 1.0, 1.0]])
    ranked = top_k_by_score(scores, [np.array([1]), np.array([0, 1, 2])], top_k=3)
    assert ranked[0].tolist() == [2, 3, 0]
    assert ranked[1].tolist() == [3]
