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
    stats = split_statistics(splits)
    assert stats["train"] == {"users": 3, "items": 3, "interactions": 4}


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
