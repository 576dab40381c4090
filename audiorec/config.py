"""Checking `params.yaml`: bad values refused before any heavy work starts.

The `code` stage, first in dvc.yaml, runs `validate` (stages.code); the other stages read
params.yaml unchecked (audiorec.params), so their code is not every room's checks.
"""
from __future__ import annotations

from pathlib import Path

from audiorec.data.split import DUPLICATE_PLAYS, PROTOCOLS, Protocol
from audiorec.params import read_params
from audiorec.paths import NO_BACKEND

SOURCES = ("synthetic", "music4all")
# demo: each model's params.yaml section, sized for a 2-core make repro; study: as the original code ran.
MODEL_SETTINGS = ("demo", "study")


class ParamsError(ValueError):
    pass


def load_params(path: str | Path = "params.yaml") -> dict:
    params = read_params(path)
    validate(params)
    return params


def validate(params: dict) -> None:
    """Check the values every stage relies on; each error names the parameter and the allowed values."""
    # Each room defines the values it accepts and never imports config, so the gate sits
    # above the rooms it checks (tests/test_layout.py); imported here, as the registries below are.
    from audiorec.backends.base import DEVICES, DTYPES, ERROR_POLICIES
    from audiorec.data.music4all import BAD_ROW_POLICIES

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
    if extract["device"] not in DEVICES:
        raise ParamsError(f"extract.device={extract['device']!r}; allowed: {', '.join(DEVICES)}")
    if extract["dtype"] not in DTYPES:
        raise ParamsError(f"extract.dtype={extract['dtype']!r}; allowed: {', '.join(DTYPES)}")
    for key in ("batch_size", "workers", "shard_batches"):
        if not isinstance(extract[key], int) or extract[key] < 1:
            raise ParamsError(f"extract.{key}={extract[key]!r}; must be an integer >= 1")
    for name in params["backends"]:
        if name == NO_BACKEND:
            raise ParamsError(f"backends: {NO_BACKEND!r} is the slot of the models without audio; list those under params.yaml: baselines")
        validate_backend(name, params.get(name))
    validate_seeds(params["seeds"])
    validate_models(params)
    if params["model_settings"] not in MODEL_SETTINGS:
        raise ParamsError(f"model_settings={params['model_settings']!r}; allowed: {', '.join(MODEL_SETTINGS)}")
    validate_controls(params)
    if params["train"]["top_k"] <= 0:
        raise ParamsError(f"train.top_k={params['train']['top_k']}; must be a positive integer")
    for k in params["evaluate"]["ks"]:
        if not isinstance(k, int) or k <= 0:
            raise ParamsError(f"evaluate.ks contains {k!r}; every k must be a positive integer")
    for key in ("k", "cold_k"):
        if params["report"][key] not in params["evaluate"]["ks"]:
            raise ParamsError(f"report.{key}={params['report'][key]} must be one of evaluate.ks {params['evaluate']['ks']}")
    split_protocol(params)
    if params["split"]["duplicate_plays"] not in DUPLICATE_PLAYS:
        raise ParamsError(f"split.duplicate_plays={params['split']['duplicate_plays']!r}; allowed: {', '.join(DUPLICATE_PLAYS)}")


def validate_seeds(seeds: object) -> None:
    if not isinstance(seeds, list) or not seeds or not all(isinstance(seed, int) and seed >= 0 for seed in seeds):
        raise ParamsError(f"seeds={seeds!r}; must be a non-empty list of integers >= 0, e.g. [0] or [0, 1, 2]")
    if len(set(seeds)) != len(seeds):
        raise ParamsError(f"seeds={seeds!r} repeats a seed; each seed is one run, list it once")


def validate_models(params: dict) -> None:
    """`models` read audio, `baselines` run without it; a model that reads ELSA's item factors needs elsa's runs."""
    from audiorec.models import KINDS

    for name in params["models"]:
        if name in KINDS and not KINDS[name].audio:
            raise ParamsError(f"models: {name!r} uses no audio; list it under params.yaml: baselines instead")
        if name not in KINDS:
            audio_models = sorted(model for model, kind in KINDS.items() if kind.audio)
            raise ParamsError(f"models: unknown model {name!r}; registered: {', '.join(audio_models)}")
    for name in params["baselines"]:
        if name not in KINDS or not KINDS[name].without_audio:
            allowed = [model for model, kind in KINDS.items() if kind.without_audio]
            raise ParamsError(f"baselines: {name!r} cannot run without audio; allowed: {', '.join(allowed)}")
    for name in params["models"]:  # controls.models must be in models (validate_controls)
        if KINDS[name].reads_elsa and "elsa" not in params["baselines"]:
            raise ParamsError(f"models: {name!r} reads the item factors of elsa's runs; add elsa to params.yaml: baselines")
    for key in ("models", "baselines"):
        repeated = sorted({name for name in params[key] if params[key].count(name) > 1})
        if repeated:
            raise ParamsError(f"{key} lists {', '.join(repeated)} more than once; each model is one run per seed, list it once")


def validate_controls(params: dict) -> None:
    controls = params["controls"]
    for key in ("shuffle", "unordered"):
        for name in controls[key]:
            if name not in params["backends"]:
                raise ParamsError(f"controls.{key}: {name!r} is not in backends ({', '.join(params['backends'])}); add it there first")
    for name in controls["models"]:
        if name not in params["models"]:
            raise ParamsError(f"controls.models: {name!r} is not in models ({', '.join(params['models'])}); add it there first")
    if controls["unordered"] and "bert4rec" not in params["models"]:
        raise ParamsError("controls.unordered needs bert4rec in models (it is BERT4Rec's order control); add it or empty the list")
    if not isinstance(controls["seed"], int) or controls["seed"] < 0:
        raise ParamsError(f"controls.seed={controls['seed']!r}; must be an integer >= 0")


def split_protocol(params: dict) -> Protocol:
    """The split protocol params.yaml `split.protocol` names, checked."""
    split = params["split"]
    if split["protocol"] not in PROTOCOLS:
        raise ParamsError(f"split.protocol={split['protocol']!r}; allowed: {', '.join(PROTOCOLS)}")
    try:
        return Protocol.from_params(split)
    except (TypeError, ValueError) as error:
        raise ParamsError(f"split.{split['protocol']}: {error}") from None


def validate_backend(name: str, section: dict | None) -> None:
    """A built-in name, an installed plugin with its version pinned, or a precomputed file's section."""
    from audiorec import backends
    from audiorec.backends import plugins

    found = backends.kind(name, section)
    if found is None:
        raise ParamsError(f"backends: unknown backend {name!r}; {backends.unknown(name)}")
    if found == backends.BUILT_IN and name in plugins.discovered():
        owner = plugins.entry_point(name).dist.name
        raise ParamsError(f"backends: {name!r} is built in and also declared by the installed package {owner}; rename its entry point")
    try:
        if found == backends.PLUGIN:
            plugins.check_version(name, (section or {}).get("version"))
        elif found == backends.PRECOMPUTED:
            from audiorec.backends.precomputed import check_section

            check_section(name, section)
    except ValueError as error:
        raise ParamsError(str(error)) from error
