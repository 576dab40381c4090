"""The pipeline on a Ray cluster (audiorec/workflow/cluster.py, docs/cluster.md), on a small
self-made DVC pipeline: a local cluster of a head without CPUs and two 1-CPU worker nodes, a bare
git repository as the git remote and a folder as the DVC remote, all on this machine.

Each stage command appends `<stage> <event> <pid> <cwd>` to a log outside every workspace, so
the tests see where and how often each stage ran. The last test runs this repository's own
pipeline, on a reduced tiny grid, against a single-machine `dvc repro` of the same commit.

The Ray tests share one local cluster (a module fixture) and are marked `cluster`: `make
test-cluster` runs them alone (beside the rest of the suite on two cores, a Ray node could take
longer to register than Ray waits), `make test` the rest. Run together under pytest-xdist, they
are in the xdist group "ray", and the fixture holds a lock for the run, so two clusters never run
side by side even where the grouping fails (pytest 9.2 with xdist 3.8, pytest-xdist#1386)."""

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import yaml
from filelock import FileLock

from audiorec.workflow import cluster, worktree
from stages import cluster as cli

DVC = [sys.executable, "-m", "dvc"]
GIT_IDENTITY = ["-c", "user.name=cluster test", "-c", "user.email=cluster@audiorec.invalid"]
SQUARES = [1, 2, 3]


def RAY(test):  # noqa: N802 - used as a mark
    """A test on the local Ray cluster: marked `cluster` (`make test-cluster` runs these alone,
    `make test` the rest) and in the xdist group "ray" (under `pytest -n 2 --dist loadgroup`, all
    in one worker, one after another; the cluster fixture is per module, so per worker)."""
    return pytest.mark.cluster(pytest.mark.xdist_group("ray")(test))


STEP = """\
import os, sys
from pathlib import Path

LOG = Path({log!r})
kind = sys.argv[1]
name = f"square@{{sys.argv[2]}}" if kind == "square" else kind


def note(event):
    with LOG.open("a") as log:
        log.write(f"{{name}} {{event}} {{os.getpid()}} {{os.getcwd()}}\\n")


note("start")
Path("out").mkdir(exist_ok=True)
base = int(Path("numbers.txt").read_text())
if kind == "square":
    n = int(sys.argv[2])
    if Path("broken.txt").exists() and str(n) in Path("broken.txt").read_text().split():
        sys.exit(f"square {{n}}: refusing, broken.txt names it")
    Path(f"out/square-{{n}}.txt").write_text(str(base * n * n))
else:
    parts = sorted(p.read_text() for p in Path("out").glob("*.txt") if p.name != "total.txt")
    Path("out/total.txt").write_text(" + ".join(parts))
note("done")
"""


def run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=cluster._worker_env())
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def git(cwd: Path, *args: str) -> str:
    return run(["git", *GIT_IDENTITY, *args], cwd)


def pipeline(squares: list[int]) -> str:
    total_deps = [f"out/square-{n}.txt" for n in squares]
    text = f"""stages:
  square:
    foreach: {squares}
    do:
      cmd: python step.py square ${{item}}
      deps: [step.py, numbers.txt]
      outs:
        - out/square-${{item}}.txt
"""
    return (
        text
        + f"""  total:
    cmd: python step.py total
    deps: [step.py, {", ".join(total_deps)}]
    outs: [out/total.txt]
"""
    )


@pytest.fixture
def project(tmp_path: Path):
    """(origin, coordinator clone, stage log) of a new pipeline; call it with the pipeline's shape."""

    def make(squares: list[int] = SQUARES) -> tuple[Path, Path, Path]:
        origin, author, log = tmp_path / "origin.git", tmp_path / "author", tmp_path / "stages.log"
        run(["git", "init", "-q", "--bare", str(origin)], tmp_path)
        author.mkdir()
        git(author, "init", "-q")
        run([*DVC, "init", "-q"], author)
        run([*DVC, "remote", "add", "-d", "storage", str(tmp_path / "storage")], author)
        (author / "step.py").write_text(STEP.format(log=str(log)))
        (author / "numbers.txt").write_text("7")
        (author / "dvc.yaml").write_text(pipeline(squares))
        git(author, "add", "-A")
        git(author, "commit", "-q", "-m", "pipeline")
        git(author, "push", "-q", str(origin), "HEAD:refs/heads/main")
        return origin, clone(origin, tmp_path / "coordinator"), log

    return make


