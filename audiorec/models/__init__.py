"""Recommenders on top of frozen item embeddings, registered by name with what each one is.

Classes are imported on first use (see audiorec.registry): only the train stage
should pay for importing torch. A new model is a module here and a line in KINDS.
"""
from __future__ import annotations

from dataclasses import dataclass

from audiorec import registry
from audiorec.models.base import Recommender


@dataclass(frozen=True)
class ModelKind:
    """What a model is, declared once: which params.yaml lists may name it (audiorec.config),
    and how many runs and which inputs each of its runs has (audiorec.workflow.grid)."""

    target: str  # "module:Class", imported on first use
    seeded: bool  # trains from a seed: one run per seed of params.yaml: seeds (else one run)
    audio: bool  # runs on a backend's embeddings (params.yaml: models)
    without_audio: bool  # runs as a reference point without audio (params.yaml: baselines)
    reads_elsa: bool = False  # also reads the item factors of ELSA's run of the same seed


KINDS: dict[str, ModelKind] = {
    "knn": ModelKind("audiorec.models.knn:KNNRecommender", seeded=False, audio=True, without_audio=False),
    "shallow": ModelKind("audiorec.models.shallow:ShallowRecommender", seeded=True, audio=True, without_audio=False),
    "mostpop": ModelKind("audiorec.models.mostpop:MostPopRecommender", seeded=False, audio=False, without_audio=True),
    "ease": ModelKind("audiorec.models.ease:EASERecommender", seeded=False, audio=False, without_audio=True),
    "elsa": ModelKind("audiorec.models.elsa:ELSARecommender", seeded=True, audio=False, without_audio=True),
    # On a learned item table without audio: what the original ran as its "random" BERT4Rec.
    "bert4rec": ModelKind("audiorec.models.bert4rec:BERT4RecRecommender", seeded=True, audio=True, without_audio=True),
    "bimodal": ModelKind("audiorec.models.bimodal:BimodalRecommender", seeded=True, audio=True, without_audio=False, reads_elsa=True),
    "hybrid": ModelKind("audiorec.models.hybrid:HybridRecommender", seeded=True, audio=True, without_audio=False),
}

# The same declarations, as the lists the rest of the library asks for.
MODELS: dict[str, str] = {name: kind.target for name, kind in KINDS.items()}
BASELINES = tuple(name for name, kind in KINDS.items() if kind.without_audio)
INTERACTIONS_ONLY = tuple(name for name, kind in KINDS.items() if not kind.audio)
ELSA_MODELS = tuple(name for name, kind in KINDS.items() if kind.reads_elsa)
DETERMINISTIC = tuple(name for name, kind in KINDS.items() if not kind.seeded)


def create(name: str, **params) -> Recommender:
    return registry.create(MODELS, name, "model", **params)
