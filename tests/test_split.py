"""The two protocols of the study against an independent, play-by-play computation of their definitions
(the papers and their public repositories), on a planted log."""

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import yaml

from audiorec.config import ParamsError, split_protocol
from audiorec.data.split import EmptySplitError, Protocol, draw_val_users, split_statistics, time_split
from audiorec.workflow.worktree import REPO

RECSYS24 = Protocol("2019-02-20", "2020-02-20", None, cold_start=False, val_from="all", test_size=0.5, seed=42)
JOURNAL = Protocol(
    "2018-02-01", "2019-02-01", "2019-03-01", cold_start=True, val_from="without_cold", test_size=0.7, seed=42
)


def play(user, track, when):
    return {"user_id": user, "track_idx": track, "timestamp": pd.Timestamp(when)}


def planted_log(protocol: Protocol, seed: int = 0) -> pd.DataFrame:
    """Random plays of 60 users over 30 tracks spanning the protocol's window and beyond, with
    repeats on both sides of the test date, tracks first heard after it, and duplicate rows."""
    rng = np.random.default_rng(seed)
    start, test = pd.Timestamp(protocol.start_date), pd.Timestamp(protocol.test_date)
    first = start - pd.Timedelta(days=60)
    last = (pd.Timestamp(protocol.end_date) if protocol.end_date else test + pd.Timedelta(days=28)) + pd.Timedelta(
        days=40
    )
    rows = []
    for user in range(60):
        name = f"user_{rng.integers(0, 10**6):06d}"  # ids whose sorted order is not the creation order
        for _ in range(rng.integers(2, 25)):
            track = int(rng.zipf(1.6) % 25)  # tracks 25-29 appear only after the test date
            when = first + (last - first) * rng.random()
            rows.append(play(name, track, when.floor("s")))
        for _ in range(rng.integers(0, 6)):  # the test month, on common tracks
            rows.append(
                play(name, int(rng.zipf(1.6) % 25), (test + pd.Timedelta(days=float(rng.uniform(0, 27)))).floor("s"))
            )
        for _ in range(rng.integers(0, 3)):
            rows.append(
                play(name, int(rng.integers(25, 30)), (test + pd.Timedelta(days=float(rng.uniform(0, 20)))).floor("s"))
            )
    rows += rows[:7]  # exact duplicate rows
    return pd.DataFrame(rows).sample(frac=1, random_state=1).reset_index(drop=True)


def by_definition(plays: pd.DataFrame, protocol: Protocol, duplicate_plays: str = "count") -> dict[str, dict]:
    """Each split as {(user, track): (first play, count)}, computed play by play from the definition,
    with the user draw of sklearn's train_test_split written out: a RandomState(seed) permutation
    of the sorted users, whose first ceil(test_size * n) are the test part and the rest validation."""
    start, test = pd.Timestamp(protocol.start_date), pd.Timestamp(protocol.test_date)
    end = pd.Timestamp(protocol.end_date) if protocol.end_date else None
    rows = list(zip(plays["user_id"], plays["track_idx"], plays["timestamp"]))
    if duplicate_plays == "drop":
        rows = list(dict.fromkeys(rows))
    first, before, total = {}, Counter(), Counter()
    for user, track, when in rows:
        if when < start or (end is not None and when >= end):
            continue
        first[user, track] = min(first.get((user, track), when), when)
        total[user, track] += 1
        before[user, track] += when < test
    train = {pair: (first[pair], before[pair]) for pair in first if first[pair] < test}
    train_users, train_tracks = {u for u, _ in train}, {t for _, t in train}
    period = {pair: (first[pair], total[pair]) for pair in first if first[pair] >= test and pair[0] in train_users}
    hot = {pair: value for pair, value in period.items() if pair[1] in train_tracks}
    cold = {pair: value for pair, value in period.items() if pair[1] not in train_tracks} if protocol.cold_start else {}
    users = sorted({u for u, _ in hot})
    if protocol.val_from == "without_cold":
        users = [u for u in users if u not in {u for u, _ in cold}]
    permutation = np.random.RandomState(protocol.seed).permutation(len(users))
    val_users = {users[i] for i in permutation[math.ceil(protocol.test_size * len(users)) :]}
    return {
        "train": train,
        "val": {pair: value for pair, value in hot.items() if pair[0] in val_users},
        "test": {pair: value for pair, value in hot.items() if pair[0] not in val_users},
        "cold_test": cold,
    }


