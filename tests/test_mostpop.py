"""MostPop's one-ranking path against the definition and against the dense formulation it replaced."""

import numpy as np
import pandas as pd
import pytest

from audiorec.models.mostpop import MostPopRecommender
from audiorec.retrieval import top_k_by_score, top_k_in_order
from model_settings import demo


def by_definition(popularity: np.ndarray, seen: np.ndarray, top_k: int, candidates: np.ndarray | None) -> list[int]:
    """Most popular first, ties to the lower track index, seen and non-candidate tracks left out."""
    allowed = set(range(len(popularity)) if candidates is None else candidates.tolist()) - set(seen.tolist())
    return sorted(allowed, key=lambda track: (-popularity[track], track))[:top_k]


def random_train(rng: np.random.Generator, n_users: int, n_tracks: int) -> pd.DataFrame:
    """Small play counts so that many tracks tie; one user who heard nearly everything."""
    pairs = [
        (f"u{user}", track)
        for user in range(n_users)
        for track in rng.choice(
            n_tracks, size=n_tracks - 1 if user == 0 else rng.integers(1, n_tracks // 2), replace=False
        )
    ]
    users, tracks = zip(*pairs)
    return pd.DataFrame({"user_id": users, "track_idx": tracks, "count": rng.integers(1, 4, size=len(pairs))})


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("count_by", ["plays", "users"])
def test_mostpop_lists_match_the_definition_and_the_dense_formulation(seed, count_by):
    rng = np.random.default_rng(seed)
    n_tracks = int(rng.integers(5, 40))
    train = random_train(rng, n_users=12, n_tracks=n_tracks)
    model = MostPopRecommender(demo("mostpop", count_by=count_by)).fit(
        np.zeros((n_tracks + 2, 0), np.float32), train
    )  # 2 never played
    users = sorted(train["user_id"].unique())
    seen = [train.loc[train["user_id"] == user, "track_idx"].to_numpy() for user in users]
    # Unsorted, with repeats, sometimes smaller than top_k plus a user's history.
    for candidates in (None, rng.choice(n_tracks + 2, size=int(rng.integers(1, n_tracks)), replace=True)):
        for top_k in (1, 3, n_tracks + 5):
            got = model.recommend(users, top_k, candidates)["track_idx"].tolist()
            dense = top_k_by_score(
                np.broadcast_to(model.popularity, (len(users), n_tracks + 2)), seen, top_k, candidates
            )
            for user_seen, ranked, old in zip(seen, got, dense):
                assert ranked.tolist() == by_definition(model.popularity, user_seen, top_k, candidates)
                assert ranked.tolist() == old.tolist()


def test_exactly_k_unseen_even_when_the_history_fills_the_head_of_the_ranking():
    order = np.array([4, 2, 0, 1, 3, 5])
    seen = [np.array([4, 2, 0]), np.array([5, 3, 1, 0, 2, 4]), np.array([], dtype=np.int64)]
    ranked = top_k_in_order(order, seen, top_k=2)
    assert [r.tolist() for r in ranked] == [[1, 3], [], [4, 2]]
    assert top_k_in_order(order, seen, top_k=2, candidates=np.array([3, 2]))[0].tolist() == [3]
    with pytest.raises(ValueError, match="top_k must be positive"):
        top_k_in_order(order, seen, top_k=0)
