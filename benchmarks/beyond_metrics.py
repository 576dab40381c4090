"""What the beyond-accuracy metrics add to the evaluate stage (stages/evaluate.py), timed on
files shaped like Music4All-Onion's: the project's target is at most 10% more than the stage
without them.

A temporary folder is laid out as the repository: params.yaml (the repository's, with
`evaluate.diversity_space` naming the benchmark's reference vectors), data/splits/{train,val,
test,cold_test}.parquet (user_id, track_idx, timestamp, count), one run's predictions parquet
(split, user_id, track_idx: a ranked list) and data/embeddings/<space>.npy. The train log has
`--pairs` (user, track) pairs of `--users` users (lognormal activity) over the hot tracks
(popularity ~ rank^-0.9); `--cold-tracks` of the `--tracks` are never played in train. test
holds about three tracks of every user, val of `--val-users` of them; cold_test's
`--cold-users` users each hold about three cold tracks, and their lists rank the cold tracks
of cold_test, the hot splits' lists the train catalogue, `--top-k` distinct tracks each. The
split sizes not given keep Music4All's proportions to `--users` and `--tracks`.

- with: stages.evaluate.main() itself, in that folder.
- without: main() as it was before the beyond-accuracy metrics (commit 3ef601e^), replicated
  here since the stage has no switch for them: no train log or reference vectors read, no
  Catalogue, no split_metrics, merge or catalogue JSON; the same reads, per_user_metrics,
  summarise and writes. The benchmark checks that its per-user file is the stage's less the
  beyond-accuracy columns.

Each time is the fastest of `--repeats` runs of each, interleaved. Peak memory is each one's
peak resident set in a process of its own (pyarrow allocates outside tracemalloc's sight)
above the resident set before the run (the imports; Linux only).

  python benchmarks/beyond_metrics.py                        # Music4All's shape, under a minute
  python benchmarks/beyond_metrics.py --users 2000 --tracks 5000 --pairs 500000
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import yaml

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from audiorec import paths  # noqa: E402
from audiorec.evaluation.beyond import Catalogue, split_metrics  # noqa: E402
from audiorec.io import write_json  # noqa: E402
from audiorec.metrics import per_user_metrics, summarise  # noqa: E402
from audiorec.params import read_params  # noqa: E402
from stages import evaluate  # noqa: E402

BACKEND, RUN, SPACE = "bench", "ranker", "reference"
# Music4All-Onion's shape: the defaults, and the proportions the split sizes keep at any other.
USERS, TRACKS, PAIRS = 17_000, 56_512, 5_000_000
VAL_USERS, COLD_USERS, COLD_TRACKS = 2_500, 1_500, 2_000
TRUTH_PER_USER = 3
DAY = np.timedelta64(1, "D")


def popularity_ranks(rng: np.random.Generator, n_tracks: int, size: int) -> np.ndarray:
    """Popularity ranks (0 the most popular) drawn with probability ~ rank^-0.9."""
    weights = np.arange(1, n_tracks + 1, dtype=np.float64) ** -0.9
    return np.minimum(np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(size)), n_tracks - 1)


def log_frame(rng: np.random.Generator, names: np.ndarray, users: np.ndarray, tracks: np.ndarray) -> pd.DataFrame:
    """A split in the pipeline's columns and dtypes (audiorec.data.split)."""
    return pd.DataFrame(
        {
            "user_id": names[users],
            "track_idx": tracks.astype(np.int32),
            "timestamp": np.datetime64("2019-01-01", "ms") + rng.integers(0, 365, size=len(users)) * DAY,
            "count": rng.geometric(0.3, size=len(users)).astype(np.int64),
        }
    )


