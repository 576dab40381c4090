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

README_MAX_LINES = 120


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
    """The hand-written part: the results block between its markers is the report's, generated."""
    text = README.read_text()
    lines = len(text.splitlines()) - len(_readme_results().between_markers(text).splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines besides the results, more than {README_MAX_LINES}: "
        "move reference material into a page of docs/"
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
    from audiorec.workflow.graph import is_grid_key

    commands = documented_exp_runs()
    assert len(commands) > 20, commands  # the pattern still finds them
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    for where, overrides, sections in commands:
        if "dvc exp run" in where:
            grid = [override for override in overrides if is_grid_key(override.split("=")[0])]
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
    extractions = sum(counts.get(name, 0) for name in ("extract", "extract_layers", "extract_layers_to_choose"))
    claim = (
        f"The default grid is {total} stages (`dvc stage list | wc -l`): `code`, `synthesize`, `dataset`, "
        f"{words.get(extractions, extractions)} extractions (the {words.get(extractions - 1)} backends and `none`; "
        f"musicnn's is `extract_layers@musicnn`, which also stores its layers), `split`, {counts['train']} train and "
        f"{counts['evaluate']} evaluate stages, `report`"
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


def _cluster_time():
    """benchmarks/cluster_time.py, loaded as tests/test_cluster_time.py loads it."""
    import sys

    spec = importlib.util.spec_from_file_location("cluster_time", REPO / "benchmarks" / "cluster_time.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("cluster_time", module)
    spec.loader.exec_module(module)
    return module


def test_the_cluster_figures_of_the_scale_page_are_cluster_times():
    """docs/scale.md, "On a cluster": the table is benchmarks/cluster_time.py's output for the
    committed estimate, row for row, and every figure of the prose below it is recomputed with
    the same code (the scheduler, the critical path, the total work)."""
    cluster = _cluster_time()
    study = cluster.load_study(STUDY_TIMES)
    assert cluster.DEFAULT_TIMES == STUDY_TIMES
    hours, needs = study.hours, study.needs
    section = (REPO / "docs" / "scale.md").read_text().split("\n### On a cluster\n", 1)[1]
    for nodes in (1, 8, 32):
        row = cluster.table_row(str(nodes), hours, needs, nodes, study.unmeasured)
        assert row in section, f"docs/scale.md, On a cluster, should have the row: {row}"
    assert ".venv/bin/python benchmarks/cluster_time.py --nodes 1 8 32" in section

    total = sum(hours.values())
    length, path = cluster.critical_path(hours, needs)
    wall = {nodes: cluster.list_schedule(hours, needs, nodes).wall for nodes in range(1, 33)}
    efficiency = {nodes: round(100 * total / (nodes * wall[nodes])) for nodes in wall}
    # the fewest nodes that reach the critical path, and what fits beside it
    enough = min(nodes for nodes in wall if wall[nodes] == pytest.approx(length))
    words = {2: "Two", 3: "Three", 4: "Four", 5: "Five"}
    long_stage = max(hours, key=hours.get)
    assert long_stage == "train@jukebox-bert4rec-0" and long_stage in path, (long_stage, path)
    assert round(wall[2]) == round(total / 2), (wall[2], total / 2)
    phrases = [
        f"Jukebox's BERT4Rec, {round(hours[long_stage])} h for its {study.header['max_epochs']['bert4rec']} epochs "
        "on 2 cores, is the critical path",
        f"no number of these nodes finishes the study in under {length / 24:.1f} days",
        f"{words[enough]} nodes already reach that bound ({efficiency[enough]}% efficient: "
        f"the other {round(total - length)} h fit on {words[enough - 1].lower()} nodes beside it)",
        f"{words[enough - 1].lower()} take {round(wall[enough - 1])} h, the work over two",
        f"idle ({efficiency[8]}% at 8, {efficiency[32]}% at 32)",
        f"adds to the {length / 24:.1f} days",
    ]
    text = " ".join(section.split())
    for phrase in phrases:
        assert phrase in text, f"docs/scale.md, On a cluster, should say (benchmarks/cluster_time.py): {phrase}"
    # "beyond three the added nodes idle": one more node than enough gains nothing
    assert wall[enough + 1] == pytest.approx(length) and wall[enough - 1] > length
    assert f"beyond {words[enough].lower()} the added nodes idle" in text
    # the page on running the cluster quotes none of these figures, so nothing there to keep in step
    cluster_page = prose(REPO / "docs" / "cluster.md")
    for figure in (f"{round(length)} h", f"{length / 24:.1f} days", f"{round(total)} h", f"{total / 24:.1f} days"):
        assert figure not in cluster_page, f"docs/cluster.md quotes {figure}: test it here, or link to docs/scale.md"


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


# --- the results the model and evaluation pages quote: the README's results block, to 3 decimals


def hitrate3(section: str, model: str, backend: str) -> str:
    """A run's HitRate (test @50 or cold @10) as the pages quote it: 3 decimals."""
    return f"{float(readme_hitrate(section, model, backend).split(' ± ')[0]):.3f}"


def test_the_results_quoted_on_the_models_and_evaluation_pages_are_the_readme_results():
    def h(model, backend, section="test"):
        return hitrate3(section, model, backend)

    models = prose(REPO / "docs" / "models.md")
    claims = {
        models: [
            f"Shallow beats KNN on musicnn (test HitRate@50 {h('shallow', 'musicnn')} vs {h('knn', 'musicnn')})",
            f"and on mfcc ({h('shallow', 'mfcc')} vs {h('knn', 'mfcc')})",
            f"(musicnn HitRate@10 {h('shallow', 'musicnn', 'cold')} vs {h('knn', 'musicnn', 'cold')})",
            f"its `random` backend stays below musicnn ({h('shallow', 'random')})",
            f"it is close to KNN ({h('shallow', 'oracle')} vs {h('knn', 'oracle')})",
            f"oracle {h('bert4rec', 'oracle')} and musicnn {h('bert4rec', 'musicnn')} test HitRate@50",
        ],
        prose(REPO / "docs" / "evaluation.md"): [
            f"give the layer more room to memorise ({h('shallow', 'random')})",
            f"train interactions ({h('ease', 'none')})",
            f'its "random" BERT4Rec): {h("bert4rec", "none")}, above MostPop\'s {h("mostpop", "none")}',
            f"`mfcc` (0.526) and above the `oracle` ({h('bert4rec', 'oracle')})",
            f"BERT4Rec the two are level ({h('bert4rec', 'musicnn', 'cold')} against 0.298 in the whole grid)",
            f"musicnn beats mfcc under KNN ({h('knn', 'musicnn', 'cold')} against {h('knn', 'mfcc', 'cold')}) "
            "and Shallow",
            f"({h('shallow', 'musicnn', 'cold')} against {h('shallow', 'mfcc', 'cold')})",
        ],
        prose(REPO / "docs" / "data.md"): [
            f"test HitRate@50, reported only: {h('shallow', 'random')} against {h('shallow', 'musicnn')})",
        ],
    }
    for text, phrases in claims.items():
        for phrase in phrases:
            assert phrase in text, f"the page should say, from the README's results: {phrase}"
    # the orderings the pages state in words
    assert float(h("shallow", "musicnn")) > float(h("knn", "musicnn"))
    assert float(h("shallow", "musicnn", "cold")) > float(h("knn", "musicnn", "cold"))
    # EASE, the collaborative reference, above every audio row on hot tracks (docs/models.md, evaluation.md)
    grid = [(m, b) for m in ("knn", "shallow", "bert4rec") for b in ("oracle", "musicnn", "mfcc", "random")]
    left_out = set(_params()["leave_out"])
    audio = [float(h(m, b)) for m, b in grid if f"{b}-{m}" not in left_out]
    assert float(h("ease", "none")) > max(audio)


def test_the_validation_figures_of_the_data_page_are_the_metrics():
    """docs/data.md's val NDCG@50 of Shallow on `random` and musicnn, each with its interval, as the
    metrics files hold them (DVC outputs: this runs where `make repro` reproduced or pulled them)."""
    import json

    files = {backend: REPO / "metrics" / backend / "shallow.seed0.json" for backend in ("random", "musicnn")}
    if not all(path.exists() for path in files.values()):
        pytest.skip("metrics/ not reproduced here (make repro)")
    val = {backend: json.loads(path.read_text())["val"]["ndcg@50"] for backend, path in files.items()}
    figures = {backend: f"{v['mean']:.4f} ± {v['ci95']:.4f}" for backend, v in val.items()}
    phrase = f"NDCG@50 is {figures['random']} on `random` against {figures['musicnn']} on musicnn"
    assert phrase in prose(REPO / "docs" / "data.md"), f"docs/data.md should say: {phrase}"


def test_early_stopping_as_the_models_page_describes_it():
    """The `oracle` and `musicnn` Shallow runs stop well before max_epochs, and `random` trains
    longest, to the last epoch (where metrics/train/ is reproduced)."""
    import json

    runs = sorted((REPO / "metrics" / "train").glob("*/shallow.seed0/metrics.json"))
    if not runs:
        pytest.skip("metrics/train/ not reproduced here (make repro)")
    epochs = {path.parent.parent.name: json.loads(path.read_text())["step"] + 1 for path in runs}
    max_epochs = _params()["shallow"]["max_epochs"]
    assert max(epochs["oracle"], epochs["musicnn"]) < max_epochs // 2, epochs
    assert epochs["random"] == max_epochs == max(epochs.values()), epochs
    assert "early stopping on the val loss ends the `oracle` and `musicnn` runs well before" in prose(
        REPO / "docs" / "models.md"
    )


# --- figures derived from a formula: recomputed from the code that uses it


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def test_the_ease_and_elsa_memory_figures_are_the_formulas():
    from audiorec.models.ease import required_bytes

    models = prose(REPO / "docs" / "models.md")
    full = 56_512
    for tracks, label in ((3_000, "3,000"), (24_214, "24,214"), (full, "56,512")):
        row = f"| {label} "
        line = next(line for line in (REPO / "docs" / "models.md").read_text().splitlines() if line.startswith(row))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[1:] == [gib(required_bytes(tracks)), gib(required_bytes(tracks, dtype="float64"))], line
    needed, matrix = gib(required_bytes(full)), gib(4 * full**2)
    assert f"a scoring batch: {needed} at peak for Music4All's 56,512 tracks" in models
    page = " ".join((REPO / "docs" / "models.md").read_text().split())  # the message is in a code block
    assert f"needs about {needed} (one dense 56512 x 56512 float32 matrix of {matrix}," in page
    assert f"the same n × n matrix on disk: {matrix} at 56,512 tracks in float32" in models
    assert f"beside EASE's {needed} requirement" in models
    double = required_bytes(2 * full)
    assert required_bytes(full) < 24 * 2**30 < double
    assert f"at twice the catalogue (4× the matrix: {gib(double)}) it would not" in models
    assert f"(56,512 × 768 float32 = {round(full * 768 * 4 / 2**20)} MiB of factors)" in models
    assert f"56,512 tracks take {(full / 24_214) ** 3:.1f}× the time of 24,214" in models
    # Shallow's bitmap of positive pairs: one bit per user × track cell, up to 2³² cells
    from audiorec.models.shallow import PositivePairs

    assert PositivePairs.DENSE_LIMIT // 8 == 512 * 2**20
    mib = f"{(2_000 * 3_000 // 8 + 1) / 2**20:.2f} MiB for the default 2,000 users × 3,000 tracks"
    music4all = f"{round((17_053 * full // 8 + 1) / 2**20)} MiB at Music4All's 17,053 × 56,512"
    assert mib in models and music4all in models, (mib, music4all)


# --- benchmark figures a page keeps: the dated run they come from, in CHANGELOG.md


def changelog_entry(title: str) -> str:
    """The text of the CHANGELOG.md entry whose `## date: title` heading contains `title`."""
    text = (REPO / "CHANGELOG.md").read_text()
    start = next(match.end() for match in re.finditer(r"^## .*$", text, re.M) if title in match.group(0))
    following = re.search(r"^## ", text[start:], re.M)
    return " ".join(text[start : start + following.start() if following else None].split())


def test_the_ease_benchmark_figures_kept_on_the_models_page_are_the_changelogs():
    entry = changelog_entry("EASE memory, ELSA at Music4All's shape")
    copies = float(
        re.search(r"`numpy\.linalg\.inv` \(old\) \| [\d,]+ \| [\d,]+ \| [\d.]+ s \| [\d.]+ GiB \| ([\d.]+)", entry)[1]
    )
    models = prose(REPO / "docs" / "models.md")
    words = {8: "eight", 9: "nine", 10: "ten"}
    assert f"about {words[round(copies)]} n × n matrices at its peak" in models, copies
    assert f"against the old path's {words[round(copies)]}" in models, copies
    assert "segmentation fault at 24,214 tracks" in entry
    assert "segmentation fault at one month of Music4All-Onion's tracks (24,214)" in models
    cholesky = re.findall(
        r"in-place Cholesky \(new\) \| ([\d,]+) \| [\d,]+ \| [\d.,]+ s \| ([\d.]+) GiB \| ([\d.]+)", entry
    )
    assert len(cholesky) == 3 and all(round(float(copies)) == 1 for *_, copies in cholesky), cholesky
    from audiorec.models.ease import required_bytes

    assert all(float(peak) * 2**30 < required_bytes(int(n.replace(",", ""))) for n, peak, _ in cholesky), cholesky
    assert "about one n × n matrix at its peak" in models


def test_the_seeds_section_keeps_the_method_and_its_changelog_entry_the_figures():
    """docs/workflows.md's Seeds section gives the method and the commands, no measured figure;
    the three-seed run it names is a CHANGELOG.md entry whose means and half-widths are those of
    its seed columns (to the table's rounding) and whose prose quotes its table."""
    from scipy.special import stdtrit

    workflows = (REPO / "docs" / "workflows.md").read_text()
    section = workflows.split("\n## Seeds: repeated runs\n", 1)[1].split("\n## ", 1)[0]
    text = " ".join(section.split())
    assert not re.search(r"\d\.\d|\d+ (?:minutes|min|s|h)\b", text), "dated figures belong in CHANGELOG.md"
    title = "Three seeds on the built-in dataset"
    assert f'`CHANGELOG.md` ("{title}")' in text
    entry = changelog_entry(title)
    command = "python -m stages.graph -S 'seeds=[0,1,2]' -S 'controls.models=[knn]' -S 'controls.unordered=[]'"
    assert command in entry and command in section

    rows = re.findall(r"\| ([^|]+?) \| ([^|]+?) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) ± ([\d.]+) \|", entry)
    assert len(rows) == 9, rows
    seeds = {}
    for model, backend, *values in rows:
        *runs, mean, half = (float(value) for value in values)
        n = len(runs)
        spread = (sum((run - sum(runs) / n) ** 2 for run in runs) / (n - 1)) ** 0.5
        assert float(mean) == pytest.approx(sum(runs) / n, abs=0.001), (model, backend, runs, mean)
        assert half == pytest.approx(spread / n**0.5 * stdtrit(n - 1, 0.975), abs=0.002), (model, backend, half)
        seeds[model, backend] = (runs, mean)
    shallow, bert = seeds["shallow", "musicnn"][0], seeds["bert4rec", "musicnn"][0]
    phrases = [
        f"Shallow's {shallow[0]:.3f} against BERT4Rec's {bert[0]:.3f} on musicnn",
        f"Shallow alone spanned {min(shallow):.3f}–{max(shallow):.3f} over three seeds",
        f"({seeds['bert4rec', 'musicnn'][1]:.3f} against {seeds['bert4rec (no audio)', '—'][1]:.3f}, p = 0.11)",
        f"**Shallow above BERT4Rec on oracle** ({seeds['shallow', 'oracle'][1]:.3f} against "
        f"{seeds['bert4rec', 'oracle'][1]:.3f})",
    ]
    for phrase in phrases:
        assert phrase in entry, f"CHANGELOG.md, {title}, should say, from its table: {phrase}"


# --- docs/scale.md's reading of its Measured table: every figure is the table's


def measured_table() -> dict[tuple[str, str], dict[str, str]]:
    """(stage, width) -> the row's cells, of the first table of docs/scale.md's "### Measured"."""
    section = (REPO / "docs" / "scale.md").read_text().split("\n### Measured\n", 1)[1]
    lines = section[section.index("| stage | width |") :].split("\n\n", 1)[0].splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split(" | ")]
    rows = [dict(zip(header, (cell.strip() for cell in line.strip("|").split(" | ")))) for line in lines[2:]]
    return {(row["stage"], row["width"]): row for row in rows}


def _number(cell: str) -> float:
    return float(cell.removesuffix(" (est.)").rstrip("×").replace(",", ""))


def _one(x: float, places: int = 1) -> str:
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(repr(x)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def test_the_scale_pages_reading_of_the_measured_table_is_the_table():
    table = measured_table()
    text = prose(REPO / "docs" / "scale.md")
    reading = text.split("#### What this means", 1)[1].split("#### A Shallow batch", 1)[0]

    def cell(stage, width, column):
        return table[stage, width][column]

    def ratio(stage, width):
        return cell(stage, width, "wall / floor")

    peaks = {key: _number(row["peak GiB"]) for key, row in table.items() if row["peak GiB"] != "—"}
    top = max(peaks, key=peaks.get)
    assert top == ("├ bert4rec (sampled_softmax) training epoch", "4800"), top
    b_epoch, s_epoch, sampled = (
        "├ bert4rec training epoch",
        "├ shallow training epoch",
        "├ bert4rec (sampled_softmax) training epoch",
    )
    phrases = [
        f"the largest peak is {_one(peaks[top])} GiB, a BERT4Rec epoch with `loss: sampled_softmax` at 4,800-d "
        f"({_one(peaks[b_epoch, '4800'])} GiB with the default softmax), and Shallow peaks at "
        f"{_one(peaks[s_epoch, '4800'])} GiB there",
        f"MostPop's train stage takes {cell('train mostpop', '—', 'wall s')} s",
    ]
    mostpop = re.search(
        r"dense score matrix ([\d.]+) s, sorted list ([\d.]+) s = (\d+)×", cell("train mostpop", "—", "note")
    )
    phrases.append(
        f"{mostpop[3]}× faster than a dense score matrix ({mostpop[2]} s against {mostpop[1]} s, identical lists)"
    )
    knn = [_number(ratio(stage, width)) for stage, width in table if stage == "└ validation retrieval, KNN vectors"]
    phrases.append(f"{min(knn)}–{max(knn)}× a bare matmul")
    phrases.append(
        f"A Shallow epoch is {ratio(s_epoch, '200')} its FLOP floor at 200-d "
        f"({_one(_number(cell(s_epoch, '200', 'wall s')))} s), "
        f"{ratio(s_epoch, '768')} at 768-d, {ratio(s_epoch, '1024')} at 1,024-d and {ratio(s_epoch, '4800')} at 4,800-d"
    )
    start, end = (
        float(x) for x in re.search(r"measured (\d+) GFLOP/s at the start of the run and (\d+) at the", text).groups()
    )
    at_end = _number(cell(s_epoch, "200", "wall s")) / (_number(cell(s_epoch, "200", "floor s")) * start / end)
    phrases.append(f"({_one(at_end)}× at the rate measured at the end of the run)")
    phrases.append(
        f"A BERT4Rec epoch is {ratio(b_epoch, '200')} its floor at 200-d "
        f"({round(_number(cell(b_epoch, '200', 'wall s')))} s), "
        f"{ratio(b_epoch, '768')} at 768-d, {ratio(b_epoch, '1024')} at 1,024-d and {ratio(b_epoch, '4800')} at 4,800-d"
    )
    tflop = {k: float(re.search(r"([\d,.]+) TFLOP", cell(k, "200", "note"))[1]) for k in (b_epoch, sampled)}
    phrases.append(f"an epoch does {round(100 * tflop[sampled] / tflop[b_epoch])}% of the FLOPs at 200-d")
    phrases.append(
        f"runs {ratio(sampled, '200')} its floor ({round(_number(cell(sampled, '200', 'wall s')))} s), "
        f"{ratio(sampled, '768')} at 768-d, {ratio(sampled, '1024')} at 1,024-d and {ratio(sampled, '4800')} at 4,800-d"
    )
    hours = {k: _one(_number(cell(k, "4800", "wall s")) / 3600) for k in (sampled, b_epoch)}
    phrases.append(f"a 4,800-d epoch takes {hours[sampled]} h instead of {hours[b_epoch]} h")
    shares = [int(m) for row in table.values() for m in re.findall(r"(\d+)% of the epoch", row["note"])]
    phrases.append(f"Validation inside training is {min(shares)}–{max(shares)}% of an epoch")
    for phrase in phrases:
        assert phrase in reading, f"docs/scale.md, What this means, should say: {phrase}"
    # the sampled softmax's peaks next to the softmax's, and the Shallow batch's floor
    pairs = [(peaks[sampled, w], peaks[b_epoch, w]) for w in ("200", "768", "1024", "4800")]
    assert max(abs(a - b) for a, b in pairs) < 0.45, pairs
    listed = ", ".join(f"{a:.2f} against {b:.2f}" for a, b in pairs)
    assert all(f"{a:.2f} against {b:.2f}" in text for a, b in pairs), listed
    # an epoch's batch count, from a row cut at --epoch-budget ("N of M batches")
    batches = next(
        int(m[1]) for w in ("768", "1024", "4800") if (m := re.search(r"of (\d+) batches", cell(s_epoch, w, "note")))
    )
    floor_ms = round(1000 * _number(cell(s_epoch, "200", "floor s")) / batches)
    assert f"At 200-d the FLOP floor is {floor_ms} ms a batch" in text, floor_ms
    assert f"({ratio(b_epoch, '200')} in the Measured table)" in text


def test_the_knn_layer_rows_of_the_backends_page_are_the_layer_table():
    """docs/backends.md's musicnn layer table, KNN rows: val NDCG@50 with its interval and test HitRate@50 as
    `metrics/tables/layers.csv` holds them (a DVC output: this runs where `make repro` reproduced it)."""
    import pandas as pd

    path = REPO / "metrics" / "tables" / "layers.csv"
    if not path.exists():
        pytest.skip("metrics/ not reproduced here (make repro)")
    table = pd.read_csv(path)
    page = (REPO / "docs" / "backends.md").read_text()
    for row in table[(table["model"] == "knn") & (table["layer"] != "mean over layers")].to_dict("records"):
        val = f"{row['val NDCG@50']:.4f} ± {row['val NDCG@50 ±']:.4f}"
        found = re.search(
            rf"^\| KNN \| (\*\*)?{row['layer']}\b[^|]*\| {re.escape(val)} \|[^|]*\| ([\d.]+) ±", page, re.M
        )
        assert found, f"docs/backends.md: KNN {row['layer']} should read val NDCG@50 {val}"
        assert found.group(2) == f"{row['test HitRate@50']:.4f}", (row["layer"], found.group(2))
