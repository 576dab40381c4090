"""The beyond-accuracy metrics (audiorec.evaluation.beyond) against the evaluate stage's accuracy
metrics (audiorec.metrics.per_user_metrics, the baseline), timed in the same run on the same
synthetic split shaped like Music4All-Onion: `--users` users with a ranked top-`--top-k` list
each, a train log of `--pairs` (user, track) pairs over `--tracks` tracks (lognormal user
activity, track popularity ~ rank^-0.9), about three held-out tracks per user, and a
`--dim`-d reference space for diversity.

"new" is everything the evaluate stage would add for one split: the catalogue (hot_candidates),
track_popularity, train_plays, bucket_of_tracks, per_user_beyond with the reference vectors,
bucket_accuracy and catalogue_metrics. The project's target: new / baseline at most 10% at
Music4All's shape. Each time is the fastest of `--repeats` runs (a step's row: its fastest; the
total: the fastest whole run). Peak memory is tracemalloc's peak above what was allocated
before the call, in one more, untimed run (tracing slows allocation).

  python benchmarks/beyond_metrics.py                        # Music4All's shape, about two minutes
  python benchmarks/beyond_metrics.py --users 2000 --tracks 5000 --pairs 500000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiorec.evaluation import beyond  # noqa: E402
from audiorec.evaluation.ranking import hot_candidates  # noqa: E402
from audiorec.metrics import per_user_metrics  # noqa: E402

HEAD_SHARE, TAIL_SHARE = 0.2, 0.5
TRUTH_PER_USER = 3
Result = TypeVar("Result")


def popularity_ranks(rng: np.random.Generator, n_tracks: int, size: int) -> np.ndarray:
    """Popularity ranks (0 the most popular) drawn with probability ~ rank^-0.9."""
    weights = np.arange(1, n_tracks + 1, dtype=np.float64) ** -0.9
    return np.minimum(np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(size)), n_tracks - 1)


def synthetic_split(
    n_users: int, n_tracks: int, n_pairs: int, top_k: int, dim: int, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray]:
    """train (one row per pair), predictions (a ranked list per user), truth (catalogue tracks
    only, as the hot splits') and the reference vectors."""
    rng = np.random.default_rng(seed)
    names = np.array([f"u{user:05d}" for user in range(n_users)], dtype=object)
    by_popularity = rng.permutation(n_tracks)  # the popular tracks spread over the index
    activity = rng.lognormal(0.0, 1.0, size=n_users)
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n_pairs:  # repeated pairs merge: draw again for the shortfall
        draws = int((n_pairs - len(keys)) * 1.2) + 1
        users = np.repeat(np.arange(n_users), rng.multinomial(draws, activity / activity.sum()))
        drawn = users * n_tracks + by_popularity[popularity_ranks(rng, n_tracks, draws)]
        keys = pd.unique(np.concatenate([keys, drawn]))
    keys = np.sort(keys[:n_pairs])
    train = pd.DataFrame(
        {
            "user_id": names[keys // n_tracks],
            "track_idx": keys % n_tracks,
            "timestamp": pd.Timestamp("2019-01-01"),
            "count": rng.geometric(0.3, size=len(keys)),
        }
    )
    catalogue = hot_candidates(train)
    # Distinct tracks in each list, as the rankers write them: a window of a shuffled catalogue.
    windows = (rng.integers(0, len(catalogue), size=(n_users, 1)) + np.arange(top_k)) % len(catalogue)
    ranked = rng.permutation(catalogue)[windows]
    predictions = pd.DataFrame({"user_id": names, "track_idx": list(ranked)})
    truth_users = np.repeat(np.arange(n_users), TRUTH_PER_USER)
    truth_tracks = by_popularity[popularity_ranks(rng, n_tracks, len(truth_users))]
    truth = pd.DataFrame({"user_id": names[truth_users], "track_idx": truth_tracks}).drop_duplicates()
    truth = truth[np.isin(truth["track_idx"], catalogue)]
    vectors = rng.standard_normal((n_tracks, dim), dtype=np.float32)
    return as_read(train), as_read(predictions), as_read(truth), vectors


def as_read(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame through a parquet file, as the evaluate stage reads it: arrow-backed user ids in
    chunks, each ranked list its own numpy array (hashing the ids in one chunk takes twice as long)."""
    with tempfile.TemporaryDirectory() as scratch:
        frame.to_parquet(Path(scratch) / "frame.parquet", index=False)
        return pd.read_parquet(Path(scratch) / "frame.parquet")


def new_metrics(
    train: pd.DataFrame, predictions: pd.DataFrame, truth: pd.DataFrame, vectors: np.ndarray, ks: list[int]
) -> dict[str, float]:
    """Seconds per step of everything the beyond-accuracy metrics add for one split."""
    n_tracks = len(vectors)
    users = np.sort(truth["user_id"].unique())  # the evaluated users, as per_user_metrics orders them
    seconds: dict[str, float] = {}
    seconds["track_popularity"], popularity = timed(lambda: beyond.track_popularity(train, n_tracks))
    seconds["catalogue, train_plays, bucket_of_tracks"], (catalogue, bucket) = timed(lambda: buckets(train, n_tracks))
    seconds["per_user_beyond"], _ = timed(
        lambda: beyond.per_user_beyond(predictions, train, popularity, ks, users, vectors)
    )
    seconds["bucket_accuracy"], _ = timed(lambda: beyond.bucket_accuracy(truth, predictions, bucket, ks, users))
    seconds["catalogue_metrics"], _ = timed(lambda: beyond.catalogue_metrics(predictions, catalogue, ks))
    return seconds


def buckets(train: pd.DataFrame, n_tracks: int) -> tuple[np.ndarray, np.ndarray]:
    catalogue = hot_candidates(train)
    return catalogue, beyond.bucket_of_tracks(beyond.train_plays(train, n_tracks), catalogue, HEAD_SHARE, TAIL_SHARE)


def timed(run: Callable[[], Result]) -> tuple[float, Result]:
    started = time.perf_counter()
    value = run()
    return time.perf_counter() - started, value


def peak_added(run: Callable[[], object]) -> int:
    """tracemalloc's peak above the memory traced before `run`, in bytes."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=17_000)
    parser.add_argument("--tracks", type=int, default=56_512)
    parser.add_argument("--pairs", type=int, default=5_000_000, help="train (user, track) pairs")
    parser.add_argument("--top-k", type=int, default=100, help="length of each ranked list")
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--dim", type=int, default=128, help="width of the reference space (diversity)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each; the fastest counts")
    args = parser.parse_args()

    building, (train, predictions, truth, vectors) = timed(
        lambda: synthetic_split(args.users, args.tracks, args.pairs, args.top_k, args.dim)
    )
    print(
        f"{args.users:,} users, {args.tracks:,} tracks, {len(train):,} train pairs, {len(truth):,} truth pairs, "
        f"top-{args.top_k} lists, ks {args.ks}, {args.dim}-d reference (built in {building:.1f} s)\n"
    )
    # Each timing is the fastest of --repeats runs: other work on the machine only ever adds time.
    baseline = min(timed(lambda: per_user_metrics(truth, predictions, args.ks))[0] for _ in range(args.repeats))
    runs = [new_metrics(train, predictions, truth, vectors, args.ks) for _ in range(args.repeats)]
    steps = {name: min(run[name] for run in runs) for name in runs[0]}
    added = min(sum(run.values()) for run in runs)
    baseline_memory = peak_added(lambda: per_user_metrics(truth, predictions, args.ks))
    added_memory = peak_added(lambda: new_metrics(train, predictions, truth, vectors, args.ks))

    print("| step | seconds | / baseline |")
    print("|---|---|---|")
    print(f"| per_user_metrics (baseline) | {baseline:.2f} | 100% |")
    for name, seconds in steps.items():
        print(f"| {name} | {seconds:.3f} | {seconds / baseline:.1%} |")
    print(f"| **all new metrics** | **{added:.2f}** | **{added / baseline:.1%}** |")
    print(
        f"\npeak memory above the inputs: baseline {baseline_memory / 2**20:.0f} MiB, "
        f"new metrics {added_memory / 2**20:.0f} MiB"
    )
    print(f"target (new at most 10% of the baseline): {'met' if added <= 0.1 * baseline else 'NOT met'}")


if __name__ == "__main__":
    main()
