"""Backends from other packages: classes declared in the `audiorec.backends` entry-point group.

A package registers a backend in its pyproject.toml:

    [project.entry-points."audiorec.backends"]
    my_model = "my_package.backend:MyModelBackend"

Once it is installed, `my_model` works like a built-in name: in params.yaml `backends`, with
a section `my_model:` holding the class's keyword arguments plus `version`, the package's
version. DVC cannot see code outside the repository, so that pin is what tells it the model
changed: a pin that differs from the installed version is refused, and setting the new one
re-runs exactly that backend's stages. docs/backends.md has a complete example.
"""

from __future__ import annotations

from importlib.metadata import Distribution, EntryPoint, entry_points

from audiorec.backends.base import Backend

GROUP = "audiorec.backends"


def discovered() -> dict[str, list[EntryPoint]]:
    """Every backend name installed packages declare, with the entry points declaring it."""
    found: dict[str, list[EntryPoint]] = {}
    for entry_point in entry_points(group=GROUP):
        found.setdefault(entry_point.name, []).append(entry_point)
    return found


def distribution(point: EntryPoint) -> Distribution:
    """The installed package declaring `point`: entry_points() reads every point from one, so it is set."""
    assert point.dist is not None, point
    return point.dist


def entry_point(name: str) -> EntryPoint:
    """The one entry point declaring `name`; two packages declaring it are refused."""
    declared = discovered().get(name, [])
    if not declared:
        raise KeyError(f"no installed package declares the backend {name!r} (entry-point group {GROUP})")
    if len(declared) > 1:
        owners = ", ".join(f"{distribution(point).name} ({point.value})" for point in declared)
        raise ValueError(f"backend {name!r} is declared by several installed packages: {owners}; uninstall all but one")
    return declared[0]


def check_version(name: str, version: object) -> None:
    """Refuse a missing pin or one that is not the installed version, with the line to write."""
    package = distribution(entry_point(name))
    installed = package.version
    if version is None:
        raise ValueError(
            f"{name}.version is missing: a plugin backend pins its package's version, so that DVC re-extracts "
            f"when it changes; add `version: '{installed}'` (installed: {package.name} {installed})"
        )
    if str(version) != installed:
        raise ValueError(
            f"{name}.version={version!r} but {package.name} {installed} is installed; set {name}.version: "
            f"'{installed}' (DVC then re-runs {name}'s stages), or install {package.name}=={version}"
        )


def create(name: str, version: object = None, **params) -> Backend:
    """The plugin's backend built from its params.yaml section (`version` is the pin, not an argument)."""
    check_version(name, version)
    point = entry_point(name)
    cls = point.load()
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(
            f"entry point {name} = {point.value} ({distribution(point).name}) "
            "is not a subclass of audiorec.backends.Backend"
        )
    backend = cls(**params)
    backend.name = name  # messages and metrics name the backend as params.yaml does
    return backend
