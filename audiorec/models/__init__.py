"""Recommenders on top of frozen item embeddings, registered by name.

Classes are imported on first use (see audiorec.registry): only the train stage
should pay for importing torch.
"""
from __future__ import annotations

from audiorec import registry
from audiorec.models.base import Recommender

MODELS: dict[str, str] = {
    "knn": "audiorec.models.knn:KNNRecommender",
    "shallow": "audiorec.models.shallow:ShallowRecommender",
    "bert4rec": "audiorec.models.bert4rec:BERT4RecRecommender",
    "mostpop": "audiorec.models.mostpop:MostPopRecommender",
    "ease": "audiorec.models.ease:EASERecommender",
    "elsa": "audiorec.models.elsa:ELSARecommender",
    "bimodal": "audiorec.models.bimodal:BimodalRecommender",
    "hybrid": "audiorec.models.hybrid:HybridRecommender",
}
# Models that can run without audio, once, as reference points (params.yaml: baselines): the
# interactions-only ones, and BERT4Rec on a learned item table (what the original ran as its
# "random" BERT4Rec), the same sequential model without audio.
BASELINES = ("mostpop", "ease", "elsa", "bert4rec")
# Models that use no audio at all: they cannot run per backend (params.yaml: models).
INTERACTIONS_ONLY = ("mostpop", "ease", "elsa")
# Audio models that also read ELSA's item factors (train@none-elsa-<seed>'s output): their
# runs depend on that output (dvc.yaml's train_with_elsa family), so elsa must be a baseline.
ELSA_MODELS = ("bimodal",)
# Models without randomness: the same inputs give the same lists, so they run once whatever
# params.yaml: seeds says (audiorec.workflow.grid). Every
# other model trains from a seed and runs once per seed.
DETERMINISTIC = ("knn", "mostpop", "ease")


def create(name: str, **params) -> Recommender:
    return registry.create(MODELS, name, "model", **params)
