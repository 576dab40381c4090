"""constraints.txt is what this environment runs: every pinned library is installed at its pin,
and scripts/install.sh installs with it."""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def pins() -> dict[str, str]:
    found = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            assert pinned, f"constraints.txt: {line!r} is not an exact pin (name==version)"
            found[name] = pinned
    return found


def test_every_pin_is_the_installed_version():
    wrong = {}
    for name, pinned in pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed != pinned:
            wrong[name] = (pinned, installed)
    assert not wrong, f"constraints.txt vs installed (pin, installed): {wrong}; run `make install`"


def test_the_libraries_the_results_depend_on_are_pinned():
    assert {"rs-metrics", "elsarec", "transformers", "numpy", "scipy", "scikit-learn", "pandas"} <= set(pins())


def test_install_uses_the_constraints():
    assert "-c constraints.txt" in (REPO / "scripts/install.sh").read_text()
