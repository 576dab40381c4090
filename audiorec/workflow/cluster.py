"""Run the outdated stages of the DVC pipeline as Ray tasks, one stage per task.

DVC does not distribute stages; its run-cache carries a result from one machine to another. A
task clones the submitted commit, restores the stage's inputs (`dvc repro --pull` brings back the
upstream stages other tasks ran and pushed, from the remote's run-cache), runs the stage and
pushes its outputs and run-cache entry. The coordinator submits a stage only once its upstream
stages succeeded and at the end runs `dvc repro --pull` in its own workspace, which restores every
stage the cluster ran without computing any (docs/cluster.md).

Ray is an optional dependency (`pip install -e ".[cluster]"`): it is imported only where a task
is submitted or run, so planning (`--dry-run`) works without it.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

DVC = [sys.executable, "-m", "dvc"]
# Where the coordinator publishes the submitted commit on the git remote: a ref per commit, so
# no branch of the user's is moved and a worker can fetch exactly that commit by name.
REF_PREFIX = "refs/audiorec-cluster/"
WORKER_REMOTE = "cluster"
LOG_TAIL_LINES = 40

# Resources per stage, first matching pattern wins (fnmatch on the stage's address, e.g.
# `train@musicnn-shallow-0`). GPUs are requested only when the cluster has some: on a CPU
# cluster Ray would otherwise never schedule these tasks. The audio models' extractions take a
# GPU, neural training half of one (the study's models are small enough that two share one).
# params.yaml `cluster.resources` (same shape) replaces the table.
DEFAULT_RESOURCES: dict[str, dict[str, float]] = {
    "extract@none": {"num_cpus": 1},  # no audio: the baselines' placeholder
    "extract@random": {"num_cpus": 1},
    "extract@oracle": {"num_cpus": 1},
    "extract@mfcc": {"num_cpus": 4},  # librosa, CPU only
    "extract@*": {"num_cpus": 4, "num_gpus": 1},  # the audio models, built-in or plugins
    "train*@*shallow*": {"num_cpus": 2, "num_gpus": 0.5},
    "train*@*bert4rec*": {"num_cpus": 2, "num_gpus": 0.5},
    "train*@*bimodal*": {"num_cpus": 2, "num_gpus": 0.5},
    "train*@*hybrid*": {"num_cpus": 2, "num_gpus": 0.5},
    "train*@*elsa*": {"num_cpus": 2, "num_gpus": 0.5},
    "train*@*": {"num_cpus": 2},  # knn, mostpop, ease: numpy on CPU
    "*": {"num_cpus": 1},
}

RUNNING = re.compile(r"^Running stage '([^']+)'", re.M)
RESTORED = re.compile(r"^Stage '([^']+)' is cached - skipping run", re.M)


class ClusterError(RuntimeError):
    pass


# --- the plan: which stages, in which order -------------------------------------------------


def outdated_stages(root: Path, targets: Iterable[str] = ()) -> dict[str, set[str]]:
    """Each stage `dvc repro [targets]` would run -> its upstream stages among them, in
    dependency order. A stage counts when `dvc status` reports it changed or when it is
    downstream of one that did: its inputs change once that one has run."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            return _plan(repo, targets)
    except DvcException as error:
        raise ClusterError(
            f"DVC cannot plan the run: {error} (`dvc status` shows the same; fix dvc.yaml first)"
        ) from error


def _plan(repo: Any, targets: Iterable[str]) -> dict[str, set[str]]:
    graph = repo.index.graph  # edges point from a stage to the stages it depends on
    stages = [stage for stage in repo.index.stages if stage.cmd]
    name = {stage: _address(stage, repo.root_dir) for stage in stages}
    wanted = set(stages)
    if targets:
        wanted = set()
        for target in targets:
            for stage in repo.stage.collect(target):
                wanted |= _ancestors(graph, stage) | {stage}
    status = repo.status()  # keyed by DVC's addressing, relative to the current directory
    changed = {stage for stage in stages if stage.addressing in status}
    stale = set(changed).union(*(_descendants(graph, stage) for stage in changed))
    chosen = wanted & stale & set(stages)
    order = [stage for stage in _topological(graph, stages) if stage in chosen]
    return {name[stage]: {name[up] for up in graph.successors(stage) if up in chosen} for stage in order}


