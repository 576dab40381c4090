"""dvc.yaml by construction: each stage depends on exactly the code it runs, every output goes
through the cache, and dvc.yaml lists exactly params.yaml's grid (audiorec.workflow)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from audiorec import backends
from audiorec.workflow import graph, grid
from audiorec.workflow.closure import closure
from audiorec.workflow.worktree import REPO

CODE_DEP = re.compile(r"^data/code/(?P<unit>[\w-]+)\.json$")


def params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_walk_follows_every_import_that_can_run_and_no_other(tmp_path):
    """A hand-worked tree: relative, package, and function-level imports are followed; an import
    under TYPE_CHECKING, a module nobody imports, and a third-party import are not."""
    write(
        tmp_path,
        {
            "stages/__init__.py": "",
            "stages/run.py": (
                "from typing import TYPE_CHECKING\nimport numpy\nfrom audiorec import a\n"
                "if TYPE_CHECKING:\n    from audiorec import typed\nelse:\n    from audiorec import runtime\n"
                "def main():\n    from audiorec.sub import lazy\n"
            ),
            "audiorec/__init__.py": "",
            "audiorec/a.py": "from . import b\n",
            "audiorec/b.py": "from .sub.c import value\n",
            "audiorec/sub/__init__.py": "",
            "audiorec/sub/c.py": "value = 1\n",
            "audiorec/sub/lazy.py": "from ..b import value\n",
            "audiorec/typed.py": "",
            "audiorec/runtime.py": "",
            "audiorec/unused.py": "",
        },
    )
    assert closure(["stages.run"], tmp_path) == [
        "audiorec/__init__.py",
        "audiorec/a.py",
        "audiorec/b.py",
        "audiorec/runtime.py",
        "audiorec/sub/__init__.py",
        "audiorec/sub/c.py",
        "audiorec/sub/lazy.py",
        "stages/__init__.py",
        "stages/run.py",
    ]
    with pytest.raises(KeyError, match="no module stages.gone"):
        closure(["stages.gone"], tmp_path)


def test_each_stage_runs_only_its_own_model_and_backend():
    """Hand-checked facts of the default grid: KNN's training runs no epoch loop, Shallow's no
    mean-user towers; no stage but the code stage runs the params checks; a backend's module
    only in its own extraction; evaluation runs no model."""
    files = graph.code_files(params(), REPO)
    assert "audiorec/models/training.py" not in files["train-knn"]
    assert "audiorec/models/training.py" in files["train-shallow"]
    assert all("audiorec/models/mean_user.py" not in unit for unit in files.values())
    assert all("audiorec/config.py" not in unit for unit in files.values())
    assert [name for name, unit in files.items() if "audiorec/backends/musicnn.py" in unit] == ["extract-musicnn"]
    assert not any(name.startswith("audiorec/models/") for name in files["evaluate"])
    assert not any(name.startswith("audiorec/backends/") for name in files["split"] + files["train-shallow"])


def declared_units() -> dict[str, tuple[str, str]]:
    """Stage -> (its command, the unit of its one data/code/ dependency), as DVC resolves dvc.yaml."""
    from dvc.repo import Repo

    found = {}
    with Repo(str(REPO)) as repo:
        for stage in repo.index.stages:
            code = [m["unit"] for dep in stage.deps if (m := CODE_DEP.match(str(dep.def_path)))]
            files = [str(dep.def_path) for dep in stage.deps if str(dep.def_path).endswith(".py")]
            assert not files, f"{stage.name} lists code by hand: {files}"
            if stage.name != "code":
                assert len(code) == 1, f"{stage.name}: {len(code)} code dependencies"
                found[stage.name] = (stage.cmd, code[0])
    return found


def modules_run(command: str, settings: dict) -> list[str]:
    """What a stage's command runs, read from the command itself: its `-m` module, and the
    model or backend the registries import for its --model or --backend."""
    words = command.split()
    entries = [words[words.index("-m") + 1]]
    if entries[0] == "stages.train":
        entries.append(graph.model_module(words[words.index("--model") + 1]))
    if entries[0] == "stages.extract":
        name = words[words.index("--backend") + 1]
        entries.append(graph.backend_module(name, settings.get(name)))
        if name in backends.SETTINGS:  # backends.create checks a built-in backend's section with its class
            entries.append(backends.SETTINGS[name].split(":")[0])
    if entries[0] in ("stages.report", "stages.choose_layer"):  # they read each swept backend's stored layers
        entries += [backends.SETTINGS[name].split(":")[0] for name in grid.swept_backends(settings)]
    return entries


def test_every_stage_depends_on_exactly_the_code_it_runs():
    """No undeclared and no unused code dependency: for every stage of dvc.yaml, the files its
    data/code/<unit>.json holds are the import closure of what its command runs."""
    settings = params()
    files = graph.code_files(settings, REPO)
    stages = declared_units()
    assert len(stages) >= 40
    for stage, (command, unit) in stages.items():
        assert files[unit] == closure(modules_run(command, settings), REPO), stage


def test_dvc_yaml_is_current_and_caches_every_output():
    assert graph.is_current(params(), REPO / graph.DVC_YAML, REPO / graph.TEMPLATE), graph.stale_message()
    for name in ("dvc.yaml", "dvc.template.yaml"):
        text = (REPO / name).read_text()
        assert "cache: false" not in text and "persist" not in text, name


def test_the_run_list_covers_the_grid_once():
    settings = {
        **params(),
        "backends": ["a", "b"],
        "models": ["knn", "shallow", "bimodal"],
        "baselines": ["elsa", "mostpop"],
        "seeds": [0, 3],
        "controls": {"shuffle": ["b"], "models": ["knn"], "unordered": ["a"], "seed": 5},
    }
    runs = grid.runs(settings)
    names = [run.name for run in runs]
    assert len(names) == len(set(names))
    assert set(names) == {
        "a-knn",
        "b-knn",
        "a-shallow-0",
        "a-shallow-3",
        "b-shallow-0",
        "b-shallow-3",
        "a-bimodal-0",
        "a-bimodal-3",
        "b-bimodal-0",
        "b-bimodal-3",
        "none-elsa-0",
        "none-elsa-3",
        "none-mostpop",
        "b_shuffled-knn",
        "a_unordered-bert4rec-0",
        "a_unordered-bert4rec-3",
    }
    shuffled = next(run for run in runs if run.control == "shuffled")
    assert shuffled.train_args == " --shuffle-seed 5" and shuffled.backend == "b" and shuffled.folder == "b_shuffled"
    lists = graph.items(settings)
    assert set(lists["runs_with_elsa"]) == {"a-bimodal-0", "a-bimodal-3", "b-bimodal-0", "b-bimodal-3"}
    assert set(lists["runs"]) | set(lists["runs_with_elsa"]) == set(lists["evaluations"]) == set(names)
    assert list(lists["backends"]) == ["a", "b", "none"]


def test_a_stale_dvc_yaml_is_refused_before_any_work(tmp_path):
    """A grid list changed without regenerating dvc.yaml (a bare `dvc exp run -S backends=...`):
    the code stage, first in the graph, refuses it and names the command that fixes it."""
    from audiorec.workflow.worktree import write_params

    settings = params()
    write_params(tmp_path, settings)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**settings, "backends": ["random", "oracle"]}))
    result = subprocess.run(
        [sys.executable, "-m", "stages.code"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO)},
    )
    assert result.returncode != 0 and "python -m stages.graph" in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "data/code").exists()


def test_the_graph_command_sets_params_keeping_comments_and_writes_dvc_yaml(tmp_path):
    from audiorec.workflow.worktree import copy_worktree

    root = copy_worktree(tmp_path)
    run = [sys.executable, "-m", "stages.graph"]
    subprocess.run([*run, "-S", "seeds=[0,1]"], cwd=root, check=True, capture_output=True)
    assert yaml.safe_load((root / "params.yaml").read_text())["seeds"] == [0, 1]
    assert "# the study's Shallow Net; see docs/models.md" in (root / "params.yaml").read_text()
    assert "train@oracle-shallow-1" not in (REPO / "dvc.yaml").read_text()
    assert "oracle-shallow-1:" in (root / "dvc.yaml").read_text()
    assert subprocess.run([*run, "--check"], cwd=root, capture_output=True).returncode == 0
    refused = subprocess.run([*run, "-S", "models=[mostpop]"], cwd=root, capture_output=True, text=True)
    assert refused.returncode != 0 and "'mostpop' uses no audio" in refused.stderr


@pytest.mark.e2e
def test_a_stage_imports_nothing_its_code_file_does_not_list(tiny_repo_copy):
    """At run time, the repository modules a stage has imported when it ends are all in its
    data/code/<unit>.json (the registries' imports by name included)."""
    root, env, _ = tiny_repo_copy
    tracer = (
        "import atexit, json, runpy, sys\n"
        "root = sys.argv[1]\n"
        "def dump():\n"
        "    files = sorted({m.__file__[len(root) + 1:] for m in list(sys.modules.values())\n"
        "                    if getattr(m, '__file__', None) and m.__file__.startswith(root + '/')})\n"
        "    print('IMPORTED ' + json.dumps(files))\n"
        "atexit.register(dump)\n"
        "sys.argv = [sys.argv[2], *sys.argv[3:]]\n"
        "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
    )
    commands = {
        "train-knn": ["stages.train", "--backend", "oracle", "--model", "knn"],
        "evaluate": ["stages.evaluate", "--backend", "oracle", "--model", "knn"],
        "extract-random": ["stages.extract", "--backend", "random"],
        "split": ["stages.split"],
        "report": ["stages.report"],
    }
    imported_by = {}
    for unit, command in commands.items():
        result = subprocess.run(
            [sys.executable, "-c", tracer, str(root.resolve()), *command],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        imported = imported_by[unit] = json.loads(result.stdout.rsplit("IMPORTED ", 1)[1])
        declared = json.loads((root / f"data/code/{unit}.json").read_text())["files"]
        assert set(imported) <= set(declared), (unit, sorted(set(imported) - set(declared)))
    # The registries' imports by name were seen: the model and the backend the stages ran.
    assert "audiorec/models/knn.py" in imported_by["train-knn"]
    assert "audiorec/backends/random.py" in imported_by["extract-random"]


def test_a_model_declared_once_gets_the_runs_its_kind_says(monkeypatch):
    """A model is one line of audiorec.models.KINDS: the checks, the run list and its code unit follow."""
    from audiorec import models
    from audiorec.config import ParamsError, validate

    monkeypatch.setitem(
        models.KINDS,
        "toy",
        models.ModelKind(
            "audiorec.models.knn:KNNRecommender",
            "audiorec.settings.knn:KNNSettings",
            seeded=False,
            audio=True,
            without_audio=False,
            study=False,
        ),
    )
    settings = {
        **params(),
        "models": ["toy", "shallow"],
        "baselines": ["mostpop"],
        "seeds": [0, 1],
        "toy": params()["knn"],
    }
    settings["controls"] = {**settings["controls"], "models": ["toy"], "unordered": []}
    with pytest.raises(
        ParamsError,
        match=r"study.recsys24 has no entry for toy; add `toy: \{\}` \(empty: the original code did not run it\)",
    ):
        validate(settings)
    settings["study"] = {protocol: {**entries, "toy": {}} for protocol, entries in settings["study"].items()}
    validate(settings)
    with pytest.raises(
        ParamsError, match=r"study.journal.toy: the original code did not run toy; leave its entry empty"
    ):
        validate(
            {
                **settings,
                "study": {**settings["study"], "journal": {**settings["study"]["journal"], "toy": {"batch_size": 8}}},
            }
        )
    names = [run.name for run in grid.runs(settings)]
    assert [name for name in names if "toy" in name] == [f"{b}-toy" for b in settings["backends"]] + [
        "oracle_shuffled-toy"
    ]
    assert graph.units(settings)["train-toy"] == ["stages.train", "audiorec.models.knn"]
    with pytest.raises(ParamsError, match="baselines: 'toy' cannot run without audio"):
        validate({**settings, "baselines": ["toy"]})


def test_leave_out_drops_every_seed_of_a_pair_and_nothing_else():
    settings = {
        **params(),
        "backends": ["a", "b"],
        "models": ["knn", "bert4rec"],
        "baselines": ["bert4rec"],
        "seeds": [0, 1],
        "leave_out": ["a-bert4rec", "c-knn"],  # c is not a backend of this grid: nothing to leave out
        "controls": {"shuffle": [], "models": [], "unordered": ["a"], "seed": 0},
    }
    names = {run.name for run in grid.runs(settings)}
    assert names == {
        "a-knn",
        "b-knn",
        "b-bert4rec-0",
        "b-bert4rec-1",
        "none-bert4rec-0",
        "none-bert4rec-1",
        "a_unordered-bert4rec-0",  # a control is not a pair of backends x models
        "a_unordered-bert4rec-1",
    }
    assert {run.name for run in grid.runs({**settings, "leave_out": []})} >= {"a-bert4rec-0", "a-bert4rec-1"}
