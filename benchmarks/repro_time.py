"""Wall time of each stage of a from-scratch `dvc repro` of the default pipeline.

Runs in a scratch copy of the repo (nothing in the workspace changes) and
prints one line per stage plus the total against the 10-minute budget, and the CPU
time all stages used (user + system, DVC's and every stage's process): divided by the
machine's cores, the least time any schedule of these stages could take here.
Usage: python benchmarks/repro_time.py [--size small|tiny] [--graph-set KEY=VALUE ...]
(--graph-set: a grid key for `python -m stages.graph -S` in the copy, e.g.
'layer_sweep.models=[knn,shallow]')
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audiorec.workflow.worktree import DVC, copy_worktree, pipeline_env, set_params

BUDGET_SECONDS = 600
# Searched, not matched at the line's start: a stage's progress bar ends without a newline, so the
# next stage's line can follow it on the same line.
STAGE_START = re.compile(r"Running stage '([^']+)'")


def cpu_seconds() -> float:
    """User + system time of this process's finished children and theirs (DVC waits for each stage's command)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_repro(root: Path) -> tuple[list[tuple[str, float]], float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        DVC + ["repro"], cwd=root, env=pipeline_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    timings: list[tuple[str, float]] = []
    current, current_start = None, started
    for line in process.stdout:
        match = STAGE_START.search(line)
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
    parser.add_argument(
        "--graph-set", action="append", default=[], help="KEY=VALUE for `python -m stages.graph -S` in the copy"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = copy_worktree(Path(scratch))
        if args.size:
            set_params(root, "dataset", size=args.size)
        if args.graph_set:
            overrides = [arg for value in args.graph_set for arg in ("-S", value)]
            subprocess.run([sys.executable, "-m", "stages.graph", *overrides], cwd=root, env=pipeline_env(), check=True)
        cpu_before = cpu_seconds()
        timings, total = timed_repro(root)
        cpu = cpu_seconds() - cpu_before
    width = max(len(name) for name, _ in timings)
    for name, seconds in timings:
        print(f"{name:<{width}}  {seconds:7.1f} s")
    print(
        f"{'total dvc repro':<{width}}  {total:7.1f} s  ({total / BUDGET_SECONDS:.2f} of the {BUDGET_SECONDS} s budget)"
    )
    cores = len(os.sched_getaffinity(0))
    print(
        f"{'CPU time':<{width}}  {cpu:7.1f} s  (over {cores} cores {cpu / cores:.0f} s: the floor for running "
        "these same processes side by side)"
    )


if __name__ == "__main__":
    main()