def _address(stage: Any, root: str) -> str:
    """The stage's name as `dvc repro` in the repository's root takes it (DVC's own `addressing`
    is relative to the current directory): `train@musicnn-shallow-0`, `sub/dvc.yaml:name`."""
    path = os.path.relpath(stage.path, root)
    return stage.name if path == "dvc.yaml" else f"{path}:{stage.name}"


def _ancestors(graph, stage) -> set:
    import networkx as nx

    return nx.descendants(graph, stage)  # DVC's edges point upstream


def _descendants(graph, stage) -> set:
    import networkx as nx

    return nx.ancestors(graph, stage)


def _topological(graph, stages: list) -> list:
    """Upstream first; among stages free to run, dvc.yaml's order (what a reader expects)."""
    import networkx as nx

    position = {stage: index for index, stage in enumerate(stages)}
    return list(
        nx.lexicographical_topological_sort(graph.reverse(copy=False), key=lambda stage: position.get(stage, -1))
    )


def downstream(stages: dict[str, set[str]], failed: str) -> list[str]:
    """The stages of the plan that depend on `failed`, directly or not, in plan order."""
    hit = {failed}
    for name, upstream in stages.items():
        if upstream & hit:
            hit.add(name)
    return [name for name in stages if name in hit and name != failed]


def resources_for(stage: str, table: dict[str, dict[str, float]], cluster: dict[str, float]) -> dict[str, float]:
    """The Ray resources of one stage's task, fitted to what the cluster has: no GPU request on
    a cluster without GPUs, and no more CPUs than its largest node has (Ray would wait forever)."""
    wanted: dict[str, float] = next(
        (dict(values) for pattern, values in table.items() if fnmatch.fnmatchcase(stage, pattern)), {"num_cpus": 1}
    )
    if not cluster.get("GPU"):
        wanted.pop("num_gpus", None)
    largest = cluster.get("largest_node_cpus")
    if largest is not None and wanted.get("num_cpus", 1) > largest:
        wanted["num_cpus"] = largest
    return wanted


def resource_table(root: Path, table: dict[str, dict[str, float]] | None = None) -> dict[str, dict[str, float]]:
    """The table passed in, else params.yaml `cluster.resources`, else DEFAULT_RESOURCES."""
    if table is not None:
        return table
    params = root / "params.yaml"
    loaded = yaml.safe_load(params.read_text()) if params.exists() else None
    section = (loaded or {}).get("cluster") or {}
    return section.get("resources") or DEFAULT_RESOURCES


