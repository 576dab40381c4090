"""Model settings, backend sections and the synthetic generator's configuration for the tests: the
committed params.yaml's section (the demo values), with overrides.

A model takes its validated section (audiorec/settings/); params.yaml is the one place its
values are written, so the tests start from there rather than from defaults of their own.
"""

from pathlib import Path
from typing import Any

import yaml

from audiorec import models
from audiorec.data.synthetic import SyntheticConfig

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def demo(name: str, **overrides: Any) -> Any:
    """Model `name`'s params.yaml section with `overrides`, validated by its settings class."""
    params = {**yaml.safe_load(PARAMS.read_text()), "model_settings": "demo"}
    return models.settings(params, name, **overrides)


def section(name: str, **overrides: Any) -> dict:
    """Backend `name`'s params.yaml section with `overrides`: the keyword arguments
    `backends.create` takes (it checks them with the backend's settings class)."""
    return {**yaml.safe_load(PARAMS.read_text())[name], **overrides}


def synthetic_config(**overrides: Any) -> SyntheticConfig:
    """The tiny synthetic dataset's generator configuration (params.yaml `synthetic.tiny`) with `overrides`."""
    return SyntheticConfig(**{**yaml.safe_load(PARAMS.read_text())["synthetic"]["tiny"], **overrides})


def default_params() -> dict:
    """The committed params.yaml, whole."""
    return yaml.safe_load(PARAMS.read_text())
