import pandas as pd
import pytest

from audiorec.data.split import EmptySplitError, split_statistics, time_split


def play(user, track, when):
    return {"user_id": user, "track_idx": track, "timestamp": pd.Timestamp(when)}


@pytest.fixture
def plays():
    return pd.DataFrame(
        [
            play("a", 0, "2019-01-01"),  # before start_date: ignored entirely
            play("a", 1, "2019-03-01"),
            play("a", 1, "2019-04-01"),  # repeat: count 2, first play kept
            play("a", 2, "2020-01-01"),
            play("a", 2, "2020-02-25"),  # already seen in train: not a test row
            play("a", 3, "2020-02-21"),  # new to a in the test period
            play("a", 0, "2020-02-22"),  # first play after start_date is in the test period
            play("b", 3, "2019-05-01"),
            play("b", 1, "2020-02-20"),  # exactly test_date: test period
            play("b", 9, "2020-03-01"),  # track 9 never in train: dropped
            play("c", 2, "2019-06-01"),
            play("c", 3, "2020-03-01"),
            play("d", 1, "2020-03-05"),  # user d has no train rows: dropped
        ]
    )


def test_train_rows_are_first_plays_between_start_and_test_date(plays):
    splits = time_split(plays, "2019-02-20", "2020-02-20", val_fraction=0.5, seed=1)
    train = splits["train"].sort_values(["user_id", "track_idx"])
    assert list(zip(train.user_id, train.track_idx, train["count"])) == [
        ("a", 1, 2),
        ("a", 2, 2),
        ("b", 3, 1),
        ("c", 2, 1),
    ]
    assert train.set_index(["user_id", "track_idx"]).loc[("a", 1), "timestamp"] == pd.Timestamp("2019-03-01")


def test_test_period_keeps_new_tracks_of_known_users_and_items(plays):
    splits = time_split(plays, "2019-02-20", "2020-02-20", val_fraction=0.5, seed=1)
    held_out = pd.concat([splits["val"], splits["test"]])
    # Track 0 was played before start_date only, so it is not a train item; track 9 never was.
    assert sorted(zip(held_out.user_id, held_out.track_idx)) == [("a", 3), ("b", 1), ("c", 3)]


def test_val_and_test_users_are_disjoint_and_cover_the_test_period(plays):
    splits = time_split(plays, "2019-02-20", "2020-02-20", val_fraction=0.5, seed=1)
    val_users, test_users = set(splits["val"].user_id), set(splits["test"].user_id)
    assert not val_users & test_users
    assert val_users | test_users == {"a", "b", "c"}
    assert {len(val_users), len(test_users)} == {1, 2}
    stats = split_statistics(splits, plays, "2019-02-20")
    assert stats["train"] == {"users": 3, "items": 3, "interactions": 4}
    assert stats["ignored"] == {"plays_before_start_date": 1}  # a's play of track 0 on 2019-01-01


def test_user_split_is_seeded(plays):
    first = time_split(plays, "2019-02-20", "2020-02-20", seed=7)
    again = time_split(plays, "2019-02-20", "2020-02-20", seed=7)
    pd.testing.assert_frame_equal(first["val"], again["val"])


def test_empty_split_names_the_dates(plays):
    with pytest.raises(EmptySplitError, match="2021-01-01"):
        time_split(plays, "2019-02-20", "2021-01-01")


def test_single_test_period_user_cannot_be_split():
    plays = pd.DataFrame([play("a", 1, "2019-03-01"), play("a", 2, "2019-03-02"), play("b", 1, "2019-03-03"), play("b", 2, "2020-03-01")])
    with pytest.raises(EmptySplitError, match="too few"):
        time_split(plays, "2019-02-20", "2020-02-20")


@pytest.fixture
def cold_plays():
    """Tracks 0-3 are played in train; 7, 8 and 9 appear only in the test period (cold)."""
    rows = [play(user, track, "2019-06-01") for user in "abcdefgh" for track in (0, 1, 2, 3)]
    rows += [
        play("a", 4, "2019-03-01"),  # track 4: train only
        play("b", 7, "2020-02-21"),  # b and c have cold tracks: always test users
        play("b", 4, "2020-02-22"),
        play("c", 8, "2020-02-25"),
        play("c", 9, "2020-02-26"),
        play("d", 4, "2020-02-23"),  # d-h: hot tracks only, eligible for validation
        play("e", 4, "2020-02-24"),
        play("f", 4, "2020-02-25"),
        play("g", 4, "2020-02-26"),
        play("h", 4, "2020-02-27"),
        play("z", 7, "2020-03-01"),  # user z has no train rows: dropped
    ]
    return pd.DataFrame(rows)


def test_cold_start_moves_new_tracks_into_cold_test(cold_plays):
    splits = time_split(cold_plays, "2019-02-20", "2020-02-20", val_fraction=0.3, seed=0, cold_start=True)
    cold = splits["cold_test"]
    assert sorted(zip(cold.user_id, cold.track_idx)) == [("b", 7), ("c", 8), ("c", 9)]
    train_tracks = set(splits["train"].track_idx)
    assert not set(cold.track_idx) & train_tracks
    for name in ("val", "test"):
        assert set(splits[name].track_idx) <= train_tracks, name


def test_cold_start_draws_validation_users_without_cold_tracks(cold_plays):
    for seed in range(10):
        splits = time_split(cold_plays, "2019-02-20", "2020-02-20", val_fraction=0.3, seed=seed, cold_start=True)
        val_users = set(splits["val"].user_id)
        # 30% of the 7 test-period users a-h minus a (no test-period rows) is 2, drawn from d-h.
        assert len(val_users) == 2 and val_users <= set("defgh")
        assert not val_users & set(splits["test"].user_id)
        assert set(splits["cold_test"].user_id) <= set(splits["test"].user_id) | {"c"}


def test_cold_start_refuses_a_validation_share_it_cannot_fill(cold_plays):
    with pytest.raises(EmptySplitError, match="only 5 of the 7"):
        time_split(cold_plays, "2019-02-20", "2020-02-20", val_fraction=0.9, cold_start=True)


def test_without_cold_start_new_tracks_are_dropped(cold_plays):
    splits = time_split(cold_plays, "2019-02-20", "2020-02-20", val_fraction=0.3, seed=0)
    assert splits["cold_test"].empty
    held_out = pd.concat([splits["val"], splits["test"]])
    assert set(held_out.track_idx) == {4}
