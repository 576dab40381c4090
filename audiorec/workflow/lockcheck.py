"""Is `dvc.lock` stale for the committed code and params?

In a clean clone nothing but git-tracked files exists, so `dvc status` reports
every data dependency and output as missing. Those are expected. What must not
happen is a git-tracked dependency (code, params.yaml) or git-tracked output
(the small metrics files) that differs from what `dvc.lock` recorded: then the
committed results were not produced by the committed code.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# DVC writes a .gitignore next to every cached output; a folder holding only those is data, not code.
DVC_GITIGNORE = ".gitignore"


def git_tracked(root: Path) -> set[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=root, check=True, capture_output=True, text=True).stdout
    return set(listed.splitlines())


def is_tracked(path: str, tracked: set[str]) -> bool:
    """A tracked file, or a folder with tracked files besides DVC's .gitignore files."""
    return path in tracked or any(
        name.startswith(f"{path}/") and Path(name).name != DVC_GITIGNORE for name in tracked
    )


def stale_stages(root: Path = Path(".")) -> dict[str, list[str]]:
    """Stage name -> what in git differs from `dvc.lock` (an empty dict when the lock is up to date)."""
    result = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dvc status failed in {root}: {result.stderr.strip()}")
    tracked = git_tracked(root)
    produced = stage_outputs(root)
    stale: dict[str, list[str]] = {}
    for stage, entries in json.loads(result.stdout or "{}").items():
        reasons = []
        for entry in entries:
            if isinstance(entry, str):  # "changed command", "always changed"
                reasons.append(entry)
                continue
            for changes in entry.values():
                for path, state in changes.items():
                    if isinstance(state, dict):  # params: {"knn.batch_size": "modified"}
                        reasons += [f"{path}: {name} {change}" for name, change in state.items()]
                    elif is_tracked(path, tracked) or (state == "deleted" and not is_produced(path, produced)):
                        # A deleted path no stage produces is code or input that was removed or renamed.
                        reasons.append(f"{path} {state}")
        if reasons:
            stale[stage] = reasons
    return stale


def is_produced(path: str, produced: set[str]) -> bool:
    """A stage's output, or a file inside an output folder (extract@<name> reads data/sources/<name>.json)."""
    return any(path == out or path.startswith(f"{out}/") for out in produced)


def stage_outputs(root: Path) -> set[str]:
    """Every path a stage of dvc.yaml writes."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {out.def_path for stage in repo.index.stages for out in stage.outs}
