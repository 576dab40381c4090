"""params.yaml's schema (audiorec/settings/): every section checked before any work, a mistyped
key refused with the section, the closest valid key and the file; docs/params.md generated."""

import json
import subprocess
import sys
import typing
from importlib import import_module
from pathlib import Path

import pytest
import yaml

from audiorec import models
from audiorec.config import ParamsError, section_class, validate
from audiorec.settings import reference

REPO = Path(__file__).resolve().parents[1]


def params() -> dict:
    """params.yaml, each mapping its own object (YAML aliases share one: study's elsa under both protocols)."""
    return json.loads(json.dumps(yaml.safe_load((REPO / "params.yaml").read_text())))


def sections(tree: dict, prefix: str = "") -> list[str]:
    """Every mapping of settings in params.yaml, by key path: top-level sections, split's
    protocols, the synthetic sizes, each study entry; not the top level itself."""
    found = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            nested = [name for name, inner in value.items() if isinstance(inner, dict)]
            if len(nested) < len(value) or path in {"split"}:  # a section holds settings (split: and protocols)
                found.append(path)
            found += sections({name: value[name] for name in nested}, path + ".")
    return found


def typo(key: str) -> str:
    """A near miss a person could type: the key with its last two letters swapped, or one doubled."""
    swapped = key[:-2] + key[-1] + key[-2] if len(key) > 2 and key[-1] != key[-2] else key + key[-1]
    return swapped


def at(tree: dict, path: str) -> dict:
    for part in path.split("."):
        tree = tree[part]
    return tree


ALL_SECTIONS = sections(params())


def test_the_walk_finds_every_kind_of_section():
    expected = {
        "dataset",
        "synthetic.tiny",
        "extract",
        "mfcc",
        "mert",
        "split",
        "split.journal",
        "controls",
        "knn",
        "shallow",
        "bert4rec",
        "hybrid",
        "study.journal.bert4rec",
        "study.recsys24.knn",
        "report",
        "compare",
    }
    assert expected <= set(ALL_SECTIONS), sorted(expected - set(ALL_SECTIONS))


@pytest.mark.parametrize("path", ALL_SECTIONS)
def test_a_mistyped_key_in_each_section_is_refused_naming_the_key_the_closest_and_the_file(path):
    settings = params()
    section = at(settings, path)
    key = next(name for name, value in section.items() if not isinstance(value, dict))
    wrong = typo(key)
    assert wrong not in section
    section[wrong] = section[key]
    with pytest.raises(ParamsError) as error:
        validate(settings)
    message = str(error.value)
    assert message.startswith("params.yaml: "), message
    assert f"{path}.{wrong}" in message and f"did you mean {key}?" in message, message


def test_an_unknown_section_is_refused_with_the_closest():
    with pytest.raises(ParamsError, match=r"params.yaml: unknown section 'shalow' \(did you mean shallow\?\)"):
        validate({**params(), "shalow": {"lr": 0.1}})


def test_the_diversity_space_must_be_a_backend_of_the_run_and_the_buckets_leave_room():
    settings = params()
    settings["backends"] = ["random", "mfcc", "musicnn"]  # oracle dropped, as for Music4All
    settings["controls"].update(shuffle=["musicnn"], unordered=["musicnn"])
    with pytest.raises(ParamsError, match=r"evaluate.diversity_space='oracle' is not in backends \(random, mfcc"):
        validate(settings)
    settings["evaluate"]["diversity_space"] = None
    validate(settings)
    settings["evaluate"]["popularity_buckets"] = {"head": 0.6, "tail": 0.5}
    with pytest.raises(ParamsError, match=r"popularity_buckets.*head \+ tail = 1.1 > 1"):
        validate(settings)


def test_a_missing_key_names_the_section_to_add_it_to():
    settings = params()
    del settings["bert4rec"]["dropout"]
    with pytest.raises(ParamsError, match=r"params.yaml: bert4rec.dropout is missing; add it to bert4rec"):
        validate(settings)


def test_a_study_setting_is_a_key_of_the_models_section_and_a_valid_value():
    settings = params()
    settings["study"]["journal"]["bert4rec"]["dropuot"] = 0.1
    with pytest.raises(
        ParamsError, match=r"study.journal.bert4rec.dropuot: not a key of bert4rec \(did you mean dropout\?\)"
    ):
        validate(settings)
    settings = params()
    settings["study"]["recsys24"]["shallow"]["variant"] = "dot"
    with pytest.raises(
        ParamsError, match=r"study.recsys24.shallow.variant='dot': Input should be 'cosine' or 'interaction'"
    ):
        validate(settings)


def test_a_value_of_the_wrong_type_is_refused_not_converted():
    """A string where a number belongs (PyYAML reads `1e-3` as one) is refused, not passed on."""
    settings = params()
    settings["shallow"]["lr"] = "1e-3"
    with pytest.raises(ParamsError, match=r"shallow.lr='1e-3': Input should be a valid number"):
        validate(settings)


@pytest.mark.parametrize("name", sorted(models.KINDS))
def test_each_model_takes_the_settings_class_its_kind_declares(name):
    """KINDS names the class so that params.yaml is checked without importing the model's code;
    the constructor's annotation is the class the model is built with: they must agree."""
    module, cls = models.KINDS[name].target.split(":")
    model_class = getattr(import_module(module), cls)
    assert typing.get_type_hints(model_class.__init__)["settings"] is models.settings_class(name)


def test_the_committed_sections_build_every_model():
    settings = params()
    for name in models.KINDS:
        assert models.settings(settings, name) == models.settings_class(name).model_validate(settings[name])
    study = {**settings, "model_settings": "study"}
    assert models.settings(study, "bert4rec").dropout == settings["study"]["journal"]["bert4rec"]["dropout"]


def test_the_parameters_page_is_generated_from_the_schema_and_the_values():
    page = (REPO / reference.PAGE).read_text()
    assert page == reference.page(params(), section_class), (
        "docs/params.md is stale: run `python -m stages.params --doc`"
    )


def test_a_mistyped_key_stops_the_first_stage_before_any_work(tmp_path):
    """The code stage runs first (every other stage depends on its files): a typo stops it,
    naming the key, and nothing is written."""
    from audiorec.workflow.worktree import write_params

    settings = params()
    write_params(tmp_path, settings)
    settings["extract"]["batch_sise"] = settings["extract"].pop("batch_size")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(settings))
    for command in (["stages.params"], ["stages.code"]):
        result = subprocess.run(
            [sys.executable, "-m", *command],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(REPO)},
        )
        assert result.returncode != 0, result.stdout
        assert "params.yaml: extract.batch_sise: unknown key (did you mean batch_size?)" in result.stderr, (
            result.stderr[-2000:]
        )
    assert not (tmp_path / "data/code").exists()
