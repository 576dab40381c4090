import os
import shutil
import subprocess

import pytest

from audiorec.worktree import DVC, copy_worktree, pipeline_env, set_params

# Tests never reach a model hub; a hub id must fail at once instead of timing out.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as audiorec.backends.musicnn sets it

SCRATCH_IDENTITY = ["-c", "user.name=audiorec scratch", "-c", "user.email=scratch@audiorec.invalid"]


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory):
    """A scratch copy of the repo after the real `dvc repro` on the tiny dataset, results committed.

    Tests that change it work on `tiny_repo_copy` instead."""
    root = copy_worktree(tmp_path_factory.mktemp("repo"))
    set_params(root, "dataset", size="tiny")
    env = pipeline_env()
    result = subprocess.run(DVC + ["repro"], cwd=root, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for command in (["add", "-A"], [*SCRATCH_IDENTITY, "commit", "-q", "-m", "tiny results"]):
        subprocess.run(["git", *command], cwd=root, check=True)
    return root, env, DVC


@pytest.fixture
def tiny_repo_copy(tiny_repo, tmp_path):
    """A private copy of `tiny_repo` (git history, DVC cache and workspace) to change freely."""
    root, env, dvc = tiny_repo
    copy = tmp_path / "repo"
    shutil.copytree(root, copy, symlinks=True)
    return copy, env, dvc
