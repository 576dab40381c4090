"""What each backend's extraction depends on beyond the shared code: data/sources/<name>.json.

dvc.yaml's `extract` stage runs for every name in params.yaml `backends`, and a foreach stage
can only put the name into its paths, while the three kinds of backend depend on different
files: a module in audiorec/backends/, a package installed elsewhere, a data file in
data/precomputed/<name>/. The `sources` stage writes one small JSON per backend with the
hashes of those files, and extract@<name> depends on that JSON: it changes, and so re-runs
extract@<name>, exactly when that backend's own inputs change (docs/backends.md).
"""

from __future__ import annotations

import hashlib
from importlib.util import find_spec
from pathlib import Path

import audiorec
from audiorec import paths
from audiorec.backends import BUILT_IN, PLUGIN, REGISTRY, kind, plugins

REPO = Path(audiorec.__file__).resolve().parents[1]
PRECOMPUTED_CODE = "audiorec.backends.precomputed"
PLUGIN_CODE = "audiorec.backends.plugins"


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def module_file(module: str) -> Path:
    """A module of audiorec, as a path relative to the repository (the same on every machine)."""
    spec = find_spec(module)
    assert spec is not None and spec.origin is not None, module  # a module of this package, a file on disk
    return Path(spec.origin).resolve().relative_to(REPO)


def hashes(files: list[Path]) -> dict[str, str]:
    return {path.as_posix(): md5(path if path.is_absolute() else REPO / path) for path in sorted(files)}


def fingerprint(name: str) -> dict:
    """The backend's own inputs: its module (built in), its package and pin (plugin: the pin is
    in its params section, which extract@<name> lists), or its files (precomputed)."""
    found = kind(name)
    if found == BUILT_IN:
        module = REGISTRY[name].split(":")[0]
        return {"kind": BUILT_IN, "class": REGISTRY[name], "files": hashes([module_file(module)])}
    if found == PLUGIN:
        point = plugins.entry_point(name)
        return {
            "kind": PLUGIN,
            "entry_point": point.value,
            "distribution": plugins.distribution(point).name,
            "files": hashes([module_file(PLUGIN_CODE)]),
        }
    folder = paths.precomputed(name)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"backend {name!r} is neither built in nor an installed plugin, and {folder}/ does not exist: "
            "put a precomputed backend's file(s) there (docs/backends.md)"
        )
    data = {path.as_posix(): md5(path) for path in sorted(folder.rglob("*")) if path.is_file()}
    return {"kind": "precomputed", "files": {**hashes([module_file(PRECOMPUTED_CODE)]), **data}}
