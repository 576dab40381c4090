"""Queued hyperparameter sweeps with `dvc exp run --queue`, minus their sharp edges.

- A queued experiment is a git commit: without a git identity DVC fails when
  the queue runs, long after queueing. A repo-local identity is set if none exists.
- A queued experiment sees only what git tracks or has staged: an untracked
  file (a new model module, say) is silently missing from every run, so the
  sweep refuses to start and names the files.
- `dvc queue start` holds the caller's stdout until the queue finishes when
  piped, so its output goes to a log file and the queue is polled instead.
- dvc.yaml lists every run of params.yaml's grid (audiorec.workflow.graph), so a `-S` on a
  grid list (backends, models, ...) cannot go to DVC, which would run the old list: it is
  applied to params.yaml and dvc.yaml (`python -m stages.graph -S`) while the points are
  queued, which snapshots both, then the workspace gets its own files back. Each grid `-S`
  takes one value; the other `-S` make the points.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from audiorec.workflow.graph import is_grid_key

log = logging.getLogger(__name__)

DVC = [sys.executable, "-m", "dvc"]
SWEEP_IDENTITY = {"user.name": "audiorec sweep", "user.email": "sweep@audiorec.invalid"}
QUEUE_LOG = Path(".dvc/tmp/sweep-queue.log")


class SweepError(RuntimeError):
    pass


def _run(command: list[str], root: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SweepError(
            f"`{' '.join(command[2:] if command[:2] == DVC[:2] else command)}` failed:\n"
            f"{result.stderr or result.stdout}"
        )
    return result


def ensure_git_identity(root: Path) -> None:
    for key, value in SWEEP_IDENTITY.items():
        if not _run(["git", "config", key], root, check=False).stdout.strip():
            log.warning("no git %s: setting %r for this repository only (queued experiments are commits)", key, value)
            _run(["git", "config", "--local", key, value], root)


def untracked_files(root: Path) -> list[str]:
    listed = _run(["git", "ls-files", "--others", "--exclude-standard"], root).stdout
    return listed.splitlines()


QUEUED = re.compile(r"Queued experiment '([^']+)'")


def queue(set_params: list[str], root: Path) -> list[str]:
    """Queue one experiment per point of the grid the `-S` values describe; their names."""
    missing = untracked_files(root)
    if missing:
        raise SweepError(
            f"{len(missing)} untracked files would be missing from every queued run (first: {missing[0]}); "
            "`git add` them (or commit) and sweep again"
        )
    ensure_git_identity(root)
    grid = [value for value in set_params if is_grid_param(value)]
    points = [value for value in set_params if not is_grid_param(value)]
    with grid_applied(root, grid):
        result = _run([*DVC, "exp", "run", "--queue", *[arg for value in points for arg in ("-S", value)]], root)
    return QUEUED.findall(result.stdout + result.stderr)


def is_grid_param(assignment: str) -> bool:
    return is_grid_key(assignment.split("=", 1)[0])


@contextmanager
def grid_applied(root: Path, assignments: list[str]) -> Iterator[None]:
    """params.yaml and dvc.yaml with the grid `assignments`, then the workspace's own again."""
    if not assignments:
        yield
        return
    saved = {name: (root / name).read_bytes() for name in ("params.yaml", "dvc.yaml")}
    try:
        _run([sys.executable, "-m", "stages.graph", *[arg for value in assignments for arg in ("-S", value)]], root)
        yield
    finally:
        for name, content in saved.items():
            (root / name).write_bytes(content)


STATES = ("Queued", "Running", "Success", "Failed")


def queue_status(root: Path) -> list[dict]:
    """The tasks of `dvc queue status` (it has no --json): their id, name and state."""
    tasks = []
    for line in _run([*DVC, "queue", "status"], root).stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[-1] in STATES:
            tasks.append({"task": fields[0], "name": fields[1], "status": fields[-1]})
    return tasks


def run_queue(root: Path, jobs: int, names: list[str], poll_seconds: float = 5.0) -> list[dict]:
    """Start `jobs` workers and wait until none of the experiments `names` is queued or
    running (tasks of earlier sweeps stay in `dvc queue status` and are not ours)."""
    (root / QUEUE_LOG).parent.mkdir(parents=True, exist_ok=True)
    with open(root / QUEUE_LOG, "a") as queue_log:
        subprocess.run(
            [*DVC, "queue", "start", "-j", str(jobs)], cwd=root, stdout=queue_log, stderr=subprocess.STDOUT, check=True
        )
    while True:
        status = [task for task in queue_status(root) if task["name"] in names]
        active = [task for task in status if task["status"] in ("Queued", "Running")]
        log.info("%d experiments queued or running", len(active))
        if not active:
            break
        time.sleep(poll_seconds)
    failed = [task for task in status if task["status"] == "Failed"]
    if failed:
        raise SweepError(
            f"{len(failed)} experiments failed (first: {failed[0]['name']}); "
            f"`dvc queue logs <name>` shows why, {QUEUE_LOG} has the workers' output"
        )
    return status
