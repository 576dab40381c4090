"""`model_settings: study` gives each model as the original code of the split protocol ran it
(the two papers and their public repositories), and `demo` the
params.yaml sections."""

import pytest
import yaml

from audiorec.params import model_params
from audiorec import models
from audiorec.models import create
from audiorec.workflow.worktree import REPO

# The original code's settings, read off its launchers and training scripts.
SHALLOW = {
    "variant": "cosine",
    "margin": 0.2,
    "neg_samples": 20,
    "sample_type": "item",
    "exclude_positives": False,
    "use_confidence": False,
    "l2": 0.0,
    "item_freeze": False,
    "user_freeze": True,
    "user_init": True,
    "lr": 0.001,
    "batch_size": 10000,
    "max_epochs": 100,
    "patience": 16,
    "scheduler_patience": 5,
    "stop_on": "loss",
    "schedule_on": "loss",
}
BERT4REC = {
    "max_seq_len": 300,
    "hidden_dim": 0,
    "n_layers": 2,
    "n_heads": 2,
    "intermediate_dim": 256,
    "dropout": 0.1,
    "mlm_probability": 0.2,
    "force_last_item_masking_prob": 0.0,
    "masked_input": "mask",
    "mask_at_least_one": False,
    "item_freeze": False,
    "special_tokens": "table",
    "positions": "from_start",
    "standardize_items": False,
    "normalize_items": False,
    "loss": "softmax",
    "batching": "random",
    "lr": 0.001,
    "adam_beta2": 0.999,
    "batch_size": 128,
    "min_epochs": 0,
    "patience": 16,
    "scheduler_patience": 5,
    "stop_on": "loss",
    "schedule_on": "loss",
}
ORIGINAL = {
    "recsys24": {
        "knn": {"user_rows": "tracks"},
        "shallow": {**SHALLOW, "hidden_dim": 128},
        "bert4rec": {**BERT4REC, "predict_seq_len": 50, "vocabulary": "train", "max_epochs": 100, "val_min_tracks": 10},
    },
    "journal": {
        "knn": {"user_rows": "item_ids"},
        "shallow": {**SHALLOW, "hidden_dim": 0},
        "bert4rec": {
            **BERT4REC,
            "predict_seq_len": 0,
            "vocabulary": "train_and_cold",
            "max_epochs": 200,
            "val_min_tracks": 0,
        },
        "mostpop": {"count_by": "users"},
    },
}


@pytest.fixture
def params():
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize("protocol", ["recsys24", "journal"])
def test_study_settings_are_the_original_codes(params, protocol):
    params["model_settings"], params["split"]["protocol"] = "study", protocol
    for model, original in ORIGINAL[protocol].items():
        settings = model_params(params, model)
        assert {key: settings[key] for key in original} == original, (protocol, model)
        create(model, models.settings(params, model))  # every study value is one the model accepts


def test_study_settings_do_not_follow_the_demo_sections(params):
    """The study's values are its own: editing a model's section does not move them."""
    params["model_settings"] = "study"
    params["bert4rec"] = {**params["bert4rec"], "dropout": 0.0, "batch_size": 7}
    assert (model_params(params, "bert4rec")["dropout"], model_params(params, "bert4rec")["batch_size"]) == (0.1, 128)
    assert (
        model_params(params, "bert4rec")["device"] == params["bert4rec"]["device"]
    )  # where to run is not a setting of the study


def test_demo_settings_are_the_sections(params):
    assert params["model_settings"] == "demo"
    for model in ("knn", "shallow", "bert4rec", "mostpop", "ease"):
        assert model_params(params, model) == params[model]
