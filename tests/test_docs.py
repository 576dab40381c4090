"""The README and the documentation site: what must stay true of them without building the site
(CI builds it with `make docs`, `mkdocs build --strict`, in .ci/run)."""

import hashlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"


def _readme_results():
    spec = importlib.util.spec_from_file_location("readme_results", REPO / "scripts" / "readme_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_results_are_the_reports_table_exactly():
    """metrics/results.md is a DVC output, not in git: the committed dvc.lock's md5 of it is
    what the README's copy must hash to, so a clean clone can check it without the data."""
    outs = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]["report"]["outs"]
    recorded = next(out["md5"] for out in outs if out["path"] == "metrics/results.md")
    copy = _readme_results().between_markers(README.read_text())
    assert hashlib.md5(copy.encode()).hexdigest() == recorded, (
        "README.md's results differ from the metrics/results.md that dvc.lock records: run `make repro` "
        "(or `make readme` after it) and commit README.md with dvc.lock"
    )


def test_copying_the_results_replaces_only_the_text_between_the_markers():
    module = _readme_results()
    readme = f"# Title\n\nbefore\n\n{module.START}\nold table\nold line\n\n{module.END}\n\nafter\n"
    updated = module.with_results(readme, "new table\n")
    assert updated == f"# Title\n\nbefore\n\n{module.START}\nnew table\n\n{module.END}\n\nafter\n"
    assert module.between_markers(updated) == "new table\n"
    assert module.with_results(updated, "new table\n") == updated


# --- the parameters reference: docs/params.md lists exactly the keys of params.yaml, with their values

PARAMS_PAGE = REPO / "docs" / "params.md"
KEY = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")


def _key_paths(params: dict) -> dict:
    """Every key path of params.yaml -> its value. A path ends at a value that is not a non-empty
    mapping, except under `study`, where it ends at `study.<protocol>.<model>` (whose keys are
    the model section's, checked by the test below)."""
    paths = {}

    def walk(node, prefix):
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value and not (path.startswith("study.") and path.count(".") == 2):
                walk(value, path + ".")
            else:
                paths[path] = value

    walk(params, "")
    return paths


def _documented() -> dict:
    """key -> the text of its value cell, for every table row of docs/params.md whose first cell is a key."""
    rows = {}
    for number, line in enumerate(PARAMS_PAGE.read_text().splitlines(), 1):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) < 3 or not (cells[0].startswith("`") and cells[0].endswith("`")):
            continue
        key = cells[0].strip("`")
        if not KEY.match(key):
            continue
        assert key not in rows, f"docs/params.md:{number}: {key} is documented twice"
        rows[key] = cells[1]
    return rows


def _params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_the_parameters_reference_lists_every_key_of_params_yaml_and_no_other():
    cells = _documented()
    in_params, documented = set(_key_paths(_params())), set(cells)
    assert not in_params - documented, (
        f"keys of params.yaml missing from docs/params.md: {sorted(in_params - documented)}"
    )
    # An optional key the committed file leaves out (its absence has a meaning) shows no value.
    absent = {key for key in documented - in_params if cells[key] != "—"}
    assert not absent, f"keys in docs/params.md with a value that params.yaml lacks: {sorted(absent)}"


def test_the_parameters_reference_gives_each_value_as_params_yaml_has_it():
    paths, documented = _key_paths(_params()), _documented()
    wrong = {}
    for key, cell in documented.items():
        if key not in paths:
            continue  # reported by the test above
        if key.startswith("study."):
            count = len(paths[key])
            assert cell == f"{count} key{'s' if count != 1 else ''}", (
                f"docs/params.md: {key} has {count} keys, not {cell}"
            )
            continue
        assert cell.startswith("`") and cell.endswith("`"), (
            f"docs/params.md: {key}: the value must be one code span, not {cell}"
        )
        if yaml.safe_load(cell.strip("`")) != paths[key] or type(yaml.safe_load(cell.strip("`"))) is not type(
            paths[key]
        ):
            wrong[key] = (cell, paths[key])
    assert not wrong, "docs/params.md values differing from params.yaml (page, file): " + repr(wrong)


def test_each_study_setting_is_a_setting_of_the_models_own_section():
    params = _params()
    for protocol, models in params["study"].items():
        for model, settings in models.items():
            assert model in params, f"study.{protocol}.{model}: params.yaml has no section {model}"
            unknown = set(settings) - set(params[model])
            assert not unknown, (
                f"study.{protocol}.{model}: {sorted(unknown)} are not keys of {model} (so not in docs/params.md)"
            )


# --- the site's navigation and the README's links

README_MAX_LINES = 200


