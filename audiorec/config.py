"""Checking `params.yaml`: every section against its class (audiorec/settings/), then what
relates one section to another, before any heavy work starts.

`python -m stages.params` runs `validate` alone, in about a second; so do `python -m
stages.graph` (which `make repro` runs first) and the `code` stage, first in dvc.yaml. The
other stages read params.yaml unchecked (audiorec.params), so their code is not every room's
checks (audiorec.workflow.closure).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

from audiorec.params import read_params
from audiorec.registry import load
from audiorec.paths import LAYER_MARK, NO_BACKEND
from audiorec.settings.base import PARAMS_FILE, SettingsError, check, closest
from audiorec.settings.grid import GridSettings

# The class of each section that is neither a backend's nor a model's ("module:Class").
SECTIONS: dict[str, str] = {
    "dataset": "audiorec.settings.dataset:DatasetSettings",
    "extract": "audiorec.settings.extract:ExtractSettings",
    "split": "audiorec.settings.split:SplitSettings",
    "controls": "audiorec.settings.controls:ControlsSettings",
    "train": "audiorec.settings.train:TrainSettings",
    "evaluate": "audiorec.settings.evaluate:EvaluateSettings",
    "compare": "audiorec.settings.compare:CompareSettings",
    "report": "audiorec.settings.report:ReportSettings",
    "cluster": "audiorec.settings.cluster:ClusterSettings",
}
OPTIONAL_SECTIONS = ("cluster",)  # python -m stages.cluster's resource table; absent: its defaults
# The grid's keys (audiorec.settings.grid).
LISTS = ("backends", "models", "baselines", "leave_out", "seeds", "layer_sweep")
# demo: each model's params.yaml section, sized for a 2-core make repro; study: as the original code ran.
MODEL_SETTINGS: tuple[str, ...] = get_args(GridSettings.model_fields["model_settings"].annotation)

ParamsError = SettingsError


def load_params(path: str | Path = PARAMS_FILE) -> dict:
    params = read_params(path)
    validate(params)
    return params


def section_class(name: str) -> Any:
    """The class that checks params.yaml section `name`: a pipeline section's, a built-in
    backend's (audiorec.backends.SETTINGS) or a model's (audiorec.models.KINDS)."""
    from audiorec import backends, models

    if name in SECTIONS:
        return load(SECTIONS[name])
    if name in backends.SETTINGS:
        return load(backends.SETTINGS[name])
    return models.settings_class(name)


def validate(params: dict) -> None:
    """Check every section; each error names the file, the key and what would be right."""
    try:
        check_sections(params)
    except SettingsError as error:
        message = str(error)
        raise ParamsError(message if message.startswith(PARAMS_FILE) else f"{PARAMS_FILE}: {message}") from None


def check_sections(params: dict) -> None:
    from audiorec import backends, models

    if not isinstance(params, dict):
        raise ParamsError(f"{PARAMS_FILE} must be a mapping of sections, got {params!r}")
    known = {*SECTIONS, *LISTS, "synthetic", "model_settings", "study", *models.KINDS, *backends.SETTINGS}
    sections_of_names = {name for name in params.get("backends") or [] if isinstance(name, str)}
    for key in params:
        if key not in known and key not in sections_of_names:
            raise ParamsError(f"{PARAMS_FILE}: unknown section {key!r}{closest(str(key), sorted(known))}")
    missing = [
        key
        for key in (*SECTIONS, *LISTS, "synthetic", "model_settings", "study")
        if key not in params and key not in OPTIONAL_SECTIONS
    ]
    if missing:
        raise ParamsError(f"{PARAMS_FILE}: sections missing: {', '.join(missing)} (docs/params.md lists every key)")
    sections = {name: check(load(target), params[name], name) for name, target in SECTIONS.items() if name in params}
    validate_dataset(params)
    validate_backends(params)
    validate_seeds(params["seeds"])
    validate_models(params)
    validate_study(params)
    validate_controls(params)
    validate_layer_sweep(params)
    check(GridSettings, {key: params[key] for key in GridSettings.model_fields}, "")  # what the checks above left
    report, ks = sections["report"], sections["evaluate"].ks
    space = sections["evaluate"].diversity_space
    if space is not None and space not in params["backends"]:
        raise ParamsError(
            f"{PARAMS_FILE}: evaluate.diversity_space={space!r} is not in backends ({', '.join(params['backends'])}); "
            "name one of them, or null for no diversity column"
        )
    for key in ("k", "cold_k"):
        if getattr(report, key) not in ks:
            raise ParamsError(f"{PARAMS_FILE}: report.{key}={getattr(report, key)} must be one of evaluate.ks {ks}")


def validate_dataset(params: dict) -> None:
    from audiorec.settings.synthetic import SyntheticSize

    if not isinstance(params["synthetic"], dict) or not params["synthetic"]:
        raise ParamsError(f"{PARAMS_FILE}: synthetic must map each size name to its section (tiny, small)")
    for size, section in params["synthetic"].items():
        check(SyntheticSize, section, f"synthetic.{size}")
    dataset = params["dataset"]
    if dataset["source"] == "synthetic" and dataset["size"] not in params["synthetic"]:
        raise ParamsError(
            f"{PARAMS_FILE}: dataset.size={dataset['size']!r}"
            f"{closest(str(dataset['size']), list(params['synthetic']))}; "
            f"allowed: {', '.join(params['synthetic'])}"
        )


def validate_backends(params: dict) -> None:
    """Each listed name is a backend; each built-in backend's section present is valid."""
    from audiorec import backends

    if not isinstance(params["backends"], list):
        raise ParamsError(f"{PARAMS_FILE}: backends={params['backends']!r}; must be a list of backend names")
    for name in params["backends"]:
        if name == NO_BACKEND:
            raise ParamsError(
                f"{PARAMS_FILE}: backends: {NO_BACKEND!r} is the slot of the models without audio; "
                "list those under baselines"
            )
        if LAYER_MARK in name:
            validate_layer_name(name, params)
        else:
            validate_backend(name, params.get(name))
    for name, target in backends.SETTINGS.items():
        if name in params:
            check(load(target), params[name], name)