def as_dict(frame: pd.DataFrame) -> dict:
    return {
        (u, t): (when, n)
        for u, t, when, n in zip(frame["user_id"], frame["track_idx"], frame["timestamp"], frame["count"])
    }


@pytest.mark.parametrize("protocol", [RECSYS24, JOURNAL], ids=["recsys24", "journal"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("duplicate_plays", ["count", "drop"])
def test_each_protocol_equals_its_definition(protocol, seed, duplicate_plays):
    plays = planted_log(protocol, seed)
    splits = time_split(plays, protocol, duplicate_plays)
    expected = by_definition(plays, protocol, duplicate_plays)
    for name in ("train", "val", "test", "cold_test"):
        assert as_dict(splits[name]) == expected[name], name
        assert len(splits[name]) == len(expected[name]), f"{name} has a pair twice"
    assert len(expected["val"]) and len(expected["test"]) and (len(expected["cold_test"]) > 0) == protocol.cold_start


def test_a_train_count_ignores_plays_after_the_test_date():
    """The leak the original avoided: a track heard twice before the test date and twice after it counts 2."""
    plays = pd.DataFrame(
        [play("a", 1, "2019-05-01"), play("a", 1, "2019-06-01"), play("a", 1, "2020-02-21"), play("a", 1, "2020-03-01")]
        + [play(user, 2, "2019-07-01") for user in "abcd"]
        + [play("a", 3, "2019-08-01")]
        + [play(user, 3, "2020-02-25") for user in "bcd"]
        + [play("b", 3, "2020-02-26")]
    )
    splits = time_split(plays, RECSYS24)
    train = splits["train"].set_index(["user_id", "track_idx"])["count"]
    assert train.loc[("a", 1)] == 2 and train.loc[("a", 2)] == 1
    held_out = pd.concat([splits["val"], splits["test"]]).set_index(["user_id", "track_idx"])["count"]
    assert held_out.loc[("b", 3)] == 2  # a test-period pair counts its test-period plays


def test_the_journal_window_ends_after_its_test_month():
    plays = pd.DataFrame(
        [play(user, 1, "2018-06-01") for user in "abcdef"]
        + [play(user, 2 if user in "abc" else 3, "2018-06-02") for user in "abcdef"]
        + [play(user, 3 if user in "abc" else 2, "2019-02-15") for user in "abcdef"]  # new to each user: hot test rows
        + [play("a", 7, "2019-03-05"), play("b", 1, "2019-04-01"), play("c", 1, "2017-12-31")]  # outside the window
    )
    splits = time_split(plays, JOURNAL)
    held_out = pd.concat([splits["val"], splits["test"], splits["cold_test"]])
    assert len(held_out) == 6 and held_out["timestamp"].max() < pd.Timestamp("2019-03-01")
    assert split_statistics(splits, plays, JOURNAL)["ignored"]["plays_outside_window"] == 3


def test_validation_users_depend_on_the_seed():
    plays = planted_log(JOURNAL, 0)
    draws = {
        frozenset(time_split(plays, Protocol(**{**JOURNAL.__dict__, "seed": seed}))["val"]["user_id"])
        for seed in range(5)
    }
    assert len(draws) > 1


@pytest.mark.parametrize(
    "n_users, test_size, n_val",
    # The definition (sklearn's train_test_split): ceil(test_size * n) test users, the rest validation.
    # Each case is one where a rounding other than the ceiling of the test part gives another count:
    # 7 x 0.5 = 3.5 and 9 x 0.5 = 4.5 (halves: round() goes to even), 13 x 0.7 = 9.1 (floor and round differ
    # from ceil), 23 x 0.7 = 16.1.
    [(7, 0.5, 3), (9, 0.5, 4), (13, 0.7, 3), (23, 0.7, 6)],
)
def test_the_number_of_validation_users_is_the_rest_after_the_rounded_up_test_part(n_users, test_size, n_val):
    users = np.array([f"user_{i:02d}" for i in range(n_users)][::-1])
    val = draw_val_users(users, test_size, seed=42)
    assert len(val) == n_val and len(set(val)) == n_val and set(val) <= set(users)
    assert val.tolist() == sorted(val.tolist())


def test_different_seeds_draw_different_validation_users_from_the_same_log():
    plays = planted_log(RECSYS24, 0)
    val = {
        seed: set(time_split(plays, Protocol(**{**RECSYS24.__dict__, "seed": seed}))["val"]["user_id"])
        for seed in (1, 2)
    }
    assert val[1] != val[2]
    assert val[1] == {user for user, _ in by_definition(plays, Protocol(**{**RECSYS24.__dict__, "seed": 1}))["val"]}


def test_journal_validation_users_have_no_cold_tracks_and_every_cold_row_is_kept():
    plays = planted_log(JOURNAL, 3)
    splits = time_split(plays, JOURNAL)
    assert not set(splits["val"]["user_id"]) & set(splits["cold_test"]["user_id"])
    assert not set(splits["val"]["user_id"]) & set(splits["test"]["user_id"])
    assert not set(splits["cold_test"]["track_idx"]) & set(splits["train"]["track_idx"])


def test_recsys24_drops_tracks_absent_from_train():
    splits = time_split(planted_log(RECSYS24, 4), RECSYS24)
    assert splits["cold_test"].empty
    assert set(pd.concat([splits["val"], splits["test"]])["track_idx"]) <= set(splits["train"]["track_idx"])


def test_statistics_count_users_tracks_and_pairs():
    plays = planted_log(RECSYS24, 5)
    splits = time_split(plays, RECSYS24)
    stats = split_statistics(splits, plays, RECSYS24)
    assert stats["train"] == {
        "users": splits["train"]["user_id"].nunique(),
        "items": splits["train"]["track_idx"].nunique(),
        "interactions": len(splits["train"]),
    }
    assert stats["ignored"]["plays_outside_window"] == int((plays["timestamp"] < pd.Timestamp("2019-02-20")).sum())


def test_empty_split_names_the_dates():
    plays = planted_log(RECSYS24, 0)
    late = Protocol("2019-02-20", "2021-01-01", None, False, "all", 0.5, 42)
    with pytest.raises(EmptySplitError, match="2021-01-01"):
        time_split(plays, late)


def test_too_few_test_period_users_cannot_be_split():
    plays = pd.DataFrame(
        [play("a", 1, "2019-03-01"), play("a", 2, "2019-03-02"), play("b", 1, "2019-03-03"), play("b", 2, "2020-03-01")]
    )
    with pytest.raises(EmptySplitError, match="too few"):
        time_split(plays, RECSYS24)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"test_date": "2017-01-01"}, r"split.journal: test_date \(2017-01-01\) must be after start_date"),
        ({"end_date": "2019-01-01"}, r"split.journal: end_date \(2019-01-01\) must be after test_date"),
        ({"val_from": "some"}, r"split.journal: val_from='some'; allowed: all, without_cold"),
        ({"cold_start": False}, r"split.journal: val_from=without_cold needs cold_start: true"),
        ({"test_size": 1.0}, r"split.journal: test_size=1.0; must be strictly between 0 and 1"),
        ({"seeds": 1}, r"split.journal: .*unexpected keyword argument 'seeds'"),
    ],
)
def test_bad_protocol_params_name_the_section(change, message):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["split"]["journal"].update(change)
    params["split"]["protocol"] = "journal"
    with pytest.raises(ParamsError, match=message):
        split_protocol(params)