def _nav_pages(entries) -> list[str]:
    pages = []
    for entry in entries:
        if isinstance(entry, str):
            pages.append(entry)
        elif isinstance(entry, dict):
            for value in entry.values():
                pages.extend(_nav_pages(value) if isinstance(value, list) else [value])
    return pages


def test_every_page_in_docs_is_in_the_navigation_and_every_nav_entry_exists():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    nav = _nav_pages(config["nav"])
    assert len(nav) == len(set(nav)), (
        f"mkdocs.yml: a page is in the nav twice: {sorted(p for p in nav if nav.count(p) > 1)}"
    )
    docs = REPO / config.get("docs_dir", "docs")
    pages = {path.relative_to(docs).as_posix() for path in docs.rglob("*.md")}
    assert not pages - set(nav), f"pages in docs/ missing from mkdocs.yml's nav: {sorted(pages - set(nav))}"
    assert not set(nav) - pages, f"mkdocs.yml's nav names pages docs/ lacks: {sorted(set(nav) - pages)}"


def test_the_readme_stays_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines, more than {README_MAX_LINES}: move reference material into a page of docs/"
    )


def test_every_relative_link_in_the_readme_resolves_to_a_file():
    text = README.read_text()
    targets = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text) + re.findall(r"^\[[^\]]+\]:\s*(\S+)", text, re.M)
    relative = [target for target in targets if not re.match(r"^[a-z][a-z0-9+.-]*:|^#", target)]
    assert relative, "README.md links to no documentation page"
    missing = [target for target in relative if not (REPO / target.split("#")[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


# --- the `-S` commands the docs give (dvc exp run, stages.graph, stages.sweep): each must give
# params the code stage accepts, and a bare `dvc exp run` must not set a grid list

EXP_RUN = re.compile(
    r"(dvc exp run|python -m stages\.graph|python -m stages\.sweep)((?:\s+(?:-S|--set-param)\s+(?:'[^']*'|[^\s`']+))+)"
)


SECTION = re.compile(r"^([a-z0-9_]+):[ ]*(?:#.*)?\n((?:[ ]+.*\n)+)", re.M)


def documented_exp_runs() -> list[tuple[str, list[str], dict]]:
    """(where, overrides, sections) for every `dvc exp run -S ...` in README.md and docs/*.md; a
    command continued over lines with a backslash counts as one. `sections`: the params sections
    the same page shows the reader adding (a file's vectors as a backend, say)."""
    found = []
    # The walkthroughs' commands run after the code their pages add: tests/test_walkthroughs.py runs them so.
    walkthroughs = {REPO / "docs/add-a-model.md", REPO / "docs/add-a-backend.md"}
    for page in [README, *sorted(set((REPO / "docs").glob("*.md")) - walkthroughs)]:
        source = page.read_text()
        text = source.replace("\\\n", " \n")  # the line numbers stay
        sections = {}
        for match in SECTION.finditer(source):
            sections.update(yaml.safe_load(match.group(0)) or {})
        for match in EXP_RUN.finditer(text):
            overrides = shlex.split(re.sub(r"(?:-S|--set-param)\s+", "", match.group(2)))
            where = f"{page.relative_to(REPO)}:{text[: match.start()].count(chr(10)) + 1} ({match.group(1)})"
            found.append((where, overrides, sections))
    return found


def first_point(override: str) -> str:
    """`key=a,b` (a sweep over values) -> `key=a`; a list value `key=[a,b]` is one point."""
    key, value = override.split("=", 1)
    return override if value.startswith("[") else f"{key}={value.split(',')[0]}"


def test_documented_exp_run_commands_give_valid_params(tmp_path):
    """A command a newcomer pastes must not stop at the first stage on a param error (the ELSA
    command once listed the deterministic mostpop and ease under `baselines`)."""
    from dvc.utils.hydra import apply_overrides

    from audiorec.config import load_params
    from audiorec.workflow.graph import GRID_KEYS

    commands = documented_exp_runs()
    assert len(commands) > 20, commands  # the pattern still finds them
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    for where, overrides, sections in commands:
        if "dvc exp run" in where:
            grid = [override for override in overrides if override.split("=")[0].split(".")[0] in GRID_KEYS]
            assert not grid, f"{where}: {grid} change dvc.yaml's runs: set them with `python -m stages.graph -S` first"
        # a section the page adds elsewhere (another backend's, say) joins only the commands that name it
        named = {key: value for key, value in sections.items() if any(key in override for override in overrides)}
        params = tmp_path / "params.yaml"
        params.write_text(yaml.safe_dump({**named, **values}, sort_keys=False))
        apply_overrides(params, [first_point(override) for override in overrides])
        try:
            load_params(params)
        except Exception as error:
            raise AssertionError(f"{where}: dvc exp run {' '.join(overrides)} -> {error}") from error


# --- the params.yaml snippets the docs show: merged into params.yaml, the code stage accepts them

PARAMS_SNIPPET = re.compile(r"^(?:Set in `params.yaml`|In `params.yaml`)[^\n]*\n+```yaml\n(.*?)```", re.M | re.S)


def merged(base: dict, change: dict) -> dict:
    """`change` written into `base` as a reader edits params.yaml: sections merge, values replace."""
    out = dict(base)
    for key, value in change.items():
        out[key] = merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def test_documented_params_snippets_are_accepted():
    from audiorec.config import validate

    values = yaml.safe_load((REPO / "params.yaml").read_text())
    found = []
    for page in [README, *sorted((REPO / "docs").glob("*.md"))]:
        for match in PARAMS_SNIPPET.finditer(page.read_text()):
            found.append(page.name)
            validate(merged(values, yaml.safe_load(match.group(1))))
    assert "data.md" in found, found  # the Music4All snippet is still found


# --- numbers quoted in prose: the oracle against its shuffled control, as the results block has them

CONTROL_CLAIM = re.compile(r"under (Shallow|KNN)(?: reaches)? (0\.\d+) against (0\.\d+)")


def results_row(model: str, backend: str) -> dict[str, str]:
    """A row of the README's results block (checked against dvc.lock above), by column name."""
    block = _readme_results().between_markers(README.read_text())
    table = block.split(f"### {model}\n", 1)[1].strip().split("\n\n", 1)[0]
    header, _, *rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()]
    return next(dict(zip(header, row)) for row in rows if row[0] == backend)


def test_the_control_numbers_in_prose_are_the_results_tables():
    claims = []
    for page in (README, REPO / "docs" / "evaluation.md"):
        for model, audio, control in CONTROL_CLAIM.findall(" ".join(page.read_text().split())):
            row = results_row(model.lower(), "oracle")
            shown = (
                round(float(row["HitRate@50"].split()[0]), 3),
                round(float(row["shuffled HitRate@50"].split()[0]), 3),
            )
            assert (float(audio), float(control)) == shown, (
                f"{page.name}: {model} {audio} against {control}; the table: {shown}"
            )
            claims.append(model)
    assert len(claims) >= 3, claims  # the pattern still finds them


# --- the other numbers the pages quote: each is read back from where it comes from

PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]


def prose(page: Path) -> str:
    """The page's text on one line, fenced code blocks left out."""
    return " ".join(re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S).split())


