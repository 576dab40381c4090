"""Wall time of each stage of a from-scratch `dvc repro` of the default pipeline.

Runs in a scratch copy of the repo (nothing in the workspace changes) and
prints one line per stage plus the total against the 10-minute budget.
Usage: python benchmarks/repro_time.py [--size small|tiny]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

from audiorec.workflow.worktree import DVC, copy_worktree, pipeline_env, set_params

BUDGET_SECONDS = 600
STAGE_START = re.compile(r"^Running stage '([^']+)'")


def timed_repro(root: Path) -> tuple[list[tuple[str, float]], float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        DVC + ["repro"], cwd=root, env=pipeline_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    timings: list[tuple[str, float]] = []
    current, current_start = None, started
    for line in process.stdout:
        match = STAGE_START.match(line)
        if match:
            now = time.perf_counter()
            if current:
                timings.append((current, now - current_start))
            current, current_start = match.group(1), now
    if process.wait() != 0:
        raise SystemExit(f"dvc repro failed in {root}")
    end = time.perf_counter()
    if current:
        timings.append((current, end - current_start))
    return timings, end - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default=None, help="dataset.size to run (default: params.yaml's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = copy_worktree(Path(scratch))
        if args.size:
            set_params(root, "dataset", size=args.size)
        timings, total = timed_repro(root)
    width = max(len(name) for name, _ in timings)
    for name, seconds in timings:
        print(f"{name:<{width}}  {seconds:7.1f} s")
    print(
        f"{'total dvc repro':<{width}}  {total:7.1f} s  ({total / BUDGET_SECONDS:.2f} of the {BUDGET_SECONDS} s budget)"
    )


if __name__ == "__main__":
    main()
