"""Which users and tracks each split ranks (audiorec.evaluation.ranking), on a hand-made split."""

import logging

import numpy as np
import pandas as pd

from audiorec.models.mostpop import MostPopRecommender
from audiorec.evaluation.ranking import hot_candidates, rank_splits
from model_settings import demo


def test_users_without_train_tracks_get_no_list_and_a_warning(caplog):
    train = pd.DataFrame(
        {"user_id": ["a", "a", "b", "c"], "track_idx": np.array([4, 1, 4, 2], dtype=np.int32), "count": 1}
    )
    truths = {
        "val": pd.DataFrame({"user_id": ["b", "zed"], "track_idx": [1, 2]}),  # zed never played in train
        "test": pd.DataFrame({"user_id": ["c", "a"], "track_idx": [1, 2]}),
    }
    assert hot_candidates(train).tolist() == [1, 2, 4]
    model = MostPopRecommender(demo("mostpop")).fit(np.zeros((6, 0), np.float32), train)
    with caplog.at_level(logging.WARNING):
        ranked = rank_splits(model, train, truths, top_k=10)
    assert "val: 1 users have no usable train tracks and get no list (first: zed)" in caplog.text
    lists = {(split, user): tracks.tolist() for split, user, tracks in ranked.itertuples(index=False)}
    # Most played first (4: 2 plays, then 1 and 2 tie: lower index), own tracks removed, train tracks only.
    assert lists == {("val", "b"): [1, 2], ("test", "a"): [2], ("test", "c"): [4, 1]}


class Recorder:
    """A stand-in model that ranks the candidates it is given in index order and records each call,
    so the protocol (which users, which candidate tracks per split) is checked by its definition."""

    def __init__(self, ranks_cold_tracks):
        self.ranks_cold_tracks, self.calls = ranks_cold_tracks, []

    def recommend(self, user_ids, top_k, candidates):
        self.calls.append((list(user_ids), candidates.tolist()))
        return pd.DataFrame({"user_id": list(user_ids), "track_idx": [np.sort(candidates)[:top_k]] * len(user_ids)})


TRAIN = pd.DataFrame({"user_id": ["a", "a", "b", "c"], "track_idx": [4, 1, 6, 2], "count": 1})


def test_cold_tracks_are_ranked_only_among_themselves_and_masked_tracks_never():
    truths = {  # cold first: a split that is skipped must not end the loop
        "cold": pd.DataFrame({"user_id": ["c", "a", "a"], "track_idx": [9, 7, 9]}),
        "val": pd.DataFrame({"user_id": ["b"], "track_idx": [4]}),
        "test": pd.DataFrame({"user_id": ["c", "a"], "track_idx": [1, 2]}),
    }
    model = Recorder(ranks_cold_tracks=True)
    ranked = rank_splits(model, TRAIN, truths, top_k=10, usable=np.array([1, 2, 4, 7, 9]))  # 6 is masked
    assert model.calls == [(["a", "c"], [7, 9]), (["b"], [1, 2, 4]), (["a", "c"], [1, 2, 4])]
    assert ranked["split"].tolist() == ["cold", "cold", "val", "test", "test"]
    assert ranked.index.tolist() == list(range(5)) and list(ranked.columns) == ["split", "user_id", "track_idx"]
    unmasked = Recorder(ranks_cold_tracks=True)
    rank_splits(unmasked, TRAIN, truths, top_k=10)
    assert [candidates for _, candidates in unmasked.calls] == [[7, 9], [1, 2, 4, 6], [1, 2, 4, 6]]


def test_models_without_audio_and_empty_cold_splits_rank_no_cold_list():
    truths = {
        "cold": pd.DataFrame({"user_id": ["a"], "track_idx": [9]}),
        "test": pd.DataFrame({"user_id": ["b"], "track_idx": [4]}),
    }
    model = Recorder(ranks_cold_tracks=False)
    assert rank_splits(model, TRAIN, truths, top_k=3)["split"].tolist() == ["test"]
    empty = {"cold": truths["cold"].iloc[:0], "test": truths["test"]}
    model = Recorder(ranks_cold_tracks=True)
    assert rank_splits(model, TRAIN, empty, top_k=3)["split"].tolist() == ["test"]
    assert model.calls == [(["b"], [1, 2, 4, 6])]


def test_a_split_with_nothing_to_rank_is_skipped_with_a_warning_and_one_track_is_enough(caplog):
    truths = {
        "cold": pd.DataFrame({"user_id": ["a", "c"], "track_idx": [9, 9]}),  # its only track is masked
        "val": pd.DataFrame({"user_id": ["zed"], "track_idx": [4]}),  # no train tracks: no user left
        "test": pd.DataFrame({"user_id": ["b"], "track_idx": [4]}),
    }
    model = Recorder(ranks_cold_tracks=True)
    with caplog.at_level(logging.WARNING):
        ranked = rank_splits(model, TRAIN, truths, top_k=3, usable=np.array([4, 7]))
    assert caplog.messages == [
        "cold: nothing to rank (0 candidate tracks, 2 users)",
        "val: 1 users have no usable train tracks and get no list (first: zed)",
        "val: nothing to rank (1 candidate tracks, 0 users)",
    ]
    assert model.calls == [(["b"], [4])] and ranked["track_idx"].iloc[0].tolist() == [4]
