"""The README and the documentation site: what must stay true of them without building the site
(CI builds it with `make docs`, `mkdocs build --strict`, in .ci/run)."""
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"


def _readme_results():
    spec = importlib.util.spec_from_file_location("readme_results", REPO / "scripts" / "readme_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_results_are_the_reports_table_exactly():
    results = (REPO / "metrics" / "tables" / "results.md").read_text()
    assert _readme_results().between_markers(README.read_text()) == results, (
        "README.md's results differ from metrics/tables/results.md: run `make readme` and commit README.md")


def test_copying_the_results_replaces_only_the_text_between_the_markers():
    module = _readme_results()
    readme = f"# Title\n\nbefore\n\n{module.START}\nold table\nold line\n\n{module.END}\n\nafter\n"
    updated = module.with_results(readme, "new table\n")
    assert updated == f"# Title\n\nbefore\n\n{module.START}\nnew table\n\n{module.END}\n\nafter\n"
    assert module.between_markers(updated) == "new table\n"
    assert module.with_results(updated, "new table\n") == updated
