"""The "Add a model" and "Add a backend" pages, followed step by step in a scratch copy of the
repository: their code blocks written where their titles say, their commands run on the tiny
dataset. A page that no longer works as written fails here."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from audiorec.workflow import worktree

REPO = Path(__file__).resolve().parents[1]
PAGES = ("docs/add-a-model.md", "docs/add-a-backend.md")
BLOCK = re.compile(r'^```(\w+) title="([^"]+)"\n(.*?)^```$', re.S | re.M)


def blocks(page: str) -> list[tuple[str, str]]:
    """(title, body) of each titled code block of `page`, in order."""
    return [(title, body) for _, title, body in BLOCK.findall((REPO / page).read_text())]


def merge(into: dict, values: dict) -> None:
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict) and value:
            merge(into[key], value)
        else:
            into[key] = value


def insert_entry(path: Path, mapping: str, body: str) -> None:
    """The block's lines as the first entries of the dict literal `mapping = {` in `path`."""
    text = path.read_text()
    opening = re.search(rf"^{mapping}\b[^\n]*= \{{\n", text, re.M)
    assert opening, f"{path}: no `{mapping} = {{` to add the page's entry to"
    path.write_text(text[: opening.end()] + body + text[opening.end() :])


def follow(page: str, root: Path) -> list[str]:
    """Apply the page's blocks to the copy at `root`; its commands, to run next."""
    commands = []
    for title, body in blocks(page):
        if title == "run":
            commands += [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
        elif title == "params.yaml":
            params = yaml.safe_load((root / "params.yaml").read_text())
            merge(params, yaml.safe_load(body))
            (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        elif ": " in title:
            file, mapping = title.split(": ")
            insert_entry(root / file, mapping, body)
        else:
            assert not (root / title).exists(), f"{page}: {title} exists already; the page must add a new file"
            (root / title).write_text(body)
    return commands


def test_each_page_adds_files_registers_them_and_runs_them():
    for page in PAGES:
        titles = [title for title, _ in blocks(page)]
        assert "run" in titles and "params.yaml" in titles, f"{page}: titled blocks {titles}"
        assert sum(": " in title for title in titles) >= 1 and sum(title.endswith(".py") for title in titles) == 2, (
            titles
        )


@pytest.mark.e2e
def test_a_newcomer_adds_a_model_and_a_backend_by_following_the_pages(tiny_repo_copy):
    """On a copy of the reproduced tiny run, so that only what the pages add (and what their
    registry lines touch) runs."""
    root, env, _ = tiny_repo_copy
    commands = [command for page in PAGES for command in follow(page, root)]
    for command in commands:
        argv = shlex.split(command)
        argv = (
            [sys.executable, *argv[1:]]
            if argv[0] == "python"
            else worktree.DVC + argv[1:]
            if argv[0] == "dvc"
            else argv
        )
        result = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    for path in ("metrics/oracle/last_track.json", "metrics/chroma/knn.json", "data/embeddings/chroma.npy"):
        assert (root / path).is_file(), path
    for metrics in ("metrics/oracle/last_track.json", "metrics/chroma/knn.json"):
        values = yaml.safe_load((root / metrics).read_text())
        assert {"val", "test", "cold"} <= set(values) and 0 <= values["test"]["ndcg@10"]["mean"] <= 1, (metrics, values)
    # The model's unit lists its module and its settings, so editing either re-runs its stages.
    unit = yaml.safe_load((root / "data/code/train-last_track.json").read_text())
    assert {"audiorec/models/last_track.py", "audiorec/settings/last_track.py"} <= set(unit["files"])
    unit = yaml.safe_load((root / "data/code/extract-chroma.json").read_text())
    assert {"audiorec/backends/chroma.py"} <= set(unit["files"])
