"""The library's layout shows the pipeline: no import cycle, and no room imports a room later
in the pipeline than itself (docs/layout.md). Imports are read from the source with `ast`,
function-level ones included, so a lazy import cannot hide a cycle."""

import ast
from pathlib import Path

import networkx as nx

LIBRARY = Path(__file__).resolve().parents[1] / "audiorec"

# Each room may import its own modules and those of earlier layers, never a later one.
LAYERS = [
    {
        "paths",
        "params",
        "io",
        "registry",
        "audio",
        "retrieval",
        "metrics",
        "settings",
    },  # foundations, the shared math, the params schema
    {"data", "controls"},
    {"backends"},
    {"models"},
    {"evaluation"},
    {"config"},  # the params gate: checks params.yaml against every room's registry
    {"workflow"},  # DVC tooling around the pipeline: compare, lock check, sweeps, scratch copies
]


def module_names() -> dict[str, Path]:
    names = {}
    for path in LIBRARY.rglob("*.py"):
        parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def import_graph() -> nx.DiGraph:
    modules = module_names()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from audiorec import paths` imports the module audiorec.paths, not the package.
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                ]
            else:
                continue
            graph.add_edges_from((name, target) for target in targets if target in modules and target != name)
    return graph


def room(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def layer(module: str) -> int:
    matches = [index for index, rooms in enumerate(LAYERS) if room(module) in rooms]
    assert matches, f"{module}: room {room(module)!r} has no layer in tests/test_layout.py; add it where it belongs"
    return matches[0]


def test_the_graph_sees_lazy_and_package_imports():
    graph = import_graph()
    assert graph.has_edge("audiorec.config", "audiorec.models")  # imported inside validate()
    assert graph.has_edge("audiorec.evaluation.report", "audiorec.paths")  # `from audiorec import paths`
    assert not graph.has_edge("audiorec.evaluation.report", "audiorec")


def test_no_import_cycle():
    cycles = list(nx.simple_cycles(import_graph()))
    assert cycles == [], " ; ".join(" -> ".join(cycle + cycle[:1]) for cycle in cycles)


def test_no_room_imports_a_later_room():
    graph = import_graph()
    # The package itself (`import audiorec` for its path) holds no code and belongs to no room.
    graph.remove_node("audiorec")
    backwards = [f"{a} -> {b}" for a, b in graph.edges if layer(a) < layer(b)]
    assert backwards == [], backwards


def test_the_old_cycle_would_be_found():
    """config -> backends -> engine -> config, the cycle this layout removed, is one simple_cycles reports."""
    graph = import_graph()
    graph.add_edge("audiorec.backends.engine", "audiorec.config")
    assert any({"audiorec.config", "audiorec.backends.engine"} <= set(cycle) for cycle in nx.simple_cycles(graph))
