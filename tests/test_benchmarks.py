"""The Music4All scale benchmark's inputs: the params it writes must split its synthetic log as the
real log would be split, or every number it prints is measured on the wrong data."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from audiorec.config import split_protocol
from audiorec.data.split import time_split

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("music4all_scale", BENCHMARKS / "music4all_scale.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("music4all_scale", module)
    spec.loader.exec_module(module)
    return module


def test_the_written_params_split_the_synthetic_log_into_its_train_year_and_test_month(tmp_path):
    """Counted from the log's own plays: every (user, track) pair first played in the train year
    is a train pair, and the test month's new pairs go to val, test or cold_test (a split window
    other than the log's, as after the protocols moved under split.<protocol>, kept a tenth)."""
    benchmark = load_benchmark()
    shape = benchmark.LogShape.scaled(0.01)
    benchmark.write_params(tmp_path, tmp_path / "music4all", shape, "cpu")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    _, _, users, tracks, seconds = sys.modules["music4all_log"].core_plays(shape)  # imported by the benchmark
    plays = pd.DataFrame(
        {"user_id": users.astype(str), "track_idx": tracks, "timestamp": pd.to_datetime(seconds, unit="s")}
    )
    splits = time_split(plays, split_protocol(params), duplicate_plays=params["split"]["duplicate_plays"])

    # Plays before the start date are ignored; a pair's first play is its first one after it.
    first = (
        plays[plays["timestamp"] >= pd.Timestamp(shape.start_date)].groupby(["user_id", "track_idx"])["timestamp"].min()
    )
    in_train_year = first < pd.Timestamp(shape.test_date)
    assert len(splits["train"]) == in_train_year.sum() > 0
    new_in_test_month = (first >= pd.Timestamp(shape.test_date)) & (first < pd.Timestamp(shape.end_date))
    evaluated = sum(len(splits[name]) for name in ("val", "test", "cold_test"))
    assert 0 < evaluated <= new_in_test_month.sum()
    assert len(splits["cold_test"]) > 0  # the log's test-month-only tracks
    assert np.isin(splits["test"]["user_id"], splits["train"]["user_id"]).all()
