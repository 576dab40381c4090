"""A scratch copy of this repository, for running the real pipeline away from the workspace.

Used by the end-to-end test and the benchmarks: the copy holds the files git
tracks or would track (no .venv, no data, no DVC cache), with its own git repo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def copy_worktree(destination: Path, source: Path = REPO) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    for name in listed:
        if (source / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, destination / name)
    # A first commit: dvclive (and `dvc exp`) fail in a repository without one.
    identity = ["-c", "user.name=audiorec scratch", "-c", "user.email=scratch@audiorec.invalid"]
    for command in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-q", "-m", "scratch copy"]):
        subprocess.run(["git", *command], cwd=destination, check=True)
    return destination


def set_params(root: Path, section: str, **values) -> None:
    """Set values of one section of the copy's params.yaml, and write its dvc.yaml for them."""
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params[section].update(values)
    write_params(root, params)


def write_params(root: Path, params: dict) -> None:
    """params.yaml at `root`, and dvc.yaml for its grid (what `python -m stages.graph` does),
    from the template there, or this repository's, copied there, in a bare working folder."""
    from audiorec.workflow import graph

    template = root / graph.TEMPLATE
    if not template.is_file():
        shutil.copy2(REPO / graph.TEMPLATE, template)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / graph.DVC_YAML).write_text(graph.render(params, template))


# The run CI reproduces (tests/conftest.py) and tests/reference/tiny_metrics.json records:
# the tiny dataset on three backends, Shallow capped at 15 epochs and BERT4Rec at 6 (3 before
# early stopping may end it). It tests the pipeline, not the models' quality, within `make
# test`'s budget: BERT4Rec's six stages were half the tiny run; mfcc's extraction has unit tests.
# The order control, left out of the default grid for time, runs here so its path stays tested.
TINY_SETTINGS: dict[str, dict[str, object]] = {
    "dataset": {"size": "tiny"},
    "controls": {"unordered": ["oracle"]},
    "shallow": {"max_epochs": 15},
    "bert4rec": {"max_epochs": 6, "min_epochs": 3},
    # The layer sweep and the choice on it, at its smallest: two stored layers under KNN.
    "musicnn": {"layer": "best", "layers": ["max_pool", "penultimate"]},
    "layer_sweep": {"models": ["knn"]},
}
TINY_BACKENDS = ["random", "musicnn", "oracle"]


def use_tiny_settings(root: Path) -> None:
    for section, values in TINY_SETTINGS.items():
        set_params(root, section, **values)
    # The whole grid on its three backends: nothing left out (the default leaves some runs out for time).
    write_params(
        root, {**yaml.safe_load((root / "params.yaml").read_text()), "backends": TINY_BACKENDS, "leave_out": []}
    )
    # The default grid's dvc.lock records none of the tiny run, and DVC rewrites the whole file
    # for every stage it runs: the tiny run starts its own.
    (root / "dvc.lock").unlink(missing_ok=True)


def pipeline_env() -> dict[str, str]:
    """DVC runs `python -m stages...`: make that the interpreter running us."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


DVC = [sys.executable, "-m", "dvc"]

# One compute thread per process, wherever the tiny run is reproduced: `make test` runs it
# beside two test workers on two cores (more threads than cores leave torch's and BLAS's
# threads spinning against each other), and `make tiny-reference` must run it the same way.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def tiny_env() -> dict[str, str]:
    return {**pipeline_env(), **ONE_THREAD}


def tiny_worktree(root: Path) -> Path:
    """A scratch copy of this worktree at `root` with the tiny settings, nothing reproduced yet."""
    copy_worktree(root)
    use_tiny_settings(root)
    return root


def reproduce_tiny(root: Path) -> subprocess.CompletedProcess:
    """`tiny_worktree(root)` after `dvc repro`."""
    return subprocess.run(DVC + ["repro"], cwd=tiny_worktree(root), env=tiny_env(), capture_output=True, text=True)
