"""The DVC workflows of docs/workflows.md, driven through the real `dvc` CLI: comparing
runs, a stale-lock check on a clean clone, sweeps, params-scoped re-runs, and
sharing outputs over a real SSH remote."""

import getpass
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from audiorec.workflow.compare import Difference, beyond, differences, evaluate_stage
from audiorec.workflow.lockcheck import is_produced, stage_names, stale_stages
from audiorec.workflow.worktree import REPO, set_params

REFERENCE = Path("tests/reference/tiny_metrics.json")
STAGE_RUN = re.compile(r"^Running stage '([^']+)'", re.MULTILINE)


def run(command, root, env, check=True):
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def params():
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_metrics_paths_name_their_stages():
    """Each evaluate stage of dvc.yaml, as DVC resolves it, is named back from its metrics file."""
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        evaluations = {
            str(out.def_path): stage.name
            for stage in repo.index.stages
            if stage.name.startswith("evaluate@")
            for out in stage.outs
            if out.metric
        }
    assert len(evaluations) == len([name for name in evaluations.values()]) > 10
    assert {path: evaluate_stage(path) for path in evaluations} == evaluations
    assert evaluate_stage("metrics/musicnn_shuffled/shallow.seed12.json") == "evaluate@musicnn_shuffled-shallow-12"
    assert evaluate_stage("metrics/layers/musicnn/max_pool/shallow.seed0.json") == "evaluate@musicnn.max_pool-shallow-0"


def test_gate_fails_on_changes_beyond_tolerance_and_on_lost_metrics_only():
    reference = {"metrics/oracle/knn.json": {"test.hitrate@50.mean": 0.50, "test.ndcg@50.mean": 0.10}}
    current = {
        "metrics/oracle/knn.json": {"test.hitrate@50.mean": 0.5004, "test.ndcg@50.mean": 0.12},
        "metrics/mfcc/knn.json": {"test.hitrate@50.mean": 0.3},  # new: not a change of anything
    }
    found = differences(reference, current)
    assert {(d.stage, d.metric) for d in found} == {
        ("evaluate@oracle-knn", "test.hitrate@50.mean"),
        ("evaluate@oracle-knn", "test.ndcg@50.mean"),
        ("evaluate@mfcc-knn", "test.hitrate@50.mean"),
    }
    assert [(d.stage, d.metric) for d in beyond(found, 0.001)] == [("evaluate@oracle-knn", "test.ndcg@50.mean")]
    assert beyond(found, 0.05) == []
    lost = differences(current, reference)
    assert [d.stage for d in beyond(lost, 1.0)] == ["evaluate@mfcc-knn"]
    assert Difference("s", "m", None, 1.0).change == 0.0


