import os
import shutil
import subprocess
from pathlib import Path

import pytest
from filelock import FileLock

from audiorec.workflow.worktree import DVC, copy_worktree, pipeline_env, use_tiny_settings

# Tests never reach a model hub; a hub id must fail at once instead of timing out.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as audiorec.backends.musicnn sets it

SCRATCH_IDENTITY = ["-c", "user.name=audiorec scratch", "-c", "user.email=scratch@audiorec.invalid"]


def build_tiny_repo(root: Path) -> Path:
    copy_worktree(root)
    use_tiny_settings(root)
    result = subprocess.run(DVC + ["repro"], cwd=root, env=pipeline_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for command in (["add", "-A"], [*SCRATCH_IDENTITY, "commit", "-q", "-m", "tiny results"]):
        subprocess.run(["git", *command], cwd=root, check=True)
    return root


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory):
    """A scratch copy of the repo after the real `dvc repro` on the tiny dataset, results committed.

    Built once per run: under pytest-xdist (`make test` runs two workers) the first worker
    that needs it builds it in the run's shared temp folder and the others wait for it.
    Tests only read it; tests that change it work on `tiny_repo_copy` instead."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        root = build_tiny_repo(tmp_path_factory.mktemp("repo"))
    else:
        root = tmp_path_factory.getbasetemp().parent / "tiny_repo"
        with FileLock(f"{root}.lock"):
            if not Path(f"{root}.built").exists():
                shutil.rmtree(root, ignore_errors=True)
                root.mkdir()
                build_tiny_repo(root)
                Path(f"{root}.built").touch()
    return root, pipeline_env(), DVC


def _skip_dvc_tmp(root: Path):
    """copytree's ignore: the source's .dvc/tmp holds locks and caches another worker may be writing."""
    def ignore(folder: str, names: list[str]) -> list[str]:
        return ["tmp"] if Path(folder) == root / ".dvc" and "tmp" in names else []
    return ignore


@pytest.fixture
def tiny_repo_copy(tiny_repo, tmp_path):
    """A private copy of `tiny_repo` (git history, DVC cache and workspace) to change freely."""
    root, env, dvc = tiny_repo
    copy = tmp_path / "repo"
    shutil.copytree(root, copy, symlinks=True, ignore=_skip_dvc_tmp(root))
    return copy, env, dvc


@pytest.fixture
def record_epoch_loop(monkeypatch):
    """`record_epoch_loop(module)` replaces `module.train_epochs` by a recorder and returns the list
    of each call's arguments, by name; the loop itself does not run (epoch 0, loss NaN). For tests
    of what a model's `fit` hands the shared epoch loop."""
    def install(module) -> list[dict]:
        calls = []

        def recording(name, net, optimizer, scheduler, generator, patience, max_epochs, **options):
            calls.append(dict(name=name, net=net, optimizer=optimizer, scheduler=scheduler, generator=generator,
                              patience=patience, max_epochs=max_epochs, **options))
            return 0, float("nan")

        monkeypatch.setattr(module, "train_epochs", recording)
        return calls

    return install
