import numpy as np
import pandas as pd
import pytest

from audiorec.models.knn import KNNRecommender
from audiorec.retrieval import top_k_unseen
from model_settings import demo


def test_exactly_k_unseen_items_in_score_order():
    # Item i has score i for the single user: the ranking is 9, 8, 7, ...
    items = np.eye(10, dtype=np.float32)
    user = np.arange(10, dtype=np.float32)[None, :]
    seen = [np.array([9, 7, 6, 5])]
    (ranked,) = top_k_unseen(user, items, seen, top_k=3)
    assert ranked.tolist() == [8, 4, 3]


def test_users_with_long_histories_still_get_k_items():
    rng = np.random.default_rng(0)
    items = rng.normal(size=(50, 4)).astype(np.float32)
    users = rng.normal(size=(3, 4)).astype(np.float32)
    seen = [np.arange(0), np.arange(40), rng.choice(50, 45, replace=False)]
    ranked = top_k_unseen(users, items, seen, top_k=5, batch_size=2)
    for user, items_for_user in enumerate(ranked):
        assert len(items_for_user) == 5
        assert len(set(items_for_user.tolist())) == 5
        assert not set(items_for_user.tolist()) & set(seen[user].tolist())
        scores = items @ users[user]
        unseen = np.setdiff1d(np.arange(50), seen[user])
        expected = unseen[np.argsort(-scores[unseen], kind="stable")][:5]
        assert items_for_user.tolist() == expected.tolist()


def test_small_catalogue_returns_every_unseen_item():
    items = np.eye(4, dtype=np.float32)
    (ranked,) = top_k_unseen(np.ones((1, 4), np.float32), items, [np.array([0])], top_k=10)
    assert sorted(ranked.tolist()) == [1, 2, 3]


def test_knn_user_is_mean_of_train_tracks():
    # Two clusters on the axes; user u listened to items 0 and 1 (near the x axis).
    items = np.array([[1, 0.1], [1, -0.1], [0.9, 0], [0, 1], [0.1, 1], [-0.1, 1]], dtype=np.float32)
    train = pd.DataFrame({"user_id": ["u", "u", "v"], "track_idx": [0, 1, 4]})
    model = KNNRecommender(demo("knn")).fit(items, train)
    ranked = model.recommend(["u", "v"], top_k=2)
    assert ranked.set_index("user_id").loc["u", "track_idx"].tolist() == [2, 4]
    assert ranked.set_index("user_id").loc["v", "track_idx"].tolist() == [3, 5]


def test_knn_can_reproduce_the_journal_codes_indexing_bug():
    """user_rows: item_ids averages the catalogue rows numbered like the user's item ids (each
    track's rank among the train and cold tracks), as the journal's KNN did."""
    items = np.random.default_rng(3).normal(size=(10, 4)).astype(np.float32)
    train = pd.DataFrame({"user_id": ["u", "u", "v"], "track_idx": [3, 7, 5]})
    cold = np.array([9])
    # item ids: 3 -> 0, 5 -> 1, 7 -> 2, 9 -> 3, so u averages rows 0 and 2 and v takes row 1.
    model = KNNRecommender(demo("knn", user_rows="item_ids")).fit(items, train, cold_items=cold)
    expected = np.stack([items[[0, 2]].mean(axis=0), items[1]])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(model.user_vectors, expected, rtol=1e-6)
    correct = KNNRecommender(demo("knn")).fit(items, train)
    assert not np.allclose(correct.user_vectors, model.user_vectors)


def test_candidates_restrict_the_ranking_to_their_items():
    rng = np.random.default_rng(1)
    items = rng.normal(size=(30, 5)).astype(np.float32)
    users = rng.normal(size=(4, 5)).astype(np.float32)
    candidates = np.array([25, 3, 17, 8, 11, 29, 0])  # unsorted on purpose
    seen = [np.array([3, 4]), np.array([], dtype=np.int64), np.array([0, 8, 29]), np.arange(30)]
    ranked = top_k_unseen(users, items, seen, top_k=4, candidates=candidates)
    for user, got in enumerate(ranked):
        allowed = np.setdiff1d(candidates, seen[user])
        scores = items[allowed] @ users[user]
        assert got.tolist() == allowed[np.argsort(-scores, kind="stable")][:4].tolist()
    assert len(ranked[3]) == 0


