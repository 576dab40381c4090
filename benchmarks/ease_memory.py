"""EASE memory and time: the in-place Cholesky path vs the textbook `numpy.linalg.inv` path.

The data is a synthetic binary user x track matrix shaped like Music4All-Onion
(`--users` users, `--per-user` distinct tracks each on average, lognormal
activity, power-law track popularity). Each (variant, size) runs in its own
process, so its peak memory (the kernel's VmHWM, reset before each phase
through /proc/self/clear_refs) is its own:

- `cholesky` at `--shared` and each of `--sizes`: `EASERecommender.fit` (memory
  guard, in-place `ease_weights`), then `recommend` for one batch of users.
- `inv` at `--shared` tracks: the same model and harness with the weights computed
  by the textbook formula (kept here only as the baseline): a sparse
  X^T X made dense, `numpy.linalg.inv`, then B.

"copies" is the phase's peak above the memory held before it, in units of one
n x n float32 matrix. The last lines fit the guard's model (audiorec.models.ease:
`required_bytes`) to the two smallest Cholesky sizes and compare its estimate
with every measured peak. The residual checks B at scale without a second matrix:
off the diagonal, (X^T X + l2 I) B must equal X^T X + l2 I.
Usage: python benchmarks/ease_memory.py [--shared 10000] [--sizes 24214 56512] [--users 17000] [--per-user 90]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from scipy import sparse

L2 = 500.0
BATCH = 1024
TOP_K = 100
CHECKED_COLUMNS = 8


def synthetic_interactions(n_users: int, n_items: int, per_user: float, seed: int = 0) -> sparse.csr_matrix:
    """Binary users x tracks: lognormal user activity, track popularity ~ rank^-0.9, duplicates merged."""
    rng = np.random.default_rng(seed)
    activity = np.clip(rng.lognormal(np.log(per_user) - 0.5, 1.0, size=n_users), 1, n_items).astype(np.int64)
    popularity = np.arange(1, n_items + 1, dtype=np.float64) ** -0.9
    tracks = np.searchsorted(np.cumsum(popularity / popularity.sum()), rng.random(activity.sum()))
    users = np.repeat(np.arange(n_users), activity)
    tracks = rng.permutation(n_items)[np.minimum(tracks, n_items - 1)]  # popular tracks anywhere in the index
    matrix = sparse.csr_matrix((np.ones(len(users), dtype=np.float32), (users, tracks)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def textbook_weights(interactions: sparse.csr_matrix, l2: float) -> np.ndarray:
    """The textbook EASE weights that audiorec.models.ease.ease_weights replaced, the baseline only."""
    gram = (interactions.T @ interactions).toarray().astype(np.float32)
    gram[np.diag_indices_from(gram)] += l2
    inverse = np.linalg.inv(gram)
    del gram
    weights = inverse / -np.diag(inverse)[None, :]
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


def memory_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def reset_peak() -> int:
    """Reset the peak (VmHWM) to the current resident size and return that size in bytes."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return memory_kib("VmRSS") * 1024


def peak_bytes() -> int:
    return memory_kib("VmHWM") * 1024


def residual(interactions: sparse.csr_matrix, weights: np.ndarray, l2: float, seed: int = 1) -> float:
    """Largest |((G B) - G)_ij| / max|G_:j| over sampled columns j, i != j, with G = X^T X + l2 I (float64)."""
    x = interactions.astype(np.float64)
    worst = 0.0
    for column in np.random.default_rng(seed).choice(weights.shape[1], CHECKED_COLUMNS, replace=False):
        b = weights[:, column].astype(np.float64)
        gram_column = (x.T @ x[:, [column]]).toarray().ravel()
        gram_column[column] += l2
        error = x.T @ (x @ b) + l2 * b - gram_column
        error[column] = 0.0
        worst = max(worst, float(np.abs(error).max() / np.abs(gram_column).max()))
    return worst


def run_variant(variant: str, n_items: int, n_users: int, per_user: float) -> dict:
    from audiorec.models import ease
    from audiorec.settings.ease import EASESettings

    if variant == "inv":  # the same model and harness, only the weights computed the old way
        ease.ease_weights = lambda interactions, l2, dtype: textbook_weights(interactions, l2)
    interactions = synthetic_interactions(n_users, n_items, per_user)
    result = {"variant": variant, "items": n_items, "users": n_users, "pairs": int(interactions.nnz)}
    users, tracks = interactions.nonzero()
    train = pd.DataFrame({"user_id": [f"u{user:05d}" for user in users], "track_idx": tracks})
    del users, tracks
    before = reset_peak()
    started = time.perf_counter()
    model = ease.EASERecommender(EASESettings(l2=L2, batch_size=BATCH, dtype="float32")).fit(
        np.zeros((n_items, 0), dtype=np.float32), train
    )
    result.update(fit_s=time.perf_counter() - started, fit_extra=peak_bytes() - before)
    before = reset_peak()
    started = time.perf_counter()
    model.recommend(list(model._user_rows[:BATCH]), TOP_K)
    result.update(score_s=time.perf_counter() - started, score_extra=peak_bytes() - before)
    result["residual"] = residual(model.interactions, model.weights, L2)
    return result


