"""The report over several seeds: each row the mean over seeds ± the t half-width over the
seed means (the journal's convention), tests on each user's metric averaged over seeds; a
single seed gives the same tables as before seeds existed."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audiorec.metrics import mean_over_seeds
from audiorec.evaluation.report import BASELINE_TABLE, Run, build_report

METRICS = ("hitrate", "mrr", "precision", "recall", "ndcg")
# A report of a planted case written by the report code before seeds existed (commit d5fc343).
SINGLE_SEED_REFERENCE = Path(__file__).parent / "reference" / "single_seed_report.md"


def per_user(hits, k=50, split="test", offset=0.0):
    users = [f"u{i:02d}" for i in range(len(hits))]
    values = np.asarray(hits, dtype=float)
    return pd.DataFrame(
        {"split": split, "user_id": users, **{f"{m}@{k}": values + offset * i for i, m in enumerate(METRICS)}}
    )


def planted_case() -> dict[tuple[str, str], pd.DataFrame]:
    """(backend, model) -> evaluate's per-user frame, hot and cold splits, for the single-seed reference."""
    rng = np.random.default_rng(5)
    case = {}
    for model, backends in (
        ("knn", ("oracle", "random", "oracle_shuffled")),
        ("bert4rec", ("oracle", "oracle_unordered")),
    ):
        for strength, backend in zip((0.7, 0.3, 0.2), backends):
            frames = (
                [
                    per_user((rng.random(60) < strength).astype(float), split=split, offset=0.01)
                    for split in ("test", "cold")
                ]
                if model == "knn"
                else [per_user((rng.random(60) < strength).astype(float), offset=0.01)]
            )
            case[backend, model] = pd.concat(frames, ignore_index=True)
    case["mostpop", BASELINE_TABLE] = per_user((rng.random(60) < 0.25).astype(float), offset=0.01)
    return case


def single_seed_report() -> str:
    case = planted_case()
    runs = [Run(b, m, 8, (frame,)) for (b, m), frame in case.items() if m != BASELINE_TABLE and "_" not in b]
    controls = [Run(b, m, 8, (frame,)) for (b, m), frame in case.items() if "_" in b]
    baselines = [Run(b, m, 0, (frame,)) for (b, m), frame in case.items() if m == BASELINE_TABLE]
    return build_report(runs, baselines, controls, k=50, cold_k=50, setting="Planted.").markdown


def test_a_single_seed_reproduces_the_report_from_before_seeds_byte_for_byte():
    assert single_seed_report() == SINGLE_SEED_REFERENCE.read_text()


def test_three_seeds_give_the_mean_and_t_half_width_over_the_seed_means():
    # Seed means of HitRate@50: 0.25, 0.50, 0.75 (four users each).
    seeds = (per_user([1, 0, 0, 0]), per_user([1, 1, 0, 0]), per_user([1, 1, 1, 0]))
    run = Run("oracle", "shallow", 8, seeds)
    row = build_report([run], [], [], k=50, cold_k=50).hot["shallow"].iloc[0]
    # mean 0.5; sample sd of (0.25, 0.5, 0.75) = 0.25; t(0.975, 2 df) = 4.3027 from a t table.
    assert row["HitRate@50"] == pytest.approx(0.5)
    assert row["HitRate@50_ci95"] == pytest.approx(4.3027 * 0.25 / np.sqrt(3), abs=1e-4)
    # The pooled lists: 12 per-user values, 6 hits: sd = sqrt(12/11 * 0.25), t(0.975, 11 df) = 2.2010.
    assert row["HitRate@50_ci95_pooled_users"] == pytest.approx(
        2.2010 * np.sqrt(12 / 11 * 0.25) / np.sqrt(12), abs=1e-4
    )
    assert row["seeds"] == 3 and row["users"] == 4


def test_tests_against_the_best_read_each_users_metric_averaged_over_seeds():
    # Per-user averages over the two seeds: best 1.0 for every user, other 0.5 for every user
    # (never equal), so both paired tests see a constant difference.
    best = Run("oracle", "shallow", 8, (per_user([1] * 12), per_user([1] * 12)))
    other = Run("random", "shallow", 8, (per_user([1, 0] * 6), per_user([0, 1] * 6)))
    pd.testing.assert_series_equal(
        other.values("test")["hitrate@50"],
        pd.Series([0.5] * 12, index=pd.Index([f"u{i:02d}" for i in range(12)], name="user_id"), name="hitrate@50"),
    )
    table = build_report([best, other], [], [], k=50, cold_k=50).hot["shallow"].set_index("backend")
    assert table.loc["random", "p_t_holm"] == 0.0  # a constant per-user difference: infinite t
    # Averaged first, the per-seed disagreement is gone; per seed, half the users would tie.
    markdown = build_report([best, other], [], [], k=50, cold_k=50).markdown
    assert "mean over its seeds" in markdown and "averaged over its seeds" in markdown


def test_seeds_must_have_evaluated_the_same_users():
    with pytest.raises(ValueError, match="^the seeds' runs evaluated different users; re-run their evaluate stages$"):
        mean_over_seeds([per_user([1, 0, 1]), per_user([1, 0])])


def test_one_seed_is_its_own_mean():
    only = per_user([1, 0, 1], offset=0.01)
    pd.testing.assert_frame_equal(mean_over_seeds([only]), only)


def test_mean_over_seeds_averages_each_user_and_split():
    first = pd.concat([per_user([1, 0]), per_user([0, 0], split="val")], ignore_index=True)
    second = pd.concat([per_user([0, 0]), per_user([1, 1], split="val")], ignore_index=True)
    averaged = mean_over_seeds([first, second]).set_index(["split", "user_id"])["hitrate@50"]
    assert averaged.to_dict() == {("test", "u00"): 0.5, ("test", "u01"): 0.0, ("val", "u00"): 0.5, ("val", "u01"): 0.5}