def train_log(rng: np.random.Generator, names: np.ndarray, hot: np.ndarray, n_pairs: int) -> pd.DataFrame:
    """`n_pairs` distinct (user, track) pairs, the `hot` tracks in popularity order."""
    activity = rng.lognormal(0.0, 1.0, size=len(names))
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n_pairs:  # repeated pairs merge: draw again for the shortfall
        draws = int((n_pairs - len(keys)) * 1.2) + 1
        users = np.repeat(np.arange(len(names)), rng.multinomial(draws, activity / activity.sum()))
        drawn = users * len(hot) + popularity_ranks(rng, len(hot), draws)
        keys = pd.unique(np.concatenate([keys, drawn]))
    keys = np.sort(keys[:n_pairs])
    return log_frame(rng, names, keys // len(hot), hot[keys % len(hot)])


def truth_log(
    rng: np.random.Generator, names: np.ndarray, users: np.ndarray, tracks: np.ndarray, popular: bool = True
) -> pd.DataFrame:
    """About `TRUTH_PER_USER` of `tracks` for each of `users`: drawn by popularity (`tracks` in
    popularity order), or uniformly (cold tracks, which have none)."""
    rows = np.repeat(users, TRUTH_PER_USER)
    drawn_at = popularity_ranks(rng, len(tracks), len(rows)) if popular else rng.integers(0, len(tracks), len(rows))
    drawn = pd.DataFrame({"user": rows, "track": tracks[drawn_at]})
    drawn = drawn.drop_duplicates()
    return log_frame(rng, names, drawn["user"].to_numpy(), drawn["track"].to_numpy())


def ranked_lists(rng: np.random.Generator, candidates: np.ndarray, n_users: int, top_k: int) -> list[np.ndarray]:
    """Distinct tracks in each list, as the rankers write them: a window of a shuffled candidate set."""
    starts = rng.integers(0, len(candidates), size=(n_users, 1))
    windows = (starts + np.arange(min(top_k, len(candidates)))) % len(candidates)
    return list(rng.permutation(candidates)[windows].astype(np.int32))


def synthetic_splits(
    rng: np.random.Generator, args: argparse.Namespace
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The train log and each split's truth (evaluate.TRUTH's keys)."""
    names = np.array([f"user_{user:08d}" for user in range(args.users)], dtype=object)
    by_popularity = rng.permutation(args.tracks)  # the popular tracks spread over the index
    train = train_log(rng, names, by_popularity[args.cold_tracks :], args.pairs)
    catalogue = np.sort(train["track_idx"].unique())
    val_users = np.sort(rng.choice(args.users, size=args.val_users, replace=False))
    cold_users = np.sort(rng.choice(args.users, size=args.cold_users, replace=False))
    return train, {
        "val": truth_log(rng, names, val_users, catalogue),
        "test": truth_log(rng, names, np.arange(args.users), catalogue),
        "cold": truth_log(rng, names, cold_users, by_popularity[: args.cold_tracks], popular=False),
    }


def ranked_splits(
    rng: np.random.Generator, train: pd.DataFrame, truths: dict[str, pd.DataFrame], top_k: int
) -> pd.DataFrame:
    """One run's predictions, as audiorec.evaluation.ranking.rank_splits writes them: for each
    split's users, a list over the train catalogue (cold: over cold_test's tracks)."""
    catalogue = np.sort(train["track_idx"].unique())
    predictions = []
    for split, truth in truths.items():
        users = np.sort(truth["user_id"].unique())
        candidates = np.unique(truth["track_idx"]) if split == "cold" else catalogue
        lists = ranked_lists(rng, candidates, len(users), top_k)
        predictions.append(pd.DataFrame({"split": split, "user_id": users, "track_idx": lists}))
    return pd.concat(predictions, ignore_index=True)


def write_inputs(root: Path, args: argparse.Namespace, seed: int = 0) -> None:
    """The stage's inputs under `root`, laid out as in the repository."""
    rng = np.random.default_rng(seed)
    train, truths = synthetic_splits(rng, args)
    with contextlib.chdir(root):
        paths.SPLITS.mkdir(parents=True)
        train.to_parquet(paths.SPLITS / "train.parquet", index=False)
        for split, name in evaluate.TRUTH.items():
            truths[split].to_parquet(paths.SPLITS / name, index=False)
        paths.predictions(BACKEND, RUN).parent.mkdir(parents=True)
        ranked_splits(rng, train, truths, args.top_k).to_parquet(paths.predictions(BACKEND, RUN), index=False)
        paths.embeddings(SPACE).parent.mkdir(parents=True)
        np.save(paths.embeddings(SPACE), rng.standard_normal((args.tracks, args.dim), dtype=np.float32))
        params = read_params(REPOSITORY / "params.yaml")
        params["evaluate"]["diversity_space"] = SPACE
        Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def stage_with_beyond() -> None:
    """The evaluate stage as it is."""
    with mock.patch.object(sys, "argv", ["evaluate", "--backend", BACKEND, "--model", RUN]):
        evaluate.main()


def stage_without_beyond() -> None:
    """stages.evaluate.main() as it was before the beyond-accuracy metrics (3ef601e^), line for
    line but for the argument parsing and logging setup (the same in both)."""
    ks = read_params()["evaluate"]["ks"]
    predictions = pd.read_parquet(paths.predictions(BACKEND, RUN))
    per_user, summary = [], {}
    for split, name in evaluate.TRUTH.items():
        ranked = predictions[predictions["split"] == split]
        if split == "cold" and ranked.empty:
            continue
        truth = pd.read_parquet(paths.SPLITS / name, columns=["user_id", "track_idx"])
        values = per_user_metrics(truth, ranked, ks)
        summary[split] = summarise(values)
        per_user.append(values.assign(split=split))
    out = paths.per_user(BACKEND, RUN)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(per_user, ignore_index=True).to_parquet(out, index=False)
    write_json(summary, paths.run_metrics(BACKEND, RUN))


STAGES = {"without": stage_without_beyond, "with": stage_with_beyond}


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def check_replica() -> None:
    """The replica's per-user file is the stage's without the beyond-accuracy columns."""
    stage_without_beyond()
    without = pd.read_parquet(paths.per_user(BACKEND, RUN))
    stage_with_beyond()
    with_beyond = pd.read_parquet(paths.per_user(BACKEND, RUN))
    pd.testing.assert_frame_equal(with_beyond[without.columns], without)


