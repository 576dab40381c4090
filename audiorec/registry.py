"""Name -> class registries whose classes are imported on first use.

Every stage validates the names in params.yaml; importing every backend and
model eagerly would load librosa, TensorFlow and torch in stages that need none.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any


def create(registry: dict[str, str], name: str, kind: str, *args, **params):
    """Build `registry[name]` ("module:Class") with `args` and `params`; an unknown name lists the
    registered ones and the params.yaml list it came from (`<kind>s`)."""
    if name not in registry:
        raise KeyError(
            f"unknown {kind} {name!r} (params.yaml: {kind}s); registered {kind}s: {', '.join(sorted(registry))}"
        )
    return load(registry[name])(*args, **params)


def load(target: str) -> Any:
    """The object `target` ("module:Name") names, its module imported now."""
    module, name = target.split(":")
    return getattr(import_module(module), name)
