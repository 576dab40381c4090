"""The cluster-time scheduler (benchmarks/cluster_time.py) on hand-worked DAGs and its bounds on
random ones, and the committed whole-study estimate it reads by default."""

import importlib.util
import random
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


cluster = load("cluster_time")


def test_a_chain_takes_its_length_on_any_number_of_nodes():
    hours = {"a": 1.0, "b": 2.0, "c": 3.0}
    needs = {"a": [], "b": ["a"], "c": ["b"]}
    for nodes in (1, 2, 5):
        schedule = cluster.list_schedule(hours, needs, nodes)
        assert schedule.wall == 6.0
        assert schedule.start == {"a": 0.0, "b": 1.0, "c": 3.0}
    assert cluster.critical_path(hours, needs) == (6.0, ["a", "b", "c"])


def test_a_fork_join_by_hand():
    """s (1 h) -> p1 (2), p2 (3), p3 (1) -> j (1). On 2 nodes: s 0-1; p2 and p1 (the longer
    paths) 1-4 and 1-3; p3 3-4 on p1's node; j 4-5 once p2 is done."""
    hours = {"s": 1.0, "p1": 2.0, "p2": 3.0, "p3": 1.0, "j": 1.0}
    needs = {"s": [], "p1": ["s"], "p2": ["s"], "p3": ["s"], "j": ["p1", "p2", "p3"]}
    assert cluster.list_schedule(hours, needs, 1).wall == 8.0
    two = cluster.list_schedule(hours, needs, 2)
    assert two.start == {"s": 0.0, "p2": 1.0, "p1": 1.0, "p3": 3.0, "j": 4.0}
    assert two.wall == 5.0
    assert cluster.list_schedule(hours, needs, 3).wall == 5.0
    assert cluster.critical_path(hours, needs) == (5.0, ["s", "p2", "j"])


def test_the_longest_path_starts_first_where_the_order_matters():
    """Three 1 h stages and a 2 h + 2 h chain on 2 nodes. Taking the short stages first (by
    name, as a queue would) starts the chain at 1 h and ends at 5 h; the chain first ends at
    4 h, its critical path, with the short stages beside it."""
    hours = {"a": 1.0, "b": 1.0, "c": 1.0, "x": 2.0, "y": 2.0}
    needs = {"a": [], "b": [], "c": [], "x": [], "y": ["x"]}
    schedule = cluster.list_schedule(hours, needs, 2)
    assert schedule.wall == 4.0
    assert (schedule.start["x"], schedule.start["y"]) == (0.0, 2.0)


def test_no_nodes_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        cluster.list_schedule({"a": 1.0}, {"a": []}, 0)


def random_dag(rng: random.Random, n: int) -> tuple[dict[str, float], dict[str, list[str]]]:
    """n stages, each needing a random few of the earlier ones; some take 0 h (unmeasured)."""
    names = [f"s{i:02d}" for i in range(n)]
    hours = {name: 0.0 if rng.random() < 0.1 else rng.uniform(0.1, 10.0) for name in names}
    needs = {name: rng.sample(names[:i], k=rng.randint(0, min(i, 3))) for i, name in enumerate(names)}
    return hours, needs


@pytest.mark.parametrize("seed", range(20))
def test_on_random_dags_the_wall_time_lies_between_the_lower_bounds_and_grahams_bound(seed):
    rng = random.Random(seed)
    hours, needs = random_dag(rng, rng.randint(1, 30))
    total, (path, _) = sum(hours.values()), cluster.critical_path(hours, needs)
    assert cluster.list_schedule(hours, needs, 1).wall == pytest.approx(total)
    assert cluster.list_schedule(hours, needs, len(hours)).wall == pytest.approx(path)
    for nodes in (2, 3, 8):
        wall = cluster.list_schedule(hours, needs, nodes).wall
        assert wall >= max(total / nodes, path) - 1e-9
        assert wall <= total / nodes + path + 1e-9


def test_the_committed_estimate_takes_its_total_on_one_node():
    """benchmarks/results/study_times_2026-12-01.json: the 2026-12-01 run's 739 CPU-hours, a
    train stage per backend and model after that backend's extraction and the split, and the
    report after every evaluation."""
    study = cluster.load_study(cluster.DEFAULT_TIMES)
    total = sum(study.hours.values())
    assert total == pytest.approx(739, abs=0.5)
    assert cluster.list_schedule(study.hours, study.needs, 1).wall == pytest.approx(total)
    assert sorted(study.needs["train@jukebox-shallow-0"]) == ["extract@jukebox", "split"]
    evaluations = {stage for stage in study.hours if stage.startswith("evaluate@")}
    assert set(study.needs["report"]) == evaluations and len(evaluations) == 28
    length, path = cluster.critical_path(study.hours, study.needs)
    assert "train@jukebox-bert4rec-0" in path
    assert cluster.list_schedule(study.hours, study.needs, 32).wall == pytest.approx(length)


def test_the_benchmarks_estimate_writes_a_file_the_scheduler_reads(tmp_path):
    """music4all_scale's study_stages and write_study_times on two measured widths: every
    study backend gets its stages, a measured width its measured time, and the file loads."""
    scale = load("music4all_scale")
    rows = [
        scale.Row("dataset", wall=36.0),
        scale.Row("split", wall=72.0),
        scale.Row("train mostpop", wall=3.6),
        scale.Row("train knn", "200", 10.0),
        scale.Row("train knn", "4800", 100.0),
        scale.Row("evaluate knn", "200", 7.2),
    ]
    trained = {
        model: {w: scale.TrainTimes(float(w * w), epoch, 1.0, 2.0) for w, epoch in ((200, 10.0), (4800, 1000.0))}
        for model in scale.TRAINED
    }
    stages = scale.study_stages(
        scale.Report(rows=rows), trained, lambda model, width: float(width * width), {"shallow": 100, "bert4rec": 50}
    )
    by_name = {stage.stage: stage for stage in stages}
    assert by_name["train@jukebox-shallow-0"].hours == pytest.approx((100 * (1000.0 + 1.0) + 2.0) / 3600)
    assert by_name["train@jukebox-knn"].hours == pytest.approx(100.0 / 3600)
    assert by_name["extract@jukebox"].hours is None
    path = tmp_path / "times.json"
    scale.write_study_times(path, stages, {"source": "test"})
    study = cluster.load_study(path)
    assert set(study.hours) == set(by_name) and "extract@mule" in study.unmeasured
    assert cluster.list_schedule(study.hours, study.needs, 1).wall == pytest.approx(
        sum(s.hours or 0 for s in stages), abs=1e-4
    )
