"""benchmarks/sequential_reference.py's pure parts on hand-made data: the protocol glue that hands
audiorec's split to RecTools (sequence order, candidates, users, the checks on the lists), the
choice of epochs on validation, the settings mapping, the table and the verdict. RecTools itself is
not in the main venv; its one test here is skipped there."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audiorec.evaluation.ranking import hot_candidates
from audiorec.models.bert4rec import user_sequences

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "sequential_reference.py"


@pytest.fixture(scope="module")
def reference():
    spec = importlib.util.spec_from_file_location("sequential_reference", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("sequential_reference", module)
    spec.loader.exec_module(module)
    return module


def _train() -> pd.DataFrame:
    """Rows out of order; user b has a timestamp tie (tracks 9 and 4), broken by track index."""
    return pd.DataFrame(
        {
            "user_id": ["b", "a", "b", "a", "b", "a", "c"],
            "track_idx": [9, 3, 4, 1, 7, 5, 3],
            "timestamp": pd.to_datetime(
                ["2018-03-01", "2018-05-01", "2018-03-01", "2018-02-01", "2018-01-01", "2018-04-01", "2018-06-01"]
            ),
            "count": [1, 2, 3, 4, 5, 6, 7],
        }
    )


def test_sequences_are_ordered_by_first_play_then_track_as_audiorecs(reference):
    train = _train()
    expected = {"a": [1, 5, 3], "b": [7, 4, 9], "c": [3]}
    assert reference.expected_sequences(train) == expected
    assert {user: list(items) for user, items in user_sequences(train).items()} == expected


def test_library_interactions_carry_that_order_with_unit_weights(reference):
    frame = reference.library_interactions(_train())
    assert list(frame.columns) == ["user_id", "item_id", "weight", "datetime"]
    assert (frame["weight"] == 1).all()  # play counts are not weights, as audiorec's BERT4Rec ignores them
    # What RecTools does with it: a stable sort by datetime, then grouping by user.
    ordered = frame.sort_values("datetime", kind="stable").groupby("user_id")["item_id"].agg(list).to_dict()
    assert ordered == {"a": [1, 5, 3], "b": [7, 4, 9], "c": [3]}


def test_candidates_are_the_train_tracks_as_audiorecs_hot_candidates(reference):
    train = _train()
    np.testing.assert_array_equal(reference.candidate_tracks(train), [1, 3, 4, 5, 7, 9])
    np.testing.assert_array_equal(reference.candidate_tracks(train), hot_candidates(train))


def test_targets_are_each_splits_sorted_truth_users_with_train_tracks(reference):
    truths = {
        "val": pd.DataFrame({"user_id": ["c", "a", "c"], "track_idx": [1, 4, 7]}),
        "test": pd.DataFrame({"user_id": ["b", "z"], "track_idx": [1, 3]}),  # z has no train tracks
    }
    targets = reference.evaluation_targets(_train(), truths)
    assert targets.values.tolist() == [["val", "a"], ["val", "c"], ["test", "b"]]


def test_lists_follow_the_library_ranks_and_every_target_gets_one(reference):
    reco = pd.DataFrame({"user_id": ["a", "a", "c"], "item_id": [4, 9, 1], "rank": [2, 1, 1]})
    targets = pd.DataFrame({"split": ["val", "val", "test"], "user_id": ["a", "c", "b"]})
    lists = reference.lists_from_recommendations(reco, targets)
    assert lists["split"].tolist() == ["val", "val", "test"]
    assert [items.tolist() for items in lists["track_idx"]] == [[9, 4], [1], []]


def test_check_lists_refuses_seen_tracks_non_candidates_repeats_and_short_lists(reference):
    train, candidates = _train(), np.array([1, 3, 4, 5, 7, 9])

    def lists(user, items):
        return pd.DataFrame({"user_id": [user], "track_idx": [np.array(items)]})

    reference.check_lists(lists("a", [9, 4]), train, candidates, top_k=2)
    reference.check_lists(lists("a", [9, 4, 7]), train, candidates, top_k=5)  # a has only 3 unseen candidates
    with pytest.raises(ValueError, match="own train tracks"):
        reference.check_lists(lists("a", [9, 5]), train, candidates, top_k=2)
    with pytest.raises(ValueError, match="not train tracks"):
        reference.check_lists(lists("a", [9, 2]), train, candidates, top_k=2)
    with pytest.raises(ValueError, match="twice"):
        reference.check_lists(lists("a", [9, 9]), train, candidates, top_k=2)
    with pytest.raises(ValueError, match="expected 2"):
        reference.check_lists(lists("a", [9]), train, candidates, top_k=2)


def test_the_epoch_is_the_best_on_val_ndcg_ties_to_the_earliest(reference):
    curve = [
        {"epoch": 1, "val": {"ndcg@50": 0.01, "hitrate@50": 0.9}},
        {"epoch": 2, "val": {"ndcg@50": 0.03, "hitrate@50": 0.1}},
        {"epoch": 3, "val": {"ndcg@50": 0.03, "hitrate@50": 0.2}},
        {"epoch": 4, "val": {"ndcg@50": 0.02, "hitrate@50": 0.3}},
    ]
    assert reference.pick_epoch(curve) == 2  # hitrate plays no part; the tie goes to the earlier epoch
    with pytest.raises(ValueError):
        reference.pick_epoch([])


def test_settings_map_audiorecs_bert4rec_section(reference):
    section = {
        "max_seq_len": 200,
        "hidden_dim": 0,
        "learned_dim": 128,
        "n_layers": 2,
        "n_heads": 2,
        "intermediate_dim": 256,
        "dropout": 0.0,
        "mlm_probability": 0.2,
        "lr": 0.001,
        "batch_size": 32,
    }
    bert = reference.library_settings(section, "bert4rec")
    assert bert["n_factors"] == 128 and bert["session_max_len"] == 200 and bert["n_blocks"] == 2
    assert bert["mask_prob"] == 0.2 and bert["transformer_layers_kwargs"] == {"ff_factors_multiplier": 2}
    sasrec = reference.library_settings(section, "sasrec")
    assert "mask_prob" not in sasrec and sasrec["n_heads"] == 2 and sasrec["dropout_rate"] == 0.0
    with pytest.raises(ValueError, match="multiple"):
        reference.library_settings(section | {"intermediate_dim": 200}, "bert4rec")


def _summary(mean, ci95, users=10):
    return {"mean": mean, "ci95": ci95, "users": users}


def _row(label, test_hit, test_ci, seconds=None):
    metrics = {"hitrate@50": _summary(test_hit, test_ci), "ndcg@50": _summary(0.03, 0.01)}
    return {"label": label, "val": metrics, "test": metrics, "users": {"val": 9, "test": 10}, "fit_seconds": seconds}


def test_the_table_has_a_row_per_model_and_the_asked_columns(reference):
    table = reference.markdown_table([_row("audiorec", 0.27, 0.04), _row("RecTools BERT4Rec", 0.3, 0.05, 12.3)])
    lines = table.splitlines()
    assert lines[0] == (
        "| model | val NDCG@50 | val HitRate@50 | test HitRate@50 | test NDCG@50 | users (val / test) | fit s |"
    )
    cells = "0.0300 ± 0.0100 | 0.2700 ± 0.0400 | 0.2700 ± 0.0400 | 0.0300 ± 0.0100"
    assert lines[2] == f"| audiorec | {cells} | 9 / 10 | — |"
    assert lines[3].endswith("| 9 / 10 | 12 |")


def test_the_verdict_is_audiorec_at_least_the_library_mean_minus_its_interval(reference):
    ours = {"hitrate@50": _summary(0.27, 0.04)}
    within = {"hitrate@50": _summary(0.30, 0.05)}  # 0.27 >= 0.25
    better = {"hitrate@50": _summary(0.20, 0.01)}
    below = {"hitrate@50": _summary(0.35, 0.05)}  # 0.27 < 0.30
    line, ok = reference.verdict(ours, {"BERT4Rec": within, "SASRec": better})
    assert ok and "YES" in line and line.startswith("Verdict:")
    line, ok = reference.verdict(ours, {"BERT4Rec": within, "SASRec": below})
    assert not ok and "SASRec 0.3500 ± 0.0500: NO" in line
    assert reference.within_or_better(_summary(0.25, 0.0), _summary(0.30, 0.05))  # the boundary counts as within


def test_the_paired_difference_is_over_the_common_users_by_hand(reference):
    """Only users both scored count, matched by id, not by position."""
    ours = pd.Series([1.0, 1.0, 0.0, 0.0, 1.0], index=[1, 2, 3, 4, 9])  # user 9: audiorec only
    library = pd.Series([0.0, 1.0, 0.0, 1.0, 0.0], index=[4, 3, 2, 1, 7])  # user 7: the library only
    # Users 1..4: ours 1, 1, 0, 0; library 1, 0, 1, 0 -> differences 0, 1, -1, 0: mean 0, sd sqrt(2/3).
    difference = reference.paired_difference(ours, library)
    assert difference["users"] == 4 and difference["mean"] == 0.0
    assert difference["ci95"] == pytest.approx(3.182446 * (2 / 3) ** 0.5 / 2, rel=1e-6)  # t(0.975, 3) = 3.182446


def test_a_baseline_from_another_split_is_flagged(reference):
    targets = pd.DataFrame({"split": ["val", "test", "test"], "user_id": ["a", "b", "c"]})
    assert reference.users_mismatch({"val": 1, "test": 2}, targets) is None
    assert "test 3 vs 2" in reference.users_mismatch({"val": 1, "test": 3}, targets)


def test_rectools_reads_the_handed_over_order(reference):
    """In the reference venv only: RecTools' own sequence builder on the handed-over frame."""
    pytest.importorskip("rectools")
    from rectools.dataset import Dataset

    frame = reference.library_interactions(_train())
    reference.check_library_sequences(Dataset.construct(frame), frame)
