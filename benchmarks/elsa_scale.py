"""ELSA at Music4All scale: fit time and peak memory, next to what EASE would need.

Builds a synthetic binary user x track log shaped like Music4All-Onion's train
split (56,512 tracks, about 17,000 users, about 5M distinct pairs; track
popularity and user activity follow power laws), fits the repository's
ELSARecommender on it with params.yaml's `elsa` settings (the journal's: 768
factors, batch 128, 10 epochs) on the CPU, ranks the top 100 unseen tracks for
`--rank-users` users, and prints the wall times and the process's peak resident
memory. In the same run it prints EASE's memory requirement for the same
catalogue (audiorec.models.ease.required_bytes), which EASE checks before it
starts, and the ratio of the two.
Usage: python benchmarks/elsa_scale.py [--scale 0.1] [--epochs 10]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd
import yaml

# Music4All-Onion's train split in the original study (reference/original-study.md).
TRACKS, USERS, PAIRS = 56_512, 17_053, 5_000_000


def power_law(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities proportional to rank^-exponent, over a random order of n items."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return rng.permutation(weights / weights.sum())


def synthetic_log(n_tracks: int, n_users: int, n_pairs: int, seed: int) -> pd.DataFrame:
    """About `n_pairs` distinct (user, track) pairs: draws with power-law popularity and
    activity, deduplicated, drawing more until the target is reached."""
    rng = np.random.default_rng(seed)
    popularity, activity = power_law(n_tracks, 0.8, rng), power_law(n_users, 0.6, rng)
    codes = np.empty(0, dtype=np.int64)
    while len(codes) < n_pairs:
        draws = int(1.2 * (n_pairs - len(codes))) + 1
        drawn = rng.choice(n_users, draws, p=activity) * n_tracks + rng.choice(n_tracks, draws, p=popularity)
        codes = np.unique(np.concatenate([codes, drawn]))
    codes = rng.permutation(codes)[:n_pairs]
    return pd.DataFrame({"user_id": codes // n_tracks, "track_idx": codes % n_tracks, "count": 1})


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of Music4All's tracks, users and pairs")
    parser.add_argument("--epochs", type=int, help="default: params.yaml elsa.max_epochs")
    parser.add_argument("--rank-users", type=int, default=2000, help="users to rank the top 100 unseen tracks for")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from audiorec.models.ease import required_bytes
    from audiorec.models.elsa import ELSARecommender
    from audiorec.settings.elsa import ELSASettings

    with open("params.yaml") as handle:
        settings = yaml.safe_load(handle)["elsa"]
    settings = {**settings, "device": "cpu", "resume": False, "stop_on": "none"}
    if args.epochs:
        settings["max_epochs"] = args.epochs
    n_tracks, n_users, n_pairs = (round(size * args.scale) for size in (TRACKS, USERS, PAIRS))
    started = time.perf_counter()
    train = synthetic_log(n_tracks, n_users, n_pairs, args.seed)
    print(
        f"synthetic log: {train['user_id'].nunique()} users x {n_tracks} tracks, {len(train)} pairs "
        f"({time.perf_counter() - started:.0f} s); peak RSS so far {peak_gib():.2f} GiB"
    )
    print(f"ELSA settings: {settings}")

    started = time.perf_counter()
    model = ELSARecommender(ELSASettings.model_validate(settings)).fit(np.zeros((n_tracks, 0), dtype=np.float32), train)
    fit_seconds = time.perf_counter() - started
    users = np.sort(train["user_id"].unique())[: args.rank_users]
    started = time.perf_counter()
    model.recommend(users, 100)
    rank_seconds = time.perf_counter() - started

    elsa_peak = peak_gib()
    ease_gib = required_bytes(n_tracks) / 2**30
    print(f"ELSA fit: {fit_seconds:.0f} s ({fit_seconds / settings['max_epochs']:.0f} s per epoch)")
    print(f"ELSA top-100 for {len(users)} users: {rank_seconds:.1f} s")
    print(f"ELSA peak RSS (whole process, data included): {elsa_peak:.2f} GiB")
    print(f"EASE requirement for {n_tracks} tracks (required_bytes): {ease_gib:.1f} GiB")
    print(f"EASE needs {ease_gib / elsa_peak:.1f}x ELSA's peak memory")


if __name__ == "__main__":
    main()
