"""Reading `params.yaml` and refusing bad values before any heavy work starts."""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import yaml

SOURCES = ("synthetic", "music4all")
# What to do with a malformed log line (audiorec.data.music4all) and an undecodable track (audiorec.backends).
BAD_ROW_POLICIES = ("fail", "skip")
ERROR_POLICIES = ("fail", "skip")
EXTRACT_DEVICES = ("auto", "cuda", "cpu")
EXTRACT_DTYPES = ("float32", "float16", "bfloat16")


class ParamsError(ValueError):
    pass


def load_params(path: str | Path = "params.yaml") -> dict:
    with open(path) as handle:
        params = yaml.safe_load(handle)
    validate(params)
    return params


def validate(params: dict) -> None:
    """Check the values every stage relies on; each error names the parameter and the allowed values."""
    from audiorec.backends import REGISTRY as BACKENDS
    from audiorec.models import BASELINES, ELSA_MODELS, MODELS

    dataset = params["dataset"]
    if dataset["source"] not in SOURCES:
        raise ParamsError(f"dataset.source={dataset['source']!r}; allowed: {', '.join(SOURCES)}")
    if dataset["source"] == "synthetic" and dataset["size"] not in params["synthetic"]:
        raise ParamsError(f"dataset.size={dataset['size']!r}; allowed: {', '.join(params['synthetic'])}")
    if dataset["on_bad_row"] not in BAD_ROW_POLICIES:
        raise ParamsError(f"dataset.on_bad_row={dataset['on_bad_row']!r}; allowed: {', '.join(BAD_ROW_POLICIES)}")
    if params["extract"]["on_error"] not in ERROR_POLICIES:
        raise ParamsError(f"extract.on_error={params['extract']['on_error']!r}; allowed: {', '.join(ERROR_POLICIES)}")
    extract = params["extract"]
    if extract["device"] not in EXTRACT_DEVICES:
        raise ParamsError(f"extract.device={extract['device']!r}; allowed: {', '.join(EXTRACT_DEVICES)}")
    if extract["dtype"] not in EXTRACT_DTYPES:
        raise ParamsError(f"extract.dtype={extract['dtype']!r}; allowed: {', '.join(EXTRACT_DTYPES)}")
    for key in ("batch_size", "workers", "shard_batches"):
        if not isinstance(extract[key], int) or extract[key] < 1:
            raise ParamsError(f"extract.{key}={extract[key]!r}; must be an integer >= 1")
    for name in params["backends"]:
        if name not in BACKENDS:
            raise ParamsError(f"backends: unknown backend {name!r}; registered: {', '.join(sorted(BACKENDS))}")
    for name in params["models"]:
        if name in BASELINES:
            raise ParamsError(f"models: {name!r} uses no audio; list it under params.yaml: baselines instead")
        if name in ELSA_MODELS:
            raise ParamsError(f"models: {name!r} reads ELSA's item factors; list it under params.yaml: elsa_models instead")
        if name not in MODELS:
            audio_models = sorted(set(MODELS) - set(BASELINES) - set(ELSA_MODELS))
            raise ParamsError(f"models: unknown model {name!r}; registered: {', '.join(audio_models)}")
    validate_elsa_models(params, ELSA_MODELS)
    for name in params["baselines"]:
        if name not in BASELINES:
            raise ParamsError(f"baselines: {name!r} is not an interactions-only model; allowed: {', '.join(BASELINES)}")
    for key in ("shuffle", "unordered"):
        for name in params["controls"][key]:
            if name not in params["backends"]:
                raise ParamsError(f"controls.{key}: {name!r} is not in backends ({', '.join(params['backends'])}); add it there first")
    for name in params["controls"]["models"]:
        if name not in params["models"]:
            raise ParamsError(f"controls.models: {name!r} is not in models ({', '.join(params['models'])}); add it there first")
    if params["controls"]["unordered"] and "bert4rec" not in params["models"]:
        raise ParamsError("controls.unordered needs bert4rec in models (it is BERT4Rec's order control); add it or empty the list")
    if params["train"]["top_k"] <= 0:
        raise ParamsError(f"train.top_k={params['train']['top_k']}; must be a positive integer")
    for k in params["evaluate"]["ks"]:
        if not isinstance(k, int) or k <= 0:
            raise ParamsError(f"evaluate.ks contains {k!r}; every k must be a positive integer")
    for key in ("k", "cold_k"):
        if params["report"][key] not in params["evaluate"]["ks"]:
            raise ParamsError(f"report.{key}={params['report'][key]} must be one of evaluate.ks {params['evaluate']['ks']}")
    split = params["split"]
    if pd.Timestamp(split["test_date"]) <= pd.Timestamp(split["start_date"]):
        raise ParamsError(f"split.test_date ({split['test_date']}) must be after split.start_date ({split['start_date']})")
    if not 0 < split["val_fraction"] < 1:
        raise ParamsError(f"split.val_fraction={split['val_fraction']}; must be strictly between 0 and 1")


def validate_elsa_models(params: dict, registered: tuple[str, ...]) -> None:
    """`elsa_models` (and their controls) need ELSA's item factors, so elsa must be a baseline."""
    for name in params["elsa_models"]:
        if name not in registered:
            raise ParamsError(f"elsa_models: {name!r} does not read ELSA's item factors; allowed: {', '.join(registered)}")
    if params["elsa_models"] and "elsa" not in params["baselines"]:
        raise ParamsError(
            f"elsa_models ({', '.join(params['elsa_models'])}) read train_baseline@elsa's item factors; "
            "add elsa to params.yaml: baselines"
        )
    for name in params["controls"]["elsa_models"]:
        if name not in params["elsa_models"]:
            raise ParamsError(f"controls.elsa_models: {name!r} is not in elsa_models ({', '.join(params['elsa_models'])}); add it there first")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # faiss logs every CPU-feature probe at INFO.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
