"""Recommenders on top of frozen item embeddings, registered by name with what each one is.

Classes are imported on first use (see audiorec.registry): only the train stage
should pay for importing torch. A new model is a module here, its settings class in
audiorec/settings/, and a line in KINDS (docs/add-a-model.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audiorec import registry
from audiorec.models.base import Recommender
from audiorec.params import model_params
from audiorec.settings.base import check


@dataclass(frozen=True)
class ModelKind:
    """What a model is, declared once: which params.yaml lists may name it (audiorec.config),
    and how many runs and which inputs each of its runs has (audiorec.workflow.grid)."""

    target: str  # "module:Class", imported on first use
    settings: str  # "module:Class" of its params.yaml section (audiorec/settings/), a light import
    seeded: bool  # trains from a seed: one run per seed of params.yaml: seeds (else one run)
    audio: bool  # runs on a backend's embeddings (params.yaml: models)
    without_audio: bool  # runs as a reference point without audio (params.yaml: baselines)
    reads_elsa: bool = False  # also reads the item factors of ELSA's run of the same seed
    study: bool = (
        True  # the original code ran it: its params.yaml study.<protocol> entries hold its values (else empty)
    )


KINDS: dict[str, ModelKind] = {
    "knn": ModelKind(
        "audiorec.models.knn:KNNRecommender",
        "audiorec.settings.knn:KNNSettings",
        seeded=False,
        audio=True,
        without_audio=False,
    ),
    "shallow": ModelKind(
        "audiorec.models.shallow:ShallowRecommender",
        "audiorec.settings.shallow:ShallowSettings",
        seeded=True,
        audio=True,
        without_audio=False,
    ),
    "mostpop": ModelKind(
        "audiorec.models.mostpop:MostPopRecommender",
        "audiorec.settings.mostpop:MostPopSettings",
        seeded=False,
        audio=False,
        without_audio=True,
    ),
    "ease": ModelKind(
        "audiorec.models.ease:EASERecommender",
        "audiorec.settings.ease:EASESettings",
        seeded=False,
        audio=False,
        without_audio=True,
    ),
    "elsa": ModelKind(
        "audiorec.models.elsa:ELSARecommender",
        "audiorec.settings.elsa:ELSASettings",
        seeded=True,
        audio=False,
        without_audio=True,
    ),
    # On a learned item table without audio: what the original ran as its "random" BERT4Rec.
    "bert4rec": ModelKind(
        "audiorec.models.bert4rec:BERT4RecRecommender",
        "audiorec.settings.bert4rec:BERT4RecSettings",
        seeded=True,
        audio=True,
        without_audio=True,
    ),
    "bimodal": ModelKind(
        "audiorec.models.bimodal:BimodalRecommender",
        "audiorec.settings.bimodal:BimodalSettings",
        seeded=True,
        audio=True,
        without_audio=False,
        reads_elsa=True,
    ),
    "hybrid": ModelKind(
        "audiorec.models.hybrid:HybridRecommender",
        "audiorec.settings.hybrid:HybridSettings",
        seeded=True,
        audio=True,
        without_audio=False,
    ),
}

# The same declarations, as the lists the rest of the library asks for.
MODELS: dict[str, str] = {name: kind.target for name, kind in KINDS.items()}
BASELINES = tuple(name for name, kind in KINDS.items() if kind.without_audio)
INTERACTIONS_ONLY = tuple(name for name, kind in KINDS.items() if not kind.audio)
ELSA_MODELS = tuple(name for name, kind in KINDS.items() if kind.reads_elsa)
DETERMINISTIC = tuple(name for name, kind in KINDS.items() if not kind.seeded)


def settings_class(name: str) -> Any:
    """The class of model `name`'s params.yaml section (imports no model code)."""
    return registry.load(KINDS[name].settings)


def settings(params: dict, name: str, **overrides: Any) -> Any:
    """Model `name`'s settings as params.yaml `params` gives them (its section, with
    `model_settings: study` the original code's values over it), with `overrides`, checked."""
    return check(settings_class(name), {**model_params(params, name), **overrides}, name)


def create(name: str, settings: Any, **inputs: Any) -> Recommender:
    """Model `name` with its validated `settings`; `inputs` are the run's own: seed,
    checkpoint_dir, and what the model reads besides the embeddings (ELSA's item factors)."""
    return registry.create(MODELS, name, "model", settings, **inputs)