# --- what the workers need: the commit on the git remote, the DVC remote's settings ----------


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise ClusterError(f"`git {' '.join(args)}` failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def output_paths(root: Path) -> set[str]:
    """The paths the pipeline writes, relative to root: a repro changes them, so they may differ from the commit."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {os.path.relpath(out.fs_path, repo.root_dir) for stage in repo.index.stages for out in stage.outs}


def check_committed(root: Path) -> None:
    """Workers run the commit, not the workspace: refuse if code, params or dvc.yaml differ from
    it. dvc.lock, the stages' outputs and .gitignore files (DVC lists outputs there) may differ:
    they are what a repro writes, never a stage's input."""
    outputs = output_paths(root) | {"dvc.lock"}
    dirty = [path for path in _changed_paths(root) if not _written_by_a_repro(path, outputs)]
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise ClusterError(
            f"the workers run the committed code, but {len(dirty)} files differ from HEAD ({shown}): "
            "commit them (or `git stash -u`) and run again"
        )


def _changed_paths(root: Path) -> list[str]:
    result = subprocess.run(
        ["git", "status", "--porcelain", "-z", "--untracked-files=all"], cwd=root, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ClusterError(
            f"{root} is no git repository ({result.stderr.strip()}): the workers clone its commit from a git remote"
        )
    entries, paths = iter(result.stdout.split("\0")), []
    for entry in entries:
        if entry:
            paths.append(entry[3:])
            if entry[0] in "RC":
                next(entries)  # a rename's old path follows it
    return paths


def _written_by_a_repro(path: str, outputs: set[str]) -> bool:
    if os.path.basename(path) == ".gitignore":
        return True
    return any(path == out or path.startswith(out.rstrip("/") + "/") for out in outputs)


def git_remote_url(root: Path, remote: str | None) -> str:
    """A URL every worker can fetch from: `remote` (a URL or a remote's name), else `origin`'s."""
    name = remote or "origin"
    if remote is None or remote in _git(root, "remote").split():
        try:
            remote = _git(root, "remote", "get-url", name)
        except ClusterError:
            raise ClusterError(
                f"no git remote {name!r}: pass --git-remote URL (a repository every worker can fetch from)"
            ) from None
    if "://" not in remote and ":" not in remote.split("/")[0] and not os.path.isabs(remote):
        remote = str((root / remote).resolve())  # a relative path means nothing on a worker
    return remote


def publish_commit(root: Path, git_remote: str) -> tuple[str, str]:
    """Push HEAD to its own ref on the git remote; the commit and the ref the workers fetch."""
    commit = _git(root, "rev-parse", "HEAD")
    ref = REF_PREFIX + commit
    _git(root, "push", "-q", git_remote, f"{commit}:{ref}")
    return commit, ref


def dvc_remote_settings(root: Path, name: str | None) -> dict[str, Any]:
    """The DVC remote's settings as this workspace resolves them (a relative path made absolute),
    for the workers to use the very same storage."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        name = name or repo.config["core"].get("remote")
        remotes = repo.config["remote"]
        if not name or name not in remotes:
            raise ClusterError(
                f"no DVC remote {name!r} (known: {sorted(remotes) or 'none'}): add one every worker can reach, "
                "`dvc remote add -d <name> <url>`, or pass --dvc-remote NAME"
            )
        return dict(remotes[name])


# --- the task: one stage in a scratch clone ---------------------------------------------------


@dataclass(frozen=True)
class StageJob:
    stage: str
    git_remote: str
    commit: str
    ref: str
    dvc_remote: dict[str, Any]


@dataclass
class StageOutcome:
    stage: str
    ok: bool
    host: str
    seconds: float
    ran: list[str] = field(default_factory=list)  # stages the worker's repro ran: the target alone
    failed_step: str = ""
    log_tail: str = ""


def run_stage(job: StageJob, progress: Any = None) -> StageOutcome:
    """Clone the commit, restore the inputs, run the stage, push outputs and run-cache."""
    started = time.monotonic()
    host = socket.gethostname()
    _report(progress, job.stage, host)
    scratch = Path(tempfile.mkdtemp(prefix="audiorec-cluster-"))
    repo, log_path = scratch / "repo", scratch / "stage.log"
    try:
        for step, command in _steps(job, repo):
            if _run_step(command, repo if repo.exists() else scratch, log_path) != 0:
                return StageOutcome(
                    job.stage, False, host, time.monotonic() - started, failed_step=step, log_tail=_tail(log_path)
                )
        return StageOutcome(
            job.stage, True, host, time.monotonic() - started, ran=RUNNING.findall(log_path.read_text())
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_step(command: list[str] | Callable[[], None], cwd: Path, log_path: Path) -> int:
    """Run one step with its output appended to the stage's log; its exit status."""
    with open(log_path, "a") as out:
        if callable(command):
            try:
                command()
                return 0
            except Exception as error:  # noqa: BLE001 - reported with the log like a failed command
                out.write(f"{type(error).__name__}: {error}\n")
                return 1
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        return subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=_worker_env()).returncode


def _steps(job: StageJob, repo: Path) -> list[tuple[str, list[str] | Callable[[], None]]]:
    # A shallow fetch of the one commit: the stages need its files, not the history.
    return [
        ("git init", ["git", "init", "-q", str(repo)]),
        ("git fetch", ["git", "fetch", "-q", "--depth", "1", job.git_remote, job.ref]),
        ("git checkout", ["git", "checkout", "-q", "--detach", job.commit]),
        ("dvc remote", lambda: _use_remote(repo, job.dvc_remote)),
        # The clone's dvc.lock predates the upstream stages other tasks ran: --pull restores them
        # from the remote's run-cache ("is cached - skipping run") and runs only this stage.
        ("dvc repro", [*DVC, "repro", "--pull", job.stage]),
        ("dvc push", [*DVC, "push", "--run-cache", job.stage]),
    ]


def _use_remote(repo: Path, settings: dict[str, Any]) -> None:
    from dvc.config import Config

    # .dvc/config.local: the committed config may name a remote by a path relative to the workspace.
    with Config(str(repo / ".dvc")).edit("local") as config:
        config["remote"][WORKER_REMOTE] = dict(settings)
        config["core"]["remote"] = WORKER_REMOTE


def _worker_env() -> dict[str, str]:
    # Stage commands say `python`: make that this worker's interpreter, which has the project installed.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "GIT_TERMINAL_PROMPT": "0"}


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _report(progress: Any, stage: str, host: str) -> None:
    # Progress is a nicety: a lost progress actor must not fail the stage.
    if progress is None:
        return
    try:
        progress.put_nowait((stage, host))
    except Exception as error:  # noqa: BLE001 - any failure of the actor call
        log.debug("progress report of %s lost: %s", stage, error)


# --- the coordinator ---------------------------------------------------------------------------


@dataclass
class GridReport:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, StageOutcome] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    coordinator_ran: list[str] = field(default_factory=list)
    coordinator_restored: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped and not self.coordinator_ran