def measure(variant: str, n_items: int, args: argparse.Namespace) -> dict:
    # faulthandler: a crash inside LAPACK still names the Python line that called it.
    command = [sys.executable, "-X", "faulthandler", __file__, "--variant", variant, "--items", str(n_items)]
    command += ["--users", str(args.users), "--per-user", str(args.per_user)]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        reason = f"signal {-finished.returncode}" if finished.returncode < 0 else f"exit {finished.returncode}"
        tail = "\n    ".join(finished.stderr.strip().splitlines()[-8:])
        return {"variant": variant, "items": n_items, "failed": f"{reason}\n    {tail}"}
    return json.loads(finished.stdout.strip().splitlines()[-1])


def print_row(row: dict) -> None:
    gib, matrix = 2**30, 4 * row["items"] ** 2
    if "failed" in row:
        print(f"{row['variant']:<9}{row['items']:>8}  FAILED: {row['failed']}", flush=True)
        return
    line = (
        f"{row['variant']:<9}{row['items']:>8}{row['pairs']:>10}{row['fit_s']:>9.1f} s"
        f"{row['fit_extra'] / gib:>9.2f} GiB{row['fit_extra'] / matrix:>7.2f}"
    )
    line += f"{row['score_s']:>9.1f} s{row['score_extra'] / gib:>8.2f} GiB   {row['residual']:.1e}"
    print(line, flush=True)


def fit_guard(rows: list[dict]) -> None:
    """Copies and fixed overhead of `fit` from the two smallest sizes; bytes per scored cell from the largest."""
    from audiorec.models.ease import required_bytes

    small, large = sorted(rows, key=lambda row: row["items"])[:2]
    bytes_small, bytes_large = (4 * row["items"] ** 2 for row in (small, large))
    copies = (large["fit_extra"] - small["fit_extra"]) / (bytes_large - bytes_small)
    overhead = small["fit_extra"] - copies * bytes_small
    cell = max(row["score_extra"] / (BATCH * row["items"]) for row in rows)
    print(
        f"fit from {small['items']} and {large['items']} tracks: "
        f"{copies:.3f} copies of the matrix + {overhead / 2**20:.0f} MiB;"
        f" scoring {cell:.1f} bytes per (user, track) cell (largest measured)"
    )
    for row in rows:
        measured = max(row["fit_extra"], 4 * row["items"] ** 2 + row["score_extra"])
        estimate = required_bytes(row["items"], BATCH)
        print(
            f"  {row['items']:>6} tracks: guard estimate {estimate / 2**30:6.2f} GiB, measured peak "
            f"{measured / 2**30:6.2f} GiB ({'covers' if estimate >= measured else 'UNDER-ESTIMATES'})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=int, default=10_000, help="catalogue size where both paths run")
    parser.add_argument("--sizes", type=int, nargs="*", default=[24_214, 56_512], help="Cholesky path only")
    parser.add_argument("--users", type=int, default=17_000)
    parser.add_argument("--per-user", type=float, default=90.0)
    parser.add_argument(
        "--variant", choices=("inv", "cholesky"), help="run one variant in this process (used internally)"
    )
    parser.add_argument("--items", type=int, help="with --variant: the catalogue size")
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.items, args.users, args.per_user)))
        return
    print(
        f"{args.users} users, ~{args.per_user:g} tracks each, l2 {L2:g}, float32, scoring {BATCH} users x top {TOP_K}"
    )
    print(
        f"{'variant':<9}{'tracks':>8}{'pairs':>10}{'fit':>11}"
        f"{'fit peak':>13}{'copies':>7}{'score':>11}{'peak':>12}   residual"
    )
    old = measure("inv", args.shared, args)
    print_row(old)
    new = [measure("cholesky", args.shared, args)]
    print_row(new[0])
    if "failed" not in old and "failed" not in new[0]:
        print(
            f"at {args.shared} tracks: {old['fit_s'] / new[0]['fit_s']:.1f}x faster, "
            f"{old['fit_extra'] / new[0]['fit_extra']:.1f}x less peak memory than numpy.linalg.inv"
        )
    for n_items in args.sizes:
        new.append(measure("cholesky", n_items, args))
        print_row(new[-1])
    measured = [row for row in new if "failed" not in row]
    if len(measured) >= 2:
        fit_guard(measured)


if __name__ == "__main__":
    main()