def test_committed_lock_matches_committed_code(tmp_path):
    """CI's stale-lock check: in a clean clone of HEAD, no git-tracked dependency differs from dvc.lock."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(tmp_path / "clone")], check=True)
    stale = stale_stages(tmp_path / "clone")
    assert stale == {}, "dvc.lock is stale for the committed code; run `make repro` and commit dvc.lock:\n" + "\n".join(
        f"{stage}: {'; '.join(reasons)}" for stage, reasons in stale.items()
    )


def test_stale_lock_names_the_stage_and_what_changed(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    with open(clone / "stages/evaluate.py", "a") as code:
        code.write("# an edit made after the last dvc repro\n")
    set_params(clone, "knn", batch_size=7)
    stale = stale_stages(clone)
    # Code reaches the stages through the code stage's files: any edit makes it stale.
    assert "stages modified" in stale["code"]
    assert "params.yaml: knn modified" in stale["train@oracle-knn"]
    assert "params.yaml: knn modified" not in stale.get("train@oracle-shallow-0", [])
    # Missing data is expected in a clean clone and is not staleness.
    assert "dataset" not in stale and "extract@musicnn" not in stale and "report" not in stale


@pytest.mark.e2e
def test_tiny_metrics_match_the_committed_reference(tiny_repo):
    """CI reproduces the tiny pipeline from scratch; its test and cold metrics must match the reference."""
    root, env, _ = tiny_repo
    tolerance = params()["compare"]["reference_tolerance"]
    command = [sys.executable, "-m", "stages.compare", "--reference", str(REFERENCE), "--tolerance", str(tolerance)]
    result = run(command, root, env, check=False)
    assert result.returncode == 0, (
        f"the tiny pipeline's metrics moved from {REFERENCE} by more than {tolerance}. If the change is intended, "
        f"refresh the reference with `make tiny-reference` and commit it.\n{result.stdout}{result.stderr}"
    )


@pytest.mark.e2e
def test_compare_exits_nonzero_on_a_planted_change_and_zero_otherwise(tiny_repo_copy):
    root, env, dvc = tiny_repo_copy
    compare = [sys.executable, "-m", "stages.compare", "HEAD"]
    assert run(compare, root, env).returncode == 0
    path = root / "metrics/oracle/knn.json"
    metrics = json.loads(path.read_text())
    metrics["test"]["hitrate@50"]["mean"] += 0.01
    path.write_text(json.dumps(metrics))
    result = run(compare, root, env, check=False)
    assert result.returncode == 1
    assert re.search(r"evaluate@oracle-knn\s+test\.hitrate@50\.mean", result.stdout), result.stdout
    # dvc metrics diff sees the same change on the committed layout, but exits 0.
    diff = run(dvc + ["metrics", "diff", "HEAD", "--json"], root, env)
    assert json.loads(diff.stdout)["metrics/oracle/knn.json"]["test.hitrate@50.mean"]["diff"] == pytest.approx(0.01)
    assert "knn.batch_size" not in run(dvc + ["params", "diff", "HEAD", "--json"], root, env).stdout


@pytest.mark.e2e
def test_a_knn_param_change_reruns_only_knn_stages(tiny_repo_copy):
    root, env, dvc = tiny_repo_copy
    set_params(root, "knn", batch_size=7)
    ran = STAGE_RUN.findall(run(dvc + ["repro"], root, env).stdout)
    settings = yaml.safe_load((root / "params.yaml").read_text())
    swept = [(b, layer) for b in settings["layer_sweep"]["backends"] for layer in settings[b]["layers"]]
    knn_training = (
        {f"train@{b}-knn" for b in settings["backends"]}
        | {f"train@{b}_shuffled-knn" for b in settings["controls"]["shuffle"]}
        | {f"train@{b}.{layer}-knn" for b, layer in swept}
    )
    assert knn_training <= set(ran), ran
    # Only what reads KNN's predictions may follow: a batch of another size can round a
    # float32 score differently and swap two near-tied tracks, never more.
    downstream = (
        {f"evaluate@{b}-knn" for b in settings["backends"]}
        | {f"evaluate@{b}_shuffled-knn" for b in settings["controls"]["shuffle"]}
        | {f"evaluate@{b}.{layer}-knn" for b, layer in swept}
        | {f"choose_layer@{b}" for b in settings["layer_sweep"]["backends"]}  # the layer's KNN runs decide it
        | {"report", "code"}
    )  # the code stage re-runs on any params change; its files stay the same
    assert set(ran) - knn_training <= downstream, ran


def _experiments(shown: list) -> list[dict]:
    """The experiments under the baseline commit in `dvc exp show --json`."""
    found = []
    for commit in shown:
        for experiment in commit.get("experiments") or []:
            for rev in experiment["revs"]:
                found.append(rev)
    return found


@pytest.mark.e2e
def test_queued_sweep_runs_both_points(tiny_repo_copy, tmp_path):
    root, env, dvc = tiny_repo_copy
    # No global git identity, as on a fresh machine: the sweep must set one for the repo.
    env = {**env, "HOME": str(tmp_path / "home"), "GIT_CONFIG_NOSYSTEM": "1"}
    (tmp_path / "home").mkdir()
    sweep = [
        sys.executable,
        "-m",
        "stages.sweep",
        "-S",
        "mostpop.count_by=plays,users",
        "-j",
        "1",
        "--sort-by",
        "metrics/none/mostpop.json:val.ndcg@50.mean",
    ]
    result = run(sweep, root, env)
    assert "mostpop.count_by" in result.stdout
    experiments = _experiments(json.loads(run(dvc + ["exp", "show", "--json"], root, env).stdout))
    assert len(experiments) == 2, experiments
    by_setting, logs = {}, {}
    for experiment in experiments:
        data = experiment["data"]
        setting = data["params"]["params.yaml"]["data"]["mostpop"]["count_by"]
        # Every test metric: on the tiny data the two rankings can tie on one of them (HitRate@50 did).
        by_setting[setting] = data["metrics"]["metrics/none/mostpop.json"]["data"]["test"]
        logs[setting] = run(dvc + ["queue", "logs", experiment["name"]], root, env).stdout
    assert set(by_setting) == {"plays", "users"}
    assert by_setting["plays"] != by_setting["users"]
    # The changed point re-ran mostpop; both went over the extraction stages without running them.
    assert "Running stage 'train@none-mostpop'" in logs["users"], logs["users"][-2000:]
    for log in logs.values():
        # musicnn's extraction stores its layers in the tiny run: extract_layers_to_choose@musicnn.
        assert re.search(r"'extract\w*@musicnn'", log), log[-2000:]
        assert "Running stage 'extract" not in log and "Running stage 'dataset'" not in log


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ssh_server(tmp_path):
    """A throw-away OpenSSH server on 127.0.0.1 that accepts one key made here."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists():
        pytest.skip("no sshd: install Debian's openssh-server (.ci/run does) to run the SSH remote test")
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    shutil.copy(keys / "user.pub", keys / "authorized_keys")
    try:
        Path("/run/sshd").mkdir(exist_ok=True)  # the privilege separation directory sshd insists on
    except OSError as error:
        pytest.skip(f"cannot create /run/sshd for sshd: {error}")
    port = _free_port()
    config = keys / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\nPidFile {keys / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\n"
    )
    server = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.skip(f"sshd could not start here: {server.stderr.read().strip()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.skip("sshd did not listen within 10 s")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    host_key = (keys / "host.pub").read_text().split()
    (home / ".ssh/known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    yield {"port": port, "keyfile": keys / "user", "home": home}
    server.terminate()
    server.wait(timeout=10)


def _add_remote(root, env, server, storage):
    url = f"ssh://{getpass.getuser()}@127.0.0.1:{server['port']}{storage}"
    run([sys.executable, "-m", "dvc", "remote", "add", "--local", "team", url], root, env)
    run(
        [sys.executable, "-m", "dvc", "remote", "modify", "--local", "team", "keyfile", str(server["keyfile"])],
        root,
        env,
    )


@pytest.mark.e2e
def test_ssh_remote_push_clone_pull_round_trip(tiny_repo_copy, ssh_server, tmp_path):
    root, env, dvc = tiny_repo_copy
    env = {**env, "HOME": str(ssh_server["home"])}
    storage = tmp_path / "storage"
    _add_remote(root, env, ssh_server, storage)
    run(dvc + ["push", "-r", "team"], root, env)
    assert any((storage / "files").rglob("*")), "nothing arrived on the SSH remote"

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(root), str(clone)], tmp_path, env)
    _add_remote(clone, env, ssh_server, storage)
    run(dvc + ["pull", "-r", "team"], clone, env)
    assert (clone / "data/embeddings/musicnn.npy").is_file()
    again = run(dvc + ["repro"], clone, env)
    assert STAGE_RUN.findall(again.stdout) == [], again.stdout
    assert json.loads(run(dvc + ["status", "--json"], clone, env).stdout) == {}