def cluster_resources() -> dict[str, float]:
    import ray

    alive = [node for node in ray.nodes() if node.get("Alive")]
    return {
        "GPU": ray.cluster_resources().get("GPU", 0),
        "largest_node_cpus": max((node["Resources"].get("CPU", 0) for node in alive), default=0),
    }


def schedule(
    stages: dict[str, set[str]],
    job: Callable[[str], StageJob],
    resources: Callable[[str], dict[str, float]],
    retries: int,
    poll_seconds: float = 0.5,
) -> GridReport:
    """Submit each stage once its upstream stages succeeded; on a failure skip its downstream."""
    import ray
    from ray.util.queue import Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # The progress queue lives on this node, which outlives the workers. A hard affinity: with a
    # soft one Ray placed it on a worker node when this one has no CPUs (a head started with
    # --num-cpus 0), and losing that node lost the queue.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    progress = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
    task = ray.remote(run_stage)
    report, pending = GridReport(), dict(stages)
    running: dict[Any, str] = {}  # Ray's ObjectRef of each submitted task -> its stage
    started: set[str] = set()
    clock = time.monotonic()
    while pending or running:
        succeeded = set(report.succeeded)
        for name in [n for n, up in pending.items() if up <= succeeded]:
            del pending[name]
            ref = task.options(max_retries=retries, name=f"stage:{name}", **resources(name)).remote(job(name), progress)
            running[ref] = name
        done, _ = ray.wait(list(running), num_returns=1, timeout=poll_seconds)
        progress = _show_starts(progress, started, report, len(stages), len(running), clock)
        for ref in done:
            name = running.pop(ref)
            outcome = _outcome(ref, name)
            _record(outcome, stages, pending, report)
            _show_finish(outcome, report, len(stages), len(running))
    if progress is not None:
        progress.shutdown()
    return report


def _outcome(ref: Any, name: str) -> StageOutcome:
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayError as error:  # the worker was lost more often than retries allow
        return StageOutcome(name, False, "?", 0.0, failed_step="ray task", log_tail=str(error)[-4000:])


def _record(
    outcome: StageOutcome, stages: dict[str, set[str]], pending: dict[str, set[str]], report: GridReport
) -> None:
    if outcome.ok:
        report.succeeded.append(outcome.stage)
        return
    report.failed[outcome.stage] = outcome
    for name in downstream(stages, outcome.stage):
        if pending.pop(name, None) is not None:
            report.skipped.append(name)


def _counts(report: GridReport, total: int, running: int) -> str:
    return (
        f"[{len(report.succeeded)}/{total} done, {running} running, "
        f"{len(report.failed)} failed, {len(report.skipped)} skipped]"
    )