def test_the_committed_protocols_are_the_studies():
    """Each named protocol's section is its definition: the values of the original code."""
    split = yaml.safe_load((REPO / "params.yaml").read_text())["split"]
    assert Protocol(**split["recsys24"]) == RECSYS24
    assert Protocol(**split["journal"]) == JOURNAL
    assert split["duplicate_plays"] == "count"


def test_window_and_test_date_boundaries_by_hand():
    """A play exactly at start_date is inside the window, exactly at end_date outside it,
    and exactly at test_date in the test period."""
    protocol = Protocol(
        "2018-02-01", "2019-02-01", "2019-03-01", cold_start=True, val_from="all", test_size=0.5, seed=42
    )
    plays = pd.DataFrame(
        [play(user, 1, "2018-02-01") for user in "abcdef"]  # at start_date: train
        + [play(user, 2, "2018-06-01") for user in "abcdef"]
        + [play("a", 5, "2018-06-01")]
        + [play(user, 3, "2018-01-31 23:59:59") for user in "abcdef"]  # just before the window
        + [play(user, 2, "2019-02-01") for user in "ab"]  # at test_date: not a train play
        + [play(user, 5, "2019-02-01") for user in "cdef"]  # at test_date: hot test-period pairs
        + [play(user, 3, "2019-02-01") for user in "cd"]  # track 3 is not in train inside the window: cold
        + [play(user, 3, "2019-03-01") for user in "ab"]  # at end_date: outside
    )
    splits = time_split(plays, protocol)
    train = splits["train"].set_index(["user_id", "track_idx"])["count"]
    assert sorted(train.index) == sorted([(u, t) for u in "abcdef" for t in (1, 2)] + [("a", 5)])
    assert train.loc[("a", 2)] == 1
    hot = pd.concat([splits["val"], splits["test"]])
    assert sorted(zip(hot["user_id"], hot["track_idx"])) == [(u, 5) for u in "cdef"]
    assert sorted(zip(splits["cold_test"]["user_id"], splits["cold_test"]["track_idx"])) == [("c", 3), ("d", 3)]
    assert split_statistics(splits, plays, protocol)["ignored"]["plays_outside_window"] == 6 + 2