def stage_counts() -> dict[str, int]:
    """dvc.yaml's stages by name before `@` (a `foreach` stage counts once per item)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: len(stage["foreach"]) if "foreach" in stage else 1 for name, stage in stages.items()}


def test_the_stage_counts_in_prose_are_dvc_yamls():
    counts = stage_counts()
    total = sum(counts.values())
    readme = prose(README)
    assert f"default grid's {total} stages" in readme, f"README.md: the default grid has {total} stages (dvc.yaml)"
    start = prose(REPO / "docs" / "getting-started.md")
    words = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
    claim = (
        f"The default grid is {total} stages (`dvc stage list | wc -l`): `code`, `synthesize`, `dataset`, "
        f"{words.get(counts['extract'], counts['extract'])} extractions (the {words.get(counts['extract'] - 1)} "
        f"backends and `none`), `split`, {counts['train']} train and {counts['evaluate']} evaluate stages, `report`"
    )
    assert claim in start, f"docs/getting-started.md should say: {claim}"


TOLERANCE_CLAIM = re.compile(r"`(?:params\.yaml: )?compare\.(tolerance|reference_tolerance)` \((\d[\d.]*)")


def test_the_tolerances_in_prose_are_params_yamls():
    compare = _params()["compare"]
    found = []
    for page in PAGES:
        for key, value in TOLERANCE_CLAIM.findall(prose(page)):
            assert float(value) == compare[key], f"{page.name}: compare.{key} ({value}); params.yaml has {compare[key]}"
            found.append((page.name, key))
    assert {key for _, key in found} == {"tolerance", "reference_tolerance"}, found  # the pattern still finds both
    assert ("pipeline.md", "reference_tolerance") in found and ("pipeline.md", "tolerance") in found, found


def results_cell(section: str, table: str, row: str, column: str) -> str:
    """A cell of the README's results block: `section` "test" (k = 50) or "cold" (k = 10)."""
    block = _readme_results().between_markers(README.read_text())
    part = block.split("## Cold start", 1)[section == "cold"]
    lines = part.split(f"### {table}\n", 1)[1].strip().split("\n\n", 1)[0]
    header, _, *rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines.splitlines()]
    return next(dict(zip(header, cells)) for cells in rows if cells[0] == row)[column]


