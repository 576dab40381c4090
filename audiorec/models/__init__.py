"""Recommenders on top of frozen item embeddings, registered by name.

Classes are imported on first use: every stage validates model names, and only
the train stage should pay for importing torch.
"""
from __future__ import annotations

from importlib import import_module

from audiorec.models.base import Recommender

MODELS: dict[str, str] = {
    "knn": "audiorec.models.knn:KNNRecommender",
    "shallow": "audiorec.models.shallow:ShallowRecommender",
}


def create(name: str, **params) -> Recommender:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r} (params.yaml: models); registered models: {', '.join(sorted(MODELS))}")
    module, cls = MODELS[name].split(":")
    return getattr(import_module(module), cls)(**params)
