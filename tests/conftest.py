import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock

from audiorec.workflow import worktree
from audiorec.workflow.worktree import DVC, ONE_THREAD, reproduce_tiny, tiny_env

# Tests never reach a model hub; a hub id must fail at once instead of timing out.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Nor DVC's analytics server: a project a test makes with `dvc init` (the cluster tests' toy
# pipeline) has no `core.analytics = false`, and every dvc command there would start a daemon
# that tries to reach it.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as audiorec.backends.musicnn sets it
# The workers, and the pipeline runs the tests start, take one compute thread each, as the tiny build does.
for name, value in ONE_THREAD.items():
    os.environ.setdefault(name, value)

SCRATCH_IDENTITY = ["-c", "user.name=audiorec scratch", "-c", "user.email=scratch@audiorec.invalid"]


def build_tiny_repo(root: Path) -> Path:
    result = reproduce_tiny(root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for command in (["add", "-A"], [*SCRATCH_IDENTITY, "commit", "-q", "-m", "tiny results"]):
        subprocess.run(["git", *command], cwd=root, check=True)
    return root


TINY_FIXTURES = {"tiny_repo", "tiny_repo_copy"}
TINY_BUILD_TIMEOUT = 3600  # seconds a test waits for the tiny pipeline before failing
# Niceness the tests take while the tiny pipeline builds beside them: the lowest, so the build keeps
# a core to itself (at 5, a test reproducing a worktree of its own slowed the build by ~50 s).
BUILD_FIRST = 19


def fixture_names(item: pytest.Item) -> set[str]:
    return set(getattr(item, "fixturenames", ()))  # a test function's; none for other items


def uses_tiny_repo(item: pytest.Item) -> bool:
    return bool(TINY_FIXTURES & fixture_names(item))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the tiny pipeline run after every other test, so that the workers run the
    unit tests while the pipeline builds in the background (tiny_repo_build); among them, those
    that re-run part of the pipeline on a copy (the long ones) first, so that the short ones even
    out the workers' ends. Before everything, the tests that reproduce a tiny worktree of their
    own (long too). The same order in every xdist worker, as xdist requires."""
    items.sort(
        key=lambda item: (
            uses_tiny_repo(item),
            "tiny_repo_copy" not in fixture_names(item),
            "tiny_worktree" not in fixture_names(item),
        )
    )  # stable sort


def tiny_root(tmp_path_factory) -> Path:
    """One folder per run: under pytest-xdist the run's shared temp folder, which every worker sees."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return tmp_path_factory.getbasetemp() / "tiny_repo"
    return tmp_path_factory.getbasetemp().parent / "tiny_repo"


class TinyBuild:
    """The tiny pipeline built in a thread of one process (the build is a `dvc repro` subprocess,
    so the thread leaves the interpreter free for tests), its outcome left in marker files that
    every worker reads: `<root>.built`, or `<root>.failed` holding the error."""

    def __init__(self, root: Path):
        self.root = root
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        with FileLock(f"{self.root}.lock"):
            started = Path(f"{self.root}.started")
            if started.exists():
                return  # another worker builds it
            started.touch()
        self.thread = threading.Thread(target=self._build, name="tiny-repo-build")
        self.thread.start()

    def _build(self) -> None:
        try:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root.mkdir()
            build_tiny_repo(self.root)
        except BaseException as error:  # the waiting tests report it
            Path(f"{self.root}.failed").write_text(f"{type(error).__name__}: {error}")
        else:
            Path(f"{self.root}.built").touch()

    def wait(self) -> Path:
        deadline = time.monotonic() + TINY_BUILD_TIMEOUT
        while time.monotonic() < deadline:
            if Path(f"{self.root}.built").exists():
                return self.root
            failed = Path(f"{self.root}.failed")
            if failed.exists():
                pytest.fail(f"the tiny pipeline failed to build: {failed.read_text()}")
            time.sleep(1)
        pytest.fail(f"the tiny pipeline was not built within {TINY_BUILD_TIMEOUT} s ({self.root})")

    def join(self) -> None:
        """The building process waits for its thread before it exits, or the other workers would wait in vain."""
        if self.thread is not None:
            self.thread.join()


@pytest.fixture(scope="session", autouse=True)
def tiny_repo_build(request, tmp_path_factory):
    """Starts building the tiny pipeline as the session starts, if any selected test needs it.

    The build is the run's critical path (the tests that read it wait for it), so the unit
    tests then give it the CPU first: the test thread lowers its own priority. On Linux a
    thread's niceness is its own, and the build thread, started before, and the pipeline it
    runs keep theirs; elsewhere the build is lowered with the rest, as before."""
    build = TinyBuild(tiny_root(tmp_path_factory))
    if any(uses_tiny_repo(item) for item in request.session.items):
        build.start()
        os.nice(BUILD_FIRST)
    yield build
    build.join()


@pytest.fixture(scope="session")
def tiny_repo(tiny_repo_build):
    """A scratch copy of the repo after the real `dvc repro` on the tiny dataset, results committed.

    Built once per run, in the background from the session's start (tiny_repo_build), in the
    run's shared temp folder under pytest-xdist (`make test` runs two workers); the tests that
    use it run last. Tests only read it; tests that change it work on `tiny_repo_copy` instead."""
    return tiny_repo_build.wait(), tiny_env(), DVC


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
def tiny_worktree(tmp_path):
    """A scratch copy of the repo with the tiny settings and nothing reproduced yet, for a test
    that changes what most stages compute anyway (another split protocol): it runs beside the
    unit tests from the session's start instead of waiting for the tiny pipeline and re-running
    most of it after, on the run's critical path."""
    root = tmp_path / "repo"
    root.mkdir()
    return worktree.tiny_worktree(root), tiny_env(), DVC


@pytest.fixture
def record_epoch_loop(monkeypatch):
    """`record_epoch_loop(module)` replaces `module.train_epochs` by a recorder and returns the list
    of each call's arguments, by name; the loop itself does not run (epoch 0, loss NaN). For tests
    of what a model's `fit` hands the shared epoch loop."""

    def install(module) -> list[dict]:
        calls = []

        def recording(name, net, optimizer, scheduler, generator, patience, max_epochs, **options):
            calls.append(
                dict(
                    name=name,
                    net=net,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    generator=generator,
                    patience=patience,
                    max_epochs=max_epochs,
                    **options,
                )
            )
            return 0, float("nan")

        monkeypatch.setattr(module, "train_epochs", recording)
        return calls

    return install