@pytest.mark.e2e
def test_an_interrupted_repro_recomputes_only_unfinished_stages(tiny_repo_copy):
    import os
    import signal

    root, env, dvc = tiny_repo_copy
    # The shuffled controls' two train stages, their two evaluate stages and the report are stale now.
    set_params(root, "controls", seed=1)
    process = subprocess.Popen(
        dvc + ["repro"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    started = []
    for line in process.stdout:
        started += STAGE_RUN.findall(line)
        if len(started) == 4:  # three stages finished, the fourth is running: kill everything
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait()
    assert len(started) == 4, started
    ran = STAGE_RUN.findall(run(dvc + ["repro"], root, env).stdout)
    assert not set(started[:3]) & set(ran), (started, ran)
    assert started[3] in ran and "report" in ran
    assert json.loads(run(dvc + ["status", "--json"], root, env).stdout) == {}


def test_gate_fails_when_a_metric_turns_nan_but_not_when_it_stays_nan():
    nan = float("nan")
    reference = {"metrics/oracle/knn.json": {"test.hitrate@50.mean": 0.5, "cold.hitrate@10.mean": nan}}
    current = {"metrics/oracle/knn.json": {"test.hitrate@50.mean": nan, "cold.hitrate@10.mean": nan}}
    found = differences(reference, current)
    assert [(d.metric, d.change) for d in found] == [("test.hitrate@50.mean", float("inf"))]
    assert len(beyond(found, 1.0)) == 1


def test_a_removed_code_dependency_makes_the_lock_stale(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    (clone / "audiorec/evaluation/ranking.py").unlink()
    stale = stale_stages(clone)
    assert "audiorec modified" in stale["code"]  # the code stage hashes all the code
    assert "extract@musicnn" not in stale  # its missing data is produced by stages: not staleness


def test_a_file_inside_an_output_folder_counts_as_produced():
    """train@<run> depends on data/code/train-<model>.json, a file of the code stage's output folder:
    missing in a clean clone, it is data to produce, not a removed input."""
    produced = {"data/code", "data/tracks.parquet"}
    assert is_produced("data/code/train-knn.json", produced) and is_produced("data/tracks.parquet", produced)
    assert not is_produced("data/code_old/train-knn.json", produced) and not is_produced(
        "audiorec/evaluation/ranking.py", produced
    )


def test_an_orphan_in_the_lock_is_stale_and_pruned(tmp_path):
    """A stage dvc.lock records but dvc.yaml no longer defines (a renamed run, say) fails the lock
    check by name; `--prune` removes it and nothing else."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    kept = list(lock["stages"])
    lock["stages"]["train@mfcc-svd-0"] = lock["stages"]["train@oracle-knn"]
    (clone / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    assert stale_stages(clone)["train@mfcc-svd-0"] == ["in dvc.lock but not in dvc.yaml (orphan)"]
    result = run([sys.executable, "-m", "stages.check_lock", "--prune"], clone, None)
    assert "removed from dvc.lock: train@mfcc-svd-0" in result.stdout
    assert list(yaml.safe_load((clone / "dvc.lock").read_text())["stages"]) == kept


@pytest.mark.e2e
def test_a_second_clone_restores_every_stage_from_the_run_cache(tiny_repo_copy, tmp_path):
    """What a cluster worker computed is restored, not recomputed: the run-cache pushed to a
    remote, a clone with an empty cache and no dvc.lock runs `dvc repro --pull`, every stage
    is cached, and every metric file, plot and table is byte-identical."""
    root, env, dvc = tiny_repo_copy
    remote = tmp_path / "remote"
    run(dvc + ["remote", "add", "-d", "shared", str(remote)], root, env)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qam", "remote"], root, env)
    run(dvc + ["push", "--run-cache"], root, env)

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(root), str(clone)], tmp_path, env)
    (clone / "dvc.lock").unlink()  # nothing but the run-cache says what each stage made
    result = run(dvc + ["repro", "--pull"], clone, env)
    assert STAGE_RUN.findall(result.stdout) == [], result.stdout[-3000:]
    stages = stage_names(root)  # the tiny grid's (its dvc.lock also holds the default grid's other stages)
    restored = set(re.findall(r"^Stage '([^']+)' is cached - skipping run", result.stdout, re.M))
    assert restored == stages, (sorted(stages - restored), result.stdout[-3000:])
    produced = sorted(
        path.relative_to(root) for path in (root / "metrics").rglob("*") if path.is_file() and path.name != ".gitignore"
    )
    assert len(produced) > 40
    for path in produced:
        assert (clone / path).read_bytes() == (root / path).read_bytes(), path
    locked = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert yaml.safe_load((clone / "dvc.lock").read_text())["stages"] == {name: locked[name] for name in stages}