def beyond_steps() -> dict[str, float]:
    """Seconds of each beyond-accuracy step of the stage, its lines replicated one by one."""
    settings = read_params()["evaluate"]
    ks, buckets = settings["ks"], settings["popularity_buckets"]
    predictions = pd.read_parquet(paths.predictions(BACKEND, RUN))
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    train = pd.read_parquet(paths.SPLITS / "train.parquet", columns=["user_id", "track_idx", "count"])
    seconds["read train"] = time.perf_counter() - started
    started = time.perf_counter()
    vectors = np.nan_to_num(np.load(paths.embeddings(SPACE)))
    seconds["load reference vectors"] = time.perf_counter() - started
    started = time.perf_counter()
    tracks = Catalogue.of(train, len(vectors), buckets["head"], buckets["tail"], vectors)
    seconds["Catalogue.of"] = time.perf_counter() - started
    for split, name in evaluate.TRUTH.items():
        ranked = predictions[predictions["split"] == split]
        truth = pd.read_parquet(paths.SPLITS / name, columns=["user_id", "track_idx"])
        values = per_user_metrics(truth, ranked, ks)
        started = time.perf_counter()
        beyond, _ = split_metrics(tracks, split, truth, ranked, ks, values["user_id"].to_numpy())
        values.merge(beyond, on="user_id", validate="one_to_one")
        seconds[f"split_metrics + merge, {split}"] = time.perf_counter() - started
    return seconds


def peak_memory(root: Path, stage: str) -> int:
    """The peak resident set `stage` adds to a fresh process's (after its imports), in bytes."""
    run = [sys.executable, __file__, "--peak-of", stage, "--root", str(root)]
    return int(subprocess.run(run, check=True, capture_output=True, text=True).stdout.split()[-1])


def report_peak(root: Path, stage: str) -> None:
    """Print (for peak_memory) the peak resident set of `stage` above this process's before it."""
    before = resident_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # restarts the peak (VmHWM) from the current set: Linux only
    with contextlib.chdir(root):
        STAGES[stage]()
    print((resident_kib("VmHWM") - before) * 1024)


def resident_kib(field: str) -> int:
    """A resident set size of /proc/self/status (VmRSS: now, VmHWM: the peak), in KiB."""
    lines = Path("/proc/self/status").read_text().splitlines()
    return int(next(line.split()[1] for line in lines if line.startswith(f"{field}:")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=USERS, help="train and test users")
    parser.add_argument("--tracks", type=int, default=TRACKS)
    parser.add_argument("--pairs", type=int, default=PAIRS, help="train (user, track) pairs")
    parser.add_argument("--cold-tracks", type=int, help="tracks outside train, ranked for cold_test")
    parser.add_argument("--val-users", type=int)
    parser.add_argument("--cold-users", type=int)
    parser.add_argument("--top-k", type=int, default=100, help="length of each ranked list")
    parser.add_argument("--dim", type=int, default=128, help="width of the reference space (diversity)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each; the fastest counts")
    parser.add_argument("--peak-of", choices=list(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_of:
        report_peak(args.root, args.peak_of)
        return
    args.val_users = args.val_users or round(args.users * VAL_USERS / USERS)
    args.cold_users = args.cold_users or round(args.users * COLD_USERS / USERS)
    args.cold_tracks = args.cold_tracks or round(args.tracks * COLD_TRACKS / TRACKS)

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        building = timed(lambda: write_inputs(root, args))
        with contextlib.chdir(root):
            check_replica()
            # Interleaved, so that other work on the machine weighs on both alike; the fastest
            # counts, as such work only ever adds time.
            runs = [{stage: timed(run) for stage, run in STAGES.items()} for _ in range(args.repeats)]
            steps = [beyond_steps() for _ in range(args.repeats)]
        memory = {stage: peak_memory(root, stage) for stage in STAGES}
    without, with_beyond = (min(run[stage] for run in runs) for stage in STAGES)
    ratio = with_beyond / without

    print(
        f"{args.users:,} users ({args.val_users:,} val, {args.cold_users:,} cold), {args.tracks:,} tracks "
        f"({args.cold_tracks:,} cold), {args.pairs:,} train pairs, top-{args.top_k} lists, {args.dim}-d reference "
        f"(inputs written in {building:.0f} s)\n"
    )
    print(f"| evaluate stage | seconds (fastest of {args.repeats}) | peak memory above the imports |")
    print("|---|---|---|")
    print(f"| without beyond accuracy (before 3ef601e) | {without:.3f} | {memory['without'] / 2**20:.0f} MiB |")
    print(f"| with beyond accuracy (stages.evaluate.main) | {with_beyond:.3f} | {memory['with'] / 2**20:.0f} MiB |")
    print(f"\nwith / without: {ratio:.3f} (target at most 1.10: {'met' if ratio <= 1.10 else 'NOT met'})")
    print(f"peak memory the beyond-accuracy metrics add: {(memory['with'] - memory['without']) / 2**20:.0f} MiB")
    print("\nthe beyond-accuracy steps, each its fastest:")
    for name in steps[0]:
        print(f"  {name}: {min(step[name] for step in steps):.3f} s")


if __name__ == "__main__":
    main()
