"""Recommenders on top of frozen item embeddings, registered by name."""
from __future__ import annotations

from audiorec.models.base import Recommender
from audiorec.models.knn import KNNRecommender
from audiorec.models.shallow import ShallowRecommender

MODELS: dict[str, type[Recommender]] = {"knn": KNNRecommender, "shallow": ShallowRecommender}


def create(name: str, **params) -> Recommender:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r} (params.yaml: models); registered models: {', '.join(sorted(MODELS))}")
    return MODELS[name](**params)