def clone(origin: Path, where: Path) -> Path:
    run(["git", "clone", "-q", "-b", "main", str(origin), str(where)], origin.parent)
    return where


def events(log: Path) -> list[tuple[str, str, int, str]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [(name, event, int(pid), cwd) for name, event, pid, cwd in (line.split(" ", 3) for line in lines)]


def outputs(workspace: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted((workspace / "out").glob("*.txt"))}


# --- without Ray: the plan, the resources, the refusals ---------------------------------------


def test_downstream_follows_the_plan_transitively():
    stages = {"a": set(), "b": {"a"}, "c": {"b"}, "d": set(), "e": {"c", "d"}}
    assert cluster.downstream(stages, "b") == ["c", "e"]
    assert cluster.downstream(stages, "d") == ["e"]
    assert cluster.downstream(stages, "e") == []


def test_resources_fit_the_cluster():
    table = cluster.DEFAULT_RESOURCES
    gpu_cluster = {"GPU": 4, "largest_node_cpus": 16}
    assert cluster.resources_for("extract@musicnn", table, gpu_cluster) == {"num_cpus": 4, "num_gpus": 1}
    assert cluster.resources_for("train@musicnn-shallow-0", table, gpu_cluster) == {"num_cpus": 2, "num_gpus": 0.5}
    assert cluster.resources_for("train_deterministic@musicnn-knn", table, gpu_cluster) == {"num_cpus": 2}
    assert cluster.resources_for("report", table, gpu_cluster) == {"num_cpus": 1}
    # No GPU request on a CPU cluster, no more CPUs than a node has: Ray would wait forever.
    assert cluster.resources_for("extract@musicnn", table, {"GPU": 0, "largest_node_cpus": 2}) == {"num_cpus": 2}


def test_dry_run_lists_the_outdated_stages_in_dependency_order(project, capsys, monkeypatch):
    _, coordinator, _ = project()
    monkeypatch.chdir(coordinator)
    assert cli.main(["--dry-run"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == ["square@1", "square@2", "square@3", "total"]
    assert cluster.outdated_stages(coordinator, ["square@2"]) == {"square@2": set()}
    assert cluster.outdated_stages(coordinator, ["total"])["total"] == {"square@1", "square@2", "square@3"}


def test_an_uncommitted_change_is_refused_with_the_fix(project):
    _, coordinator, _ = project()
    (coordinator / "numbers.txt").write_text("8")
    with pytest.raises(cluster.ClusterError, match=r"numbers.txt.*commit them"):
        cluster.check_committed(coordinator)
    (coordinator / "numbers.txt").write_text("7")
    (coordinator / "dvc.lock").write_text("schema: '2.0'\n")  # what a repro writes is no code change
    cluster.check_committed(coordinator)


# --- on a local Ray cluster -------------------------------------------------------------------


def run_folder(tmp_path_factory) -> Path:
    """The run's temp folder, which every pytest-xdist worker of the run sees (conftest.tiny_root)."""
    base = tmp_path_factory.getbasetemp()
    return base if os.environ.get("PYTEST_XDIST_WORKER") is None else base.parent


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[cluster]'")
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    # One local cluster at a time per test run, whichever xdist workers the Ray tests land in: the
    # xdist_group mark (RAY) keeps them in one worker with --dist loadgroup, but pytest 9.2 ignores
    # the node ids xdist 3.8 groups by (pytest-xdist#1386; constraints.txt pins 9.1.1 for it, where
    # a worker waited here idle for a minute), so where the grouping fails the workers queue here.
    lock = FileLock(str(run_folder(tmp_path_factory) / "ray-cluster.lock"), timeout=3600)
    # Ray's sockets live in its temp folder: under a pytest-xdist basetemp their paths pass the
    # 107 bytes an AF_UNIX path may have. A short folder of its own, removed afterwards.
    ray_tmp = tempfile.mkdtemp(prefix="audiorec-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
    with lock, pytest.MonkeyPatch.context() as patch:
        # Ray turns a loopback address into this machine's IP before connecting (its nodes are
        # meant to be reachable from others); its own switch keeps every process on 127.0.0.1.
        patch.setenv(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR, "0")
        patch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        patch.setenv("RAY_TMPDIR", ray_tmp)
        # The workers' scratch clones: a killed attempt leaves its clone behind, here, not in /tmp.
        patch.setenv("TMPDIR", str(tmp_path_factory.mktemp("scratch")))
        local = {"node_ip_address": "127.0.0.1"}
        # A lost node is noticed in about 3 s instead of Ray's 15 (5 failed health checks 3 s apart).
        quick = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}
        nodes = Cluster(
            initialize_head=True,
            head_node_args={**local, "num_cpus": 0, "include_dashboard": False, "_system_config": quick},
        )
        try:
            for _ in range(2):
                nodes.add_node(**local, num_cpus=1)
            ray.init(address=nodes.address, _node_ip_address="127.0.0.1", logging_level="WARNING")
            yield nodes
        finally:
            ray.shutdown()
            nodes.shutdown()
            shutil.rmtree(ray_tmp, ignore_errors=True)


def run_grid(coordinator: Path, ray_cluster, **kwargs) -> cluster.GridReport:
    return cluster.run_grid(coordinator, address=ray_cluster.address, retries=2, **kwargs)


def ray_worker_of(process: psutil.Process) -> psutil.Process | None:
    """The Ray worker (`ray::...`) whose task started `process`, if any."""
    return next((p for p in process.parents() if p.cmdline()[:1] and p.cmdline()[0].startswith("ray::")), None)


def kill_the_worker_of(process: psutil.Process, ray_cluster) -> None:
    """Kill the Ray worker running `process` (a stage) and all it started, remove its node and add
    a fresh one: a machine lost mid-stage."""
    worker = ray_worker_of(process)
    raylet = worker.parent().pid
    node = next((n for n in ray_cluster.worker_nodes if n.all_processes["raylet"][0].process.pid == raylet), None)
    assert node is not None, f"{' '.join(process.cmdline())} runs on no worker node (the head's raylet is {raylet}?)"
    doomed = [worker, *worker.children(recursive=True)]
    # The node first, so that Ray cannot hand the retry back to it; then the stage's processes,
    # which a dead raylet leaves running.
    ray_cluster.remove_node(node, allow_graceful=False)
    for leftover in doomed:
        try:
            leftover.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    ray_cluster.add_node(node_ip_address="127.0.0.1", num_cpus=1)


# What a run of the toy project shows that the real grid's run (at the end) shows too, each stage
# once on a worker and a lost worker's stage retried to the same result, has no toy test of its own:
# each Ray test here costs a minute of `make test`.


@RAY
def test_a_failed_stage_skips_its_downstream_and_a_rerun_keeps_the_finished(project, ray_cluster, capsys):
    origin, coordinator, log = project()
    (coordinator / "broken.txt").write_text("2")
    git(coordinator, "add", "broken.txt")
    git(coordinator, "commit", "-q", "-m", "break square 2")
    report = run_grid(coordinator, ray_cluster)
    assert sorted(report.succeeded) == ["square@1", "square@3"] and report.skipped == ["total"]
    assert "refusing, broken.txt names it" in report.failed["square@2"].log_tail
    assert report.coordinator_ran == [] and sorted(report.coordinator_restored) == ["square@1", "square@3"]
    assert cli.summarize(report, allow_local_runs=False) == 1
    assert "fix the failure, commit, and run again" in capsys.readouterr().out

    # The fix: commit and run again; squares 1 and 3 come back from the run-cache, not recomputed.
    git(coordinator, "rm", "-q", "broken.txt")
    git(coordinator, "commit", "-q", "-m", "fix square 2")
    report = run_grid(coordinator, ray_cluster)
    assert report.ok and sorted(report.succeeded) == ["square@2", "total"], report
    starts = [name for name, event, *_ in events(log) if event == "start"]
    assert sorted(starts) == ["square@1", "square@2", "square@2", "square@3", "total"]
    assert all(pid != os.getpid() and not cwd.startswith(str(coordinator)) for *_, pid, cwd in events(log))
    assert outputs(coordinator) == {
        "square-1.txt": "7",
        "square-2.txt": "28",
        "square-3.txt": "63",
        "total.txt": "28 + 63 + 7",
    }
    # Up to date now: a third run submits nothing.
    assert cluster.run_grid(coordinator, address=ray_cluster.address).succeeded == []


# --- this repository's pipeline on the cluster ------------------------------------------------

# The tiny dataset on a grid of each kind of pipeline stage (the data, an extraction, the split, a
# deterministic and a seeded model, their evaluations, the report); 10 stages. Each stage on a
# worker restores its upstream chain from the run-cache, so each more run cost `make test` about
# half a minute: a second backend, a baseline and a control ran stages of the same kinds and went.
# Half-second clips: the oracle never reads the audio, and synthesising 300 five-second MP3s was a
# third of a single-machine run.
REAL_GRID = {
    "backends": ["oracle"],
    "models": ["knn", "shallow"],
    "baselines": [],
    "controls": {"shuffle": [], "models": ["knn"], "unordered": [], "seed": 0},
    "seeds": [0],
}
CLIP_SECONDS = 0.5
RUNS = ["oracle-knn", "oracle-shallow-0"]
EXTRACTS = ["extract@oracle"]
REAL_STAGES = [
    "code",
    "synthesize",
    "dataset",
    *EXTRACTS,
    "split",
    *(f"train@{run}" for run in RUNS),
    *(f"evaluate@{run}" for run in RUNS),
    "report",
]
# The stage whose worker is lost, once it has trained one of its 15 epochs (dvclive's per-epoch log).
LOST = "train@oracle-shallow-0"
LOST_COMMAND = "-m stages.train --backend oracle --model shallow --seed 0"
LOST_EPOCHS_LOG = "metrics/train/oracle/shallow.seed0/plots/metrics/train/loss.tsv"


def real_project(tmp_path: Path) -> tuple[Path, Path]:
    """(git remote, coordinator): a scratch copy of this repository on the tiny dataset and
    REAL_GRID, with a folder as its DVC remote, committed and pushed to a bare repository."""
    coordinator, origin = tmp_path / "coordinator", tmp_path / "origin.git"
    coordinator.mkdir()
    worktree.copy_worktree(coordinator)
    worktree.use_tiny_settings(coordinator)
    params = yaml.safe_load((coordinator / "params.yaml").read_text())
    params["synthetic"]["tiny"]["clip_seconds"] = CLIP_SECONDS
    worktree.write_params(coordinator, {**params, **REAL_GRID})
    # The study's dvc.lock records another grid; DVC rewrites the whole lock file for every stage it
    # runs or restores (three quarters of a worker's `dvc repro --pull` with that one).
    (coordinator / "dvc.lock").unlink(missing_ok=True)
    run([*DVC, "remote", "add", "-d", "storage", str(tmp_path / "storage")], coordinator)
    git(coordinator, "add", "-A")
    git(coordinator, "commit", "-q", "-m", "the tiny grid, on a cluster")
    run(["git", "init", "-q", "--bare", str(origin)], tmp_path)
    git(coordinator, "push", "-q", str(origin), "HEAD:refs/heads/main")
    return origin, coordinator


def stage_process(command: str) -> psutil.Process | None:
    """The process of a stage a Ray worker runs (`python <command>`), not one of another repro."""
    for process in psutil.process_iter(["cmdline"]):
        try:
            if command in " ".join(process.info["cmdline"] or []) and ray_worker_of(process):
                return process
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def lose_the_worker_mid_stage(ray_cluster, timeout: float = 300) -> int:
    """Once the LOST stage has logged an epoch on a worker, kill that worker and its node (a
    fresh node replaces it); the stage process's pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process = stage_process(LOST_COMMAND)
        try:
            epochs = (Path(process.cwd()) / LOST_EPOCHS_LOG).read_text().splitlines() if process else []
            if len(epochs) >= 2:  # the header and an epoch: mid-training
                kill_the_worker_of(process, ray_cluster)
                return process.pid
        except (psutil.NoSuchProcess, FileNotFoundError):
            pass
        time.sleep(0.05)
    pytest.fail(f"{LOST} never ran an epoch on a worker within {timeout} s")


def metric_files(workspace: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(workspace)): path.read_bytes()
        for path in sorted((workspace / "metrics").rglob("*"))
        if path.is_file() and path.name != ".gitignore"
    }


@RAY
@pytest.mark.e2e
def test_the_real_grid_on_the_cluster_equals_a_single_machine_repro_despite_a_lost_worker(
    ray_cluster, tmp_path, monkeypatch, caplog
):
    """This repository's pipeline on REAL_GRID: each stage runs once, on a worker; the one whose
    worker is killed mid-training runs again elsewhere; the coordinator only restores; and its
    metrics are byte for byte those of a plain `dvc repro` of the same commit on one machine."""
    origin, coordinator = real_project(tmp_path)
    reference = clone(origin, tmp_path / "reference")
    # The reference runs beside the cluster, in the CPU time the cluster leaves: its two 1-CPU
    # workers leave a core idle on the chain at the grid's start and end (code, synthesize,
    # dataset; report, the final restore), and every stage waits on DVC and git in between.
    with open(tmp_path / "reference.log", "w") as reference_log:
        single = subprocess.Popen(
            ["nice", "-n", "10", *DVC, "repro"],
            cwd=reference,
            stdout=reference_log,
            stderr=subprocess.STDOUT,
            env=worktree.tiny_env(),
            start_new_session=True,
        )
    finished: list[cluster.StageOutcome] = []  # what each task that ended reported, in the coordinator
    show_finish = cluster._show_finish

    def record(outcome: cluster.StageOutcome, *rest) -> None:
        finished.append(outcome)
        show_finish(outcome, *rest)

    monkeypatch.setattr(cluster, "_show_finish", record)
    caplog.set_level(logging.INFO, logger=cluster.__name__)
    try:
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(run_grid, coordinator, ray_cluster, git_remote=str(origin))
            killed = lose_the_worker_mid_stage(ray_cluster)
            report = running.result()
        assert single.wait(timeout=600) == 0, (tmp_path / "reference.log").read_text()[-4000:]
    finally:
        if single.poll() is None:
            os.killpg(single.pid, signal.SIGKILL)

    assert report.ok and sorted(report.succeeded) == sorted(REAL_STAGES), report
    # The workers' repros ran each stage once, the lost one included (its retry), and nothing
    # upstream: those came back from the run-cache. The coordinator ran none, restored all.
    assert all(outcome.ok for outcome in finished) and len(finished) == len(REAL_STAGES)
    assert all(outcome.ran == [outcome.stage] for outcome in finished), [(o.stage, o.ran) for o in finished]
    assert Counter(name for outcome in finished for name in outcome.ran) == Counter(REAL_STAGES)
    # The lost stage started again because its worker was lost (the coordinator's progress lines).
    starts = [line.getMessage() for line in caplog.records if f" start {LOST} on " in line.getMessage()]
    assert len(starts) >= 2 and all("again: its worker was lost" in line for line in starts[1:]), (killed, starts)
    assert report.coordinator_ran == [] and sorted(report.coordinator_restored) == sorted(REAL_STAGES)

    ran_here = cluster.RUNNING.findall((tmp_path / "reference.log").read_text())
    assert sorted(ran_here) == sorted(REAL_STAGES)
    ours, theirs = metric_files(coordinator), metric_files(reference)
    assert "metrics/results.md" in ours and any(
        name.startswith("metrics/tables/") and name.endswith(".csv") for name in ours
    )
    assert sum(name.endswith(".json") for name in ours) == 1 + len(EXTRACTS) + 1 + 2 * len(
        RUNS
    )  # dataset, extract, split, train and evaluate
    assert sorted(ours) == sorted(theirs)
    assert [name for name in ours if ours[name] != theirs[name]] == []
