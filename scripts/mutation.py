"""Mutation testing of the core library with mutmut (`make mutation`; docs/testing.md).

mutmut plants small changes ("mutants") in the core modules one at a time and runs the fast
unit tests that reach the changed function; a mutant the tests do not notice "survives".
This script runs mutmut in a scratch copy (build/mutation/<name>/, so the checkout is never
touched), narrowed to `--modules` (default: the core modules, [tool.mutmut] only_mutate in
pyproject.toml) and to `--tests` (default: its pytest_add_cli_args_test_selection, the fast
unit test files only),
then prints the score per module and the surviving mutants as diffs. Mutants listed in
scripts/mutation_equivalent.toml (no observable change, with the reason) are reported apart.

    python scripts/mutation.py --modules audiorec/metrics.py --tests tests/test_metrics.py
    python scripts/mutation.py --report-only --workdir build/mutation/core
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = ROOT / "scripts/mutation_equivalent.toml"
# mutmut's exit codes of a mutant's test run (mutmut.__main__.status_by_exit_code).
KILLED, SURVIVED, NO_TESTS, TIMEOUT = {1, 3, 37}, {0}, {5, 33}, {24, 36, 152, 255, -24}
COPIED = ["audiorec", "tests", "params.yaml", "pyproject.toml"]


def settings() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]


def core_modules(config: dict) -> list[str]:
    """The modules mutated by default: every .py under source_paths matching only_mutate and not do_not_mutate."""
    found = []
    for top in config["source_paths"]:
        for path in sorted((ROOT / top).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if any(fnmatch.fnmatch(name, p) for p in config["only_mutate"]) and not any(
                fnmatch.fnmatch(name, p) for p in config.get("do_not_mutate", [])
            ):
                found.append(name)
    return found


def prepare(workdir: Path, modules: list[str], tests: list[str], config: dict, tests_from: str | None = None) -> None:
    """A fresh copy of the code and tests whose mutmut config mutates `modules` only, checked by `tests`
    (as committed at git revision `tests_from`, if given: to score an older suite on today's code)."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "reference"))
        else:
            shutil.copy(source, workdir / name)
    if (ROOT / "tests/reference").exists():  # data some tests read
        shutil.copytree(ROOT / "tests/reference", workdir / "tests/reference")
    if tests_from:
        shutil.rmtree(workdir / "tests")
        archive = subprocess.run(
            ["git", "archive", tests_from, "tests"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive, check=True)
    # The copy's [tool.mutmut] mutates `modules` only and runs `tests` only.
    section = {**config, "only_mutate": modules, "do_not_mutate": [], "pytest_add_cli_args_test_selection": tests}
    toml = "".join(f"{key} = {json.dumps(value)}\n" for key, value in section.items())
    text = (workdir / "pyproject.toml").read_text()
    text = re.sub(r"\n\[tool\.mutmut\]\n.*?(?=\n\[|\Z)", "\n", text, flags=re.S)
    (workdir / "pyproject.toml").write_text(text + "\n[tool.mutmut]\n" + toml)


def run_mutmut(workdir: Path, max_children: int) -> int:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TF_USE_LEGACY_KERAS": "1",
        "TF_ENABLE_ONEDNN_OPTS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # One thread per mutant's test run: mutmut already runs `max_children` of them at once.
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        # mutmut forks a child per mutant; tqdm's lock and monitor thread then deadlock some children
        # (the epoch loop's progress bar), which mutmut would count as timeouts after a long wait.
        "TQDM_DISABLE": "1",
    }
    mutmut = Path(sys.executable).parent / "mutmut"
    return subprocess.run([str(mutmut), "run", "--max-children", str(max_children)], cwd=workdir, env=env).returncode


def status(code: int | None) -> str:
    if code in KILLED:
        return "killed"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    if code in TIMEOUT:
        return "timeout"
    return "not checked" if code is None else f"exit {code}"


def results(workdir: Path) -> dict[str, dict[str, str]]:
    """{module path: {mutant name: status}} from mutmut's .meta files."""
    found = {}
    for meta in sorted((workdir / "mutants").rglob("*.py.meta")):
        module = meta.relative_to(workdir / "mutants").as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if codes:
            found[module] = {name: status(code) for name, code in sorted(codes.items())}
    return found


def diff(workdir: Path, module: str, mutant: str) -> str:
    """The mutant's changed lines, by mutmut's own diff of the function (read in the copy)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # imports mutmut's config from the cwd

    here = Path.cwd()
    os.chdir(workdir)
    try:
        shown = get_diff_for_mutant(mutant, path=module)
    except Exception as error:  # noqa: BLE001 - a report line, not a failure
        shown = f"+(no diff: {error})"
    finally:
        os.chdir(here)
    changed = [line for line in shown.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return "\n".join(f"      {line.strip()[:150]}" for line in changed)


def report(workdir: Path, show_diffs: bool = True, only: str | None = None) -> dict:
    equivalent = tomllib.loads(EQUIVALENT.read_text()) if EQUIVALENT.exists() else {}
    table, survivors = [], []
    for module, mutants in results(workdir).items():
        if only and only not in module:
            continue
        counts = Counter(mutants.values())
        reasons = equivalent.get(module, {})
        equal = [name for name, state in mutants.items() if state != "killed" and name.split(".")[-1] in reasons]
        caught = counts["killed"] + counts["timeout"]
        total = len(mutants)
        table.append(
            {
                "module": module,
                "mutants": total,
                "killed": counts["killed"],
                "timeout": counts["timeout"],
                "survived": counts["survived"],
                "no_tests": counts["no tests"],
                "not_checked": counts["not checked"],
                "equivalent": len(equal),
                "score": caught / total if total else float("nan"),
                "score_without_equivalent": caught / (total - len(equal)) if total > len(equal) else float("nan"),
            }
        )
        for name, state in mutants.items():
            if state not in ("killed", "timeout", "not checked"):
                survivors.append((module, name, state, reasons.get(name.split(".")[-1])))
    print(f"\nMutation score per module ({date.today()}, mutmut, fast unit tests only)\n")
    print(
        f"{'module':40} {'mutants':>8} {'killed':>7} {'timeout':>8} {'survived':>9} "
        f"{'no tests':>9} {'unrun':>6} {'equiv.':>7} {'score':>7} {'w/o eq.':>8}"
    )
    for row in table:
        print(
            f"{row['module']:40} {row['mutants']:8d} {row['killed']:7d} {row['timeout']:8d} {row['survived']:9d} "
            f"{row['no_tests']:9d} {row['not_checked']:6d} {row['equivalent']:7d} "
            f"{row['score']:7.1%} {row['score_without_equivalent']:8.1%}"
        )
    total = sum(row["mutants"] for row in table)
    caught = sum(row["killed"] + row["timeout"] for row in table)
    equal = sum(row["equivalent"] for row in table)
    if total:
        print(f"{'all':40} {total:8d} {'':>53} {caught / total:7.1%} {caught / max(total - equal, 1):8.1%}")
    print("\nMutants not killed" + (" (equivalent ones with their reason)" if equal else "") + ":\n")
    for module, name, state, reason in survivors:
        print(f"  {name} [{state}]" + (f"  EQUIVALENT: {reason}" if reason else ""))
        if show_diffs and not reason:
            print(diff(workdir, module, name))
    summary = {"date": str(date.today()), "modules": table, "survivors": [list(s) for s in survivors]}
    (workdir / "report.json").write_text(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    config = settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--modules", nargs="*", help="source files to mutate (default: the core modules of [tool.mutmut])"
    )
    parser.add_argument(
        "--tests",
        nargs="*",
        help="test files to run (default: [tool.mutmut] pytest_add_cli_args_test_selection, the fast ones)",
    )
    parser.add_argument(
        "--tests-from", metavar="REV", help="run the tests as committed at git revision REV (a before score)"
    )
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--workdir", type=Path, help="scratch copy (default build/mutation/<modules>)")
    parser.add_argument(
        "--report-only", action="store_true", help="only print the report of an earlier run in --workdir"
    )
    parser.add_argument("--no-diffs", action="store_true", help="list surviving mutants without their diffs")
    parser.add_argument("--only", help="report only the modules whose path contains this text")
    args = parser.parse_args()
    modules = args.modules or core_modules(config)
    unknown = [m for m in modules if not (ROOT / m).is_file()]
    if unknown:
        parser.error(f"no such module: {', '.join(unknown)}")
    slug = ("core" if not args.modules else "+".join(Path(m).stem for m in modules)) + (
        f"@{args.tests_from}" if args.tests_from else ""
    )
    workdir = (args.workdir or ROOT / "build/mutation" / slug).resolve()
    if not args.report_only:
        prepare(workdir, modules, args.tests or config["pytest_add_cli_args_test_selection"], config, args.tests_from)
        print(f"mutating {len(modules)} modules in {workdir}: {', '.join(modules)}", flush=True)
        run_mutmut(workdir, args.max_children)
    report(workdir, show_diffs=not args.no_diffs, only=args.only)


if __name__ == "__main__":
    main()
