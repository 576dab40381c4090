"""Which repository files a stage runs: the import closure of its modules, read with `ast`.

A stage `python -m stages.X` runs `stages/X.py`, every repository module it imports (at module
level or inside a function, transitively) and the `__init__.py` of every package on the way.
Imports under `if TYPE_CHECKING:` never run and are left out. Modules a registry imports by
name (`audiorec.registry`: a model or backend chosen by params.yaml) are invisible to `ast`:
the caller names them as entry modules (audiorec.workflow.graph does, per model and backend).
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import audiorec

REPO = Path(audiorec.__file__).resolve().parents[1]
# The repository's own packages: everything else imported is a third-party library.
PACKAGES = ("audiorec", "stages")


@lru_cache(maxsize=4)
def module_paths(root: Path = REPO) -> dict[str, str]:
    """Module name -> its file, relative to `root` (a package's name -> its __init__.py)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path.relative_to(root).as_posix()
    return found


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_nodes(nodes: Iterable[ast.AST]) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement among `nodes` and below them that can run: all of them but those
    under `if TYPE_CHECKING:` (its `else:` runs)."""
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and is_type_checking(node.test):
            yield from import_nodes(node.orelse)
        else:
            yield from import_nodes(ast.iter_child_nodes(node))


def absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a `from ... import` names (relative imports resolved against `module`)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(module: str, known: dict[str, str], root: Path = REPO) -> set[str]:
    """The repository modules `module` imports directly, with the packages each name passes through."""
    path = known[module]
    tree = ast.parse((root / path).read_text(), filename=path)
    targets: set[str] = set()
    for node in import_nodes([tree]):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        else:
            source = absolute(node, module, path.endswith("__init__.py"))
            targets.add(source)
            # `from audiorec import paths` imports the module audiorec.paths.
            targets.update(f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in known)
    return {parent for target in targets for parent in with_parents(target) if parent in known}


def with_parents(module: str) -> list[str]:
    """`a.b.c` -> [a, a.b, a.b.c]: importing a module runs each package above it first."""
    parts = module.split(".")
    return [".".join(parts[: end + 1]) for end in range(len(parts))]


def closure(entries: Iterable[str], root: Path = REPO) -> list[str]:
    """The files (relative paths, sorted) that running the modules `entries` executes."""
    known = module_paths(root)
    missing = [entry for entry in entries if entry not in known]
    if missing:
        raise KeyError(f"no module {', '.join(missing)} under {', '.join(PACKAGES)}/ of {root}")
    seen: set[str] = set()
    todo = [parent for entry in entries for parent in with_parents(entry) if parent in known]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(imported_modules(module, known, root) - seen)
    return sorted({known[module] for module in seen})