def readme_hitrate(section: str, model: str, backend: str) -> str:
    """HitRate@50 (test) or @10 (cold) of a run of the deviations page's demo table, as the README has it."""
    k = 10 if section == "cold" else 50
    if backend == "none":
        return results_cell(section, "baselines (interactions only, no audio)", model, f"HitRate@{k}")
    for control in ("shuffled", "unordered"):
        if backend.endswith(f"_{control}"):
            return results_cell(section, model, backend.removesuffix(f"_{control}"), f"{control} HitRate@{k}")
    return results_cell(section, model, backend, f"HitRate@{k}")


def test_the_deviations_demo_table_is_the_readme_results():
    """docs/deviations.md's `model_settings: demo` table is the committed `make repro`: its test
    and cold columns are the README's results (checked against dvc.lock above), to 3 decimals."""
    text = (REPO / "docs" / "deviations.md").read_text()
    table = text.split("**Journal protocol, `model_settings: demo`**", 1)[1].split("\n\n", 2)[1]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    assert len(rows) >= 15, rows
    for model, backend, _val, test, cold in rows:
        shown = [float(x) for x in readme_hitrate("test", model, backend).split(" ± ")]
        assert [float(x) for x in test.split(" ± ")] == pytest.approx(shown, abs=0.0005 + 1e-9), (
            f"docs/deviations.md demo table: {model} on {backend}, test {test}; README: {shown}"
        )
        if cold != "—":
            expected = float(readme_hitrate("cold", model, backend).split(" ± ")[0])
            assert float(cold) == pytest.approx(expected, abs=0.0005 + 1e-9), (
                f"docs/deviations.md demo table: {model} on {backend}, cold {cold}; README: {expected}"
            )


STUDY_TIMES = REPO / "benchmarks" / "results" / "study_times_2026-12-01.json"


def test_the_whole_study_estimate_in_prose_is_the_committed_one():
    """docs/scale.md's total and the README's "about a month" come from the committed estimate,
    and the README's "about 2×" from the epochs of docs/scale.md's Measured table."""
    import json

    hours = sum(stage["hours"] or 0 for stage in json.loads(STUDY_TIMES.read_text())["stages"])
    scale = prose(REPO / "docs" / "scale.md")
    total, days = re.search(
        r"Total, with dataset, split, MostPop and the evaluations: ([\d,]+) h = ([\d.]+) days", scale
    ).groups()
    assert (int(total.replace(",", "")), float(days)) == (round(hours), round(hours / 24, 1)), (total, days, hours)
    assert STUDY_TIMES.name in scale
    assert "about a month of such a CPU" in prose(README) and 25 <= hours / 24 <= 35, hours / 24
    measured = (REPO / "docs" / "scale.md").read_text().split("\n### Measured\n", 1)[1]
    ratios = [float(line.split(" | ")[5].rstrip("×")) for line in measured.splitlines() if "training epoch |" in line]
    assert ratios and max(ratios) <= 2.0 and "within about 2× their FLOP floors" in prose(README), ratios


# --- what no page says: internal issue numbers, a machine's own paths, promises, dated narrative

NOT_ANYWHERE = re.compile(r"\bissue \d+|development machine|/work/|/home/|/Users/", re.I)
NOT_ON_A_PAGE = re.compile(r"due to switch|tried, not kept|gave back", re.I)  # history and promises: CHANGELOG.md
DATE = re.compile(r"(?<!\d)20\d\d-\d\d-\d\d(?!\d)")


def test_no_page_cites_an_issue_a_machine_path_or_a_promise():
    for page in [*PAGES, REPO / "CHANGELOG.md"]:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            assert not NOT_ANYWHERE.search(line), f"{page.relative_to(REPO)}:{number}: {line.strip()}"
            assert page.name == "CHANGELOG.md" or not NOT_ON_A_PAGE.search(line), (
                f"{page.relative_to(REPO)}:{number}: {line.strip()}"
            )


def test_dates_on_pages_are_settings_or_the_latest_benchmark_results():
    """Dated measurements live in CHANGELOG.md and benchmarks/results/; a page may name a date
    only as a setting of params.yaml or as the date of a committed results file."""
    allowed = set(DATE.findall((REPO / "params.yaml").read_text()))
    allowed |= {date for path in (REPO / "benchmarks" / "results").iterdir() for date in DATE.findall(path.name)}
    for page in PAGES:
        if page.name == "params.md":
            continue  # the parameters reference: its own tests above
        for number, line in enumerate(page.read_text().splitlines(), 1):
            stray = set(DATE.findall(line)) - allowed
            assert not stray, (
                f"{page.relative_to(REPO)}:{number}: {sorted(stray)}: move dated narrative to CHANGELOG.md"
            )