def test_split_frames_have_exactly_the_split_columns_and_a_fresh_index():
    splits = time_split(planted_log(JOURNAL, 1), JOURNAL)
    for name, frame in splits.items():
        assert list(frame.columns) == ["user_id", "track_idx", "timestamp", "count"], name
        assert frame.index.equals(pd.RangeIndex(len(frame))), name


def test_categorical_ids_split_as_strings_do():
    """Readers may hand over categorical ids: unobserved (user, track) combinations must not become pairs."""
    plays = planted_log(JOURNAL, 2)
    categorical = plays.assign(
        user_id=plays["user_id"].astype("category"), track_idx=plays["track_idx"].astype("category")
    )
    expected, splits = time_split(plays, JOURNAL), time_split(categorical, JOURNAL)
    for name in expected:
        assert as_dict(splits[name]) == as_dict(expected[name]), name
        assert splits[name]["user_id"].dtype == expected[name]["user_id"].dtype, name  # strings, not categories


@pytest.mark.parametrize(
    "change, message",
    [
        ({"test_date": "2018-02-01"}, r"test_date \(2018-02-01\) must be after start_date \(2018-02-01\)"),
        ({"end_date": "2019-02-01"}, r"end_date \(2019-02-01\) must be after test_date \(2019-02-01\), or null"),
        ({"test_size": 0.0}, r"test_size=0.0; must be strictly between 0 and 1"),
    ],
)
def test_protocol_boundaries_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        Protocol(**{**JOURNAL.__dict__, **change})


def test_messages_name_the_choices_and_the_open_end():
    plays = planted_log(RECSYS24, 0)
    with pytest.raises(ValueError, match=r"^split.duplicate_plays='keep'; allowed: count, drop$"):
        time_split(plays, RECSYS24, "keep")
    late = Protocol("2019-02-20", "2021-01-01", None, False, "all", 0.5, 42)
    with pytest.raises(EmptySplitError, match="from 2021-01-01 to the end of the log. Move"):
        time_split(plays, late)
