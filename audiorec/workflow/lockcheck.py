"""Is `dvc.lock` stale for the committed code and params?

In a clean clone nothing but git-tracked files exists, so `dvc status` reports
every data dependency and output as missing. Those are expected. What must not
happen is a git-tracked dependency (code, params.yaml) or git-tracked output
(the small metrics files) that differs from what `dvc.lock` recorded: then the
committed results were not produced by the committed code. Nor must dvc.lock hold a stage
that dvc.yaml no longer has (an orphan: DVC never removes one; `--prune` does).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

# DVC writes a .gitignore next to every cached output; a folder holding only those is data, not code.
DVC_GITIGNORE = ".gitignore"


def git_tracked(root: Path) -> set[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=root, check=True, capture_output=True, text=True).stdout
    return set(listed.splitlines())


def is_tracked(path: str, tracked: set[str]) -> bool:
    """A tracked file, or a folder with tracked files besides DVC's .gitignore files."""
    return path in tracked or any(name.startswith(f"{path}/") and Path(name).name != DVC_GITIGNORE for name in tracked)


def stale_stages(root: Path = Path(".")) -> dict[str, list[str]]:
    """Stage name -> what in git differs from `dvc.lock` (an empty dict when the lock is up to date)."""
    result = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dvc status failed in {root}: {result.stderr.strip()}")
    tracked = git_tracked(root)
    produced = stage_outputs(root)
    stale: dict[str, list[str]] = {name: ["in dvc.lock but not in dvc.yaml (orphan)"] for name in orphans(root)}
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
    """A stage's output, or a file inside an output folder (train@<run> reads data/code/train-<model>.json)."""
    return any(path == out or path.startswith(f"{out}/") for out in produced)


def locked_stages(root: Path) -> dict:
    path = root / "dvc.lock"
    return (yaml.safe_load(path.read_text()) or {}).get("stages", {}) if path.is_file() else {}


def stage_names(root: Path) -> set[str]:
    """The names dvc.lock keys its stages by: those of the root dvc.yaml (DVC's own `addressing`
    is relative to the current directory, which need not be `root`)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {stage.name for stage in repo.index.stages if Path(stage.path).name == "dvc.yaml"}


def orphans(root: Path = Path(".")) -> list[str]:
    """Stages dvc.lock records that dvc.yaml does not define."""
    defined = stage_names(root)
    return [name for name in locked_stages(root) if name not in defined]


def prune(root: Path = Path(".")) -> list[str]:
    """Remove the orphans from dvc.lock; the names removed."""
    from dvc.utils.serialize import modify_yaml

    removed = orphans(root)
    if removed:
        # DVC's own round trip: the rest of the file keeps the layout DVC writes, so pruning changes only those lines.
        with modify_yaml(root / "dvc.lock") as lock:
            for name in removed:
                del lock["stages"][name]
    return removed


def stage_outputs(root: Path) -> set[str]:
    """Every path a stage of dvc.yaml writes."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {out.def_path for stage in repo.index.stages for out in stage.outs}
