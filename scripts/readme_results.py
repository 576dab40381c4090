"""Copy the report's results table into README.md, between its two markers.

The report stage writes metrics/results.md. The README shows the same text between
`<!-- results:start -->` and `<!-- results:end -->`, one blank line from each marker:

    python scripts/readme_results.py           # rewrite the README's copy (make readme)
    python scripts/readme_results.py --check   # exit 1 when the copy differs from results.md

Nothing outside the markers changes. tests/test_docs.py checks that the committed copy is exact.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
RESULTS = REPO / "metrics" / "results.md"
START = "<!-- results:start -->"
END = "<!-- results:end -->"


def _bounds(readme: str) -> tuple[int, int]:
    """Where the text between the markers begins and ends (after START, before END)."""
    if readme.count(START) != 1 or readme.count(END) != 1:
        raise ValueError(f"README.md must hold each of {START} and {END} exactly once")
    begin, end = readme.index(START) + len(START), readme.index(END)
    if begin > end:
        raise ValueError(f"README.md: {END} comes before {START}")
    return begin, end


def between_markers(readme: str) -> str:
    """The README's copy of the results: the text between the markers, less the line break
    after START and the blank line before END."""
    begin, end = _bounds(readme)
    inner = readme[begin:end]
    if inner.startswith("\n"):
        inner = inner[1:]
    if inner.endswith("\n\n"):
        inner = inner[:-1]
    return inner


def with_results(readme: str, results: str) -> str:
    """The README with the text between the markers replaced by `results`."""
    begin, end = _bounds(readme)
    if not results.endswith("\n"):
        results += "\n"
    return readme[:begin] + "\n" + results + "\n" + readme[end:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when the README's copy differs")
    args = parser.parse_args()
    if not RESULTS.exists():
        print(
            f"{RESULTS.relative_to(REPO)} does not exist: run `make repro` (or `dvc repro report`) first",
            file=sys.stderr,
        )
        return 1
    readme, results = README.read_text(), RESULTS.read_text()
    updated = with_results(readme, results)
    if args.check:
        if updated != readme:
            print(
                "README.md: the results between the markers differ from metrics/results.md; "
                "run `make readme` and commit README.md",
                file=sys.stderr,
            )
            return 1
        print("README.md: the results match metrics/results.md")
        return 0
    if updated == readme:
        print("README.md: the results were already up to date")
    else:
        README.write_text(updated)
        print("README.md: results copied from metrics/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