def validate_layer_sweep(params: dict) -> None:
    """A swept backend of the grid stores layers; a backend whose main layer is `best` is swept, so there is a
    choice to read. As with leave_out, a swept backend or model the grid does not hold sweeps nothing."""
    from audiorec.settings.backends import layered
    from audiorec.settings.grid import LayerSweepSettings

    sweep = check(LayerSweepSettings, params["layer_sweep"], "layer_sweep")
    swept = [name for name in sweep.backends if name in params["backends"]]
    models = [name for name in sweep.models if name in params["models"]]
    for name in params["backends"]:
        section = layered(name, params.get(name))
        if name in swept and (section is None or not section.stored_layers()):
            raise ParamsError(
                f"{PARAMS_FILE}: layer_sweep.backends: {name!r} stores no layers; set {name}.layers "
                "(a list of its layers, or all) or remove it from layer_sweep.backends"
            )
        if section is not None and section.main_layer() is None and not (name in swept and models):
            raise ParamsError(
                f"{PARAMS_FILE}: {name}.layer: best is chosen in the layer sweep; add {name} to "
                "layer_sweep.backends and a model of models to layer_sweep.models"
            )


def validate_layer_name(name: str, params: dict) -> None:
    """`<backend>@<layer>`: a backend whose extraction stores that layer."""
    from audiorec.settings.backends import layered

    backend, _, layer = name.partition(LAYER_MARK)
    validate_backend(backend, params.get(backend))
    section = layered(backend, params.get(backend))
    stored = section.stored_layers() if section is not None else []
    if layer not in stored:
        raise ParamsError(
            f"{PARAMS_FILE}: backends: {name!r}: {backend} stores "
            + (f"the layers {', '.join(stored)}" if stored else "no layers")
            + f'; add {layer!r} to {backend}.layers (docs/backends.md "Layers")'
        )


def validate_seeds(seeds: object) -> None:
    if not isinstance(seeds, list) or not seeds or not all(isinstance(seed, int) and seed >= 0 for seed in seeds):
        raise ParamsError(f"seeds={seeds!r}; must be a non-empty list of integers >= 0, e.g. [0] or [0, 1, 2]")
    if len(set(seeds)) != len(seeds):
        raise ParamsError(f"seeds={seeds!r} repeats a seed; each seed is one run, list it once")


def validate_models(params: dict) -> None:
    """`models` read audio, `baselines` run without it; a model that reads ELSA's item factors
    needs elsa's runs; each model's section present is valid."""
    from audiorec import models
    from audiorec.models import KINDS

    for key in ("models", "baselines"):
        if not isinstance(params[key], list):
            raise ParamsError(f"{PARAMS_FILE}: {key}={params[key]!r}; must be a list of model names")
    for pair in params.get("leave_out") or []:  # missing: GridSettings names it
        if not isinstance(pair, str) or pair.rpartition("-")[2] not in KINDS:
            raise ParamsError(
                f"{PARAMS_FILE}: leave_out: {pair!r}; each entry is <backend>-<model>, e.g. mfcc-bert4rec"
            )
    for name in params["models"]:
        if name in KINDS and not KINDS[name].audio:
            raise ParamsError(f"models: {name!r} uses no audio; list it under params.yaml: baselines instead")
        if name not in KINDS:
            audio_models = sorted(model for model, kind in KINDS.items() if kind.audio)
            raise ParamsError(
                f"models: unknown model {name!r}{closest(str(name), audio_models)}; "
                f"registered: {', '.join(audio_models)}"
            )
    for name in params["baselines"]:
        if name not in KINDS or not KINDS[name].without_audio:
            allowed = [model for model, kind in KINDS.items() if kind.without_audio]
            raise ParamsError(f"baselines: {name!r} cannot run without audio; allowed: {', '.join(allowed)}")
    for name in params["models"]:  # controls.models must be in models (validate_controls)
        if KINDS[name].reads_elsa and "elsa" not in params["baselines"]:
            raise ParamsError(
                f"models: {name!r} reads the item factors of elsa's runs; add elsa to params.yaml: baselines"
            )
    for key in ("models", "baselines"):
        repeated = sorted({name for name in params[key] if params[key].count(name) > 1})
        if repeated:
            raise ParamsError(
                f"{key} lists {', '.join(repeated)} more than once; each model is one run per seed, list it once"
            )
    for name in {*params["models"], *params["baselines"]}:
        if name not in params:
            raise ParamsError(
                f"{PARAMS_FILE}: {name} is in the grid but has no section; add `{name}:` (docs/params.md)"
            )
    for name in KINDS:
        if name in params:
            check(models.settings_class(name), params[name], name)


