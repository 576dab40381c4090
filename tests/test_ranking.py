"""Which users and tracks each split ranks (audiorec.ranking), on a hand-made split."""
import logging

import numpy as np
import pandas as pd

from audiorec.models.mostpop import MostPopRecommender
from audiorec.ranking import hot_candidates, rank_splits


def test_users_without_train_tracks_get_no_list_and_a_warning(caplog):
    train = pd.DataFrame({"user_id": ["a", "a", "b", "c"], "track_idx": np.array([4, 1, 4, 2], dtype=np.int32), "count": 1})
    truths = {
        "val": pd.DataFrame({"user_id": ["b", "zed"], "track_idx": [1, 2]}),  # zed never played in train
        "test": pd.DataFrame({"user_id": ["c", "a"], "track_idx": [1, 2]}),
    }
    assert hot_candidates(train).tolist() == [1, 2, 4]
    model = MostPopRecommender().fit(np.zeros((6, 0), np.float32), train)
    with caplog.at_level(logging.WARNING):
        ranked = rank_splits(model, train, truths, top_k=10)
    assert "val: 1 users have no usable train tracks and get no list (first: zed)" in caplog.text
    lists = {(split, user): tracks.tolist() for split, user, tracks in ranked.itertuples(index=False)}
    # Most played first (4: 2 plays, then 1 and 2 tie: lower index), own tracks removed, train tracks only.
    assert lists == {("val", "b"): [1, 2], ("test", "a"): [2], ("test", "c"): [4, 1]}