def test_knn_ranks_cold_candidates_from_audio():
    # Track 3 was never played but sounds like user u's tracks.
    items = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.95, 0.05], [0.1, 0.9]], dtype=np.float32)
    train = pd.DataFrame({"user_id": ["u", "u", "v"], "track_idx": [0, 1, 2]})
    model = KNNRecommender(demo("knn")).fit(items, train)
    ranked = model.recommend(["u", "v"], top_k=2, candidates=np.array([3, 4])).set_index("user_id")["track_idx"]
    assert ranked["u"].tolist() == [3, 4]
    assert ranked["v"].tolist() == [4, 3]


def by_definition(users: np.ndarray, items: np.ndarray, seen: list[np.ndarray], top_k: int) -> list[list[int]]:
    """Every unseen item sorted by (score, then lower index first), in float64."""
    scores = users.astype(np.float64) @ items.astype(np.float64).T
    ranked = []
    for user, history in enumerate(seen):
        unseen = np.setdiff1d(np.arange(len(items)), history)
        ranked.append(unseen[np.lexsort((unseen, -scores[user, unseen]))][:top_k].tolist())
    return ranked


def by_faiss(users: np.ndarray, items: np.ndarray, seen: list[np.ndarray], top_k: int) -> list[list[int]]:
    """The search this module ran before: faiss's exact inner-product index over every item, seen ones dropped."""
    import faiss

    index = faiss.IndexFlatIP(items.shape[1])
    index.add(items)
    _, ranked = index.search(users, len(items))
    return [row[~np.isin(row, history)][:top_k].tolist() for row, history in zip(ranked, seen)]


@pytest.mark.parametrize("seed", range(10))
def test_random_cases_match_the_definition_and_the_faiss_search(seed):
    rng = np.random.default_rng(seed)
    n_items, dim, n_users = int(rng.integers(20, 400)), int(rng.integers(2, 40)), int(rng.integers(1, 60))
    items = rng.normal(size=(n_items, dim)).astype(np.float32)
    users = rng.normal(size=(n_users, dim)).astype(np.float32)
    # From empty histories to users who heard all but a few items.
    seen = [rng.choice(n_items, size=int(rng.integers(0, n_items)), replace=False) for _ in range(n_users)]
    top_k = int(rng.integers(1, 120))
    ranked = [r.tolist() for r in top_k_unseen(users, items, seen, top_k, batch_size=int(rng.integers(1, 40)))]
    assert ranked == by_definition(users, items, seen, top_k)
    assert ranked == by_faiss(users, items, seen, top_k)
    candidates = rng.choice(n_items, size=int(rng.integers(1, n_items)), replace=False)
    within = top_k_unseen(users, items, seen, top_k, candidates=candidates)
    for user, got in enumerate(within):
        allowed = np.setdiff1d(candidates, seen[user])
        scores = items[allowed].astype(np.float64) @ users[user]
        assert got.tolist() == allowed[np.lexsort((allowed, -scores))][:top_k].tolist()


def test_equal_scores_rank_the_lower_index_first_also_at_the_cut():
    # Items 1, 3, 4 and 6 have the same vector; the cut at 3 falls inside that group.
    items = np.array([[0.0], [1.0], [2.0], [1.0], [1.0], [-1.0], [1.0]], dtype=np.float32)
    user = np.ones((1, 1), dtype=np.float32)
    (ranked,) = top_k_unseen(user, items, [np.array([1])], top_k=3)
    assert ranked.tolist() == [2, 3, 4]
    (ranked,) = top_k_unseen(user, items, [np.array([], dtype=np.int64)], top_k=7)
    assert ranked.tolist() == [2, 1, 3, 4, 6, 0, 5]


def test_many_ties_rank_the_lower_index_first_when_the_whole_row_is_sorted():
    # 200 items scoring 0, 1 or 2 and a seen item among the sampled ones: the selection sorts the
    # whole row, where an unstable sort would shuffle each tied group.
    items = np.random.default_rng(0).integers(0, 3, (200, 1)).astype(np.float32)
    seen = np.array([0, 8, 57])
    (ranked,) = top_k_unseen(np.ones((1, 1), dtype=np.float32), items, [seen], top_k=190)
    unseen = np.setdiff1d(np.arange(200), seen)
    assert ranked.tolist() == unseen[np.lexsort((unseen, -items[unseen, 0]))][:190].tolist()


def test_l2_normalise_gives_unit_rows_and_keeps_zero_rows_zero():
    from audiorec.retrieval import l2_normalise

    with np.errstate(all="raise"):  # no 0 / 0 is ever computed
        result = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]]))
    assert result.tolist() == [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]]