def _show_starts(progress: Any, started: set[str], report: GridReport, total: int, running: int, clock: float) -> Any:
    """Log the starts the tasks reported; the queue, or None once it is lost: progress is a
    nicety, and a lost queue must not end the run (the tasks then skip their reports)."""
    import ray

    try:
        while progress is not None and not progress.empty():
            stage, host = progress.get_nowait()
            again = " (again: its worker was lost)" if stage in started else ""
            started.add(stage)
            log.info(
                "%s start %s on %s at +%.0f s%s",
                _counts(report, total, running),
                stage,
                host,
                time.monotonic() - clock,
                again,
            )
    except ray.exceptions.RayError as error:
        log.warning("the progress queue was lost, no more start lines (the stages go on): %s", error)
        return None
    return progress


def _show_finish(outcome: StageOutcome, report: GridReport, total: int, running: int) -> None:
    counts = _counts(report, total, running)
    if outcome.ok:
        log.info("%s done %s on %s in %.1f s", counts, outcome.stage, outcome.host, outcome.seconds)
        extra = [name for name in outcome.ran if name != outcome.stage]
        if extra:
            log.warning(
                "%s: the worker also ran %s, upstream stages the run-cache could not restore "
                "(an output with cache: false?)",
                outcome.stage,
                extra,
            )
        return
    log.error(
        "%s FAILED %s on %s at %s after %.1f s; the end of its log:\n%s",
        counts,
        outcome.stage,
        outcome.host,
        outcome.failed_step,
        outcome.seconds,
        outcome.log_tail,
    )


def restore_on_coordinator(root: Path, targets: Iterable[str]) -> tuple[list[str], list[str]]:
    """`dvc repro --pull` here: the stages it restored from the run-cache and those it ran."""
    log.info("restoring the results here: dvc repro --pull %s", " ".join(targets))
    result = subprocess.run(
        [*DVC, "repro", "--pull", *targets], cwd=root, capture_output=True, text=True, env=_worker_env()
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise ClusterError(f"the final `dvc repro --pull` failed:\n{output[-4000:]}")
    return RESTORED.findall(output), RUNNING.findall(output)


def run_grid(
    root: Path,
    address: str | None = "auto",
    git_remote: str | None = None,
    dvc_remote: str | None = None,
    targets: Iterable[str] = (),
    retries: int = 3,
    resources: dict[str, dict[str, float]] | None = None,
) -> GridReport:
    """The whole run: plan, publish the commit, run the stages on the cluster, restore here."""
    import ray

    targets = list(targets)
    check_committed(root)
    stages = outdated_stages(root, targets)
    if not stages:
        log.info("every stage is up to date: nothing to submit")
        return GridReport()
    url = git_remote_url(root, git_remote)
    commit, ref = publish_commit(root, url)
    remote = dvc_remote_settings(root, dvc_remote)
    log.info(
        "%d stages to run at commit %s (git remote %s, DVC remote %s)", len(stages), commit[:12], url, remote.get("url")
    )
    if not ray.is_initialized():
        ray.init(address=address, logging_level=logging.WARNING)
    table, available = resource_table(root, resources), cluster_resources()
    report = schedule(
        stages,
        job=lambda name: StageJob(name, url, commit, ref, remote),
        resources=lambda name: resources_for(name, table, available),
        retries=retries,
    )
    # After a failure, restore only the finished stages: the user's targets would run the failed ones here.
    finished = report.succeeded if report.failed else targets  # no targets: the whole pipeline
    if finished or not report.failed:
        report.coordinator_restored, report.coordinator_ran = restore_on_coordinator(root, finished)
    return report


def plan_lines(root: Path, targets: Iterable[str], resources: dict[str, dict[str, float]] | None = None) -> list[str]:
    """What --dry-run prints: each stage in submission order, its resources and upstream stages."""
    stages = outdated_stages(root, targets)
    table = resource_table(root, resources)
    lines = []
    for name, upstream in stages.items():
        wanted = resources_for(name, table, {"GPU": 1})
        after = f" after {', '.join(sorted(upstream))}" if upstream else ""
        lines.append(f"{name}  {wanted}{after}")
    return lines
