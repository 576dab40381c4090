"""Reading params.yaml in a stage: the values as written, no checks.

The `code` stage, first in dvc.yaml, checks every section (audiorec.config.validate) before
any other stage runs. A stage reads params.yaml through this module rather than the checks,
so that the code it runs, and so re-runs on, is its own and not every backend's and model's
validation (audiorec.workflow.closure).
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml


def read_params(path: str | Path = "params.yaml") -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle)


def model_params(params: dict, model: str) -> dict:
    """The settings `model` runs with: its params.yaml section, and with `model_settings:
    study` the original code's values for the split protocol in use (params.yaml `study`)."""
    settings = dict(params[model])
    if params["model_settings"] == "study":
        settings.update(params["study"][params["split"]["protocol"]].get(model) or {})
    return settings


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