def validate_study(params: dict) -> None:
    """`model_settings` and the study's settings: each protocol's entry of a model is a partial
    section of that model, the original code's values; every model of the grid has one under
    each protocol (DVC tracks it), empty for a model the original code did not run."""
    from audiorec import models
    from audiorec.data.split import PROTOCOLS
    from audiorec.models import KINDS

    if params["model_settings"] not in MODEL_SETTINGS:
        raise ParamsError(f"model_settings={params['model_settings']!r}; allowed: {', '.join(MODEL_SETTINGS)}")
    study = params["study"]
    if not isinstance(study, dict) or set(study) != set(PROTOCOLS):
        raise ParamsError(f"{PARAMS_FILE}: study must have one entry per split protocol: {', '.join(PROTOCOLS)}")
    for protocol, entries in study.items():
        entries = entries or {}
        for name, overlay in entries.items():
            where = f"study.{protocol}.{name}"
            if name not in KINDS:
                raise ParamsError(f"{PARAMS_FILE}: {where}: no model {name!r}{closest(str(name), sorted(KINDS))}")
            if not isinstance(overlay, dict):
                raise ParamsError(f"{PARAMS_FILE}: {where} must be a mapping of {name}'s keys to the original's values")
            if overlay and not KINDS[name].study:
                raise ParamsError(
                    f"{PARAMS_FILE}: {where}: the original code did not run {name}; leave its entry empty ({{}})"
                )
            cls = models.settings_class(name)
            for key in overlay:
                if key not in cls.model_fields:
                    raise ParamsError(
                        f"{PARAMS_FILE}: {where}.{key}: not a key of {name}{closest(str(key), list(cls.model_fields))}"
                    )
            check(cls, {**params.get(name, {}), **overlay}, where)
        for name in {*params["models"], *params["baselines"]}:
            if name not in entries:
                empty = "" if KINDS[name].study else " (empty: the original code did not run it)"
                raise ParamsError(
                    f"{PARAMS_FILE}: study.{protocol} has no entry for {name}; "
                    f"add `{name}: {{}}`{empty} or its original values"
                )


def validate_controls(params: dict) -> None:
    controls = params["controls"]
    for key in ("shuffle", "unordered"):
        for name in controls[key]:
            if name not in params["backends"]:
                raise ParamsError(
                    f"controls.{key}: {name!r} is not in backends ({', '.join(params['backends'])}); add it there first"
                )
    for name in controls["models"]:
        if name not in params["models"]:
            raise ParamsError(
                f"controls.models: {name!r} is not in models ({', '.join(params['models'])}); add it there first"
            )
    if controls["unordered"] and "bert4rec" not in params["models"]:
        raise ParamsError(
            "controls.unordered needs bert4rec in models (it is BERT4Rec's order control); add it or empty the list"
        )


def split_protocol(params: dict):
    """The split protocol params.yaml `split.protocol` names, checked."""
    from audiorec.data.split import Protocol

    split = params["split"]
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
        listable = sorted(set(backends.REGISTRY) - {NO_BACKEND})
        raise ParamsError(f"backends: unknown backend {name!r}{closest(str(name), listable)}; {backends.unknown(name)}")
    if found == backends.BUILT_IN and name in plugins.discovered():
        owner = plugins.distribution(plugins.entry_point(name)).name
        raise ParamsError(
            f"backends: {name!r} is built in and also declared by the installed package {owner}; rename its entry point"
        )
    if found == backends.PRECOMPUTED:
        from audiorec.settings.precomputed import PrecomputedSettings

        check(PrecomputedSettings, section, name)
        return
    try:
        if found == backends.PLUGIN:
            plugins.check_version(name, (section or {}).get("version"))
    except ValueError as error:
        raise ParamsError(str(error)) from error
