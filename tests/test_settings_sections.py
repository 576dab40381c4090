"""The section classes of audiorec.settings (all but the models'): the committed params.yaml passes,
a mistyped key is refused naming the nearest right one, and a bad value is refused naming the key."""

import datetime
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from audiorec.settings.base import SettingsError, check
from audiorec.settings.cluster import ClusterSettings
from audiorec.settings.compare import CompareSettings
from audiorec.settings.controls import ControlsSettings
from audiorec.settings.dataset import DatasetSettings
from audiorec.settings.encodecmae import EncodecMAESettings
from audiorec.settings.evaluate import EvaluateSettings
from audiorec.settings.extract import ExtractSettings
from audiorec.settings.jukebox import JukeboxSettings
from audiorec.settings.mert import MertSettings
from audiorec.settings.mfcc import MFCCSettings
from audiorec.settings.mule import MuleSettings
from audiorec.settings.music2vec import Music2VecSettings
from audiorec.settings.musicfm import MusicFMSettings
from audiorec.settings.musicnn import MusicnnSettings
from audiorec.settings.muq import MuQSettings
from audiorec.settings.muq_mulan import MuQMuLanSettings
from audiorec.settings.oracle import OracleSettings
from audiorec.settings.precomputed import PrecomputedSettings
from audiorec.settings.random import RandomSettings
from audiorec.settings.report import ReportSettings
from audiorec.settings.split import SplitSettings
from audiorec.settings.synthetic import SyntheticSize
from audiorec.settings.train import TrainSettings

REPO = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
# Sections params.yaml may lack: a hand-written example (docs/cluster.md, docs/backends.md).
EXAMPLES = {
    "cluster": {"resources": {"extract@*": {"num_cpus": 8, "num_gpus": 1}, "*": {"num_cpus": 1}}},
    "onion_mfcc": {"format": "tsv", "file": "id_mfcc_stats.tsv", "dim": 104},
}

# section, class, a mistyped key -> the key it should suggest, a bad value {key: value}
CASES = [
    ("dataset", DatasetSettings, "on_bad_rows", "on_bad_row", {"source": "music4al"}),
    ("synthetic.tiny", SyntheticSize, "n_track", "n_tracks", {"cold_fraction": 1.0}),
    ("synthetic.small", SyntheticSize, "clip_second", "clip_seconds", {"n_users": 0}),
    ("extract", ExtractSettings, "shard_batch", "shard_batches", {"device": "gpu"}),
    ("random", RandomSettings, "distrib", "distribution", {"distribution": "gaussian"}),
    ("mfcc", MFCCSettings, "n_mfccs", "n_mfcc", {"n_mfcc": 0}),
    ("musicnn", MusicnnSettings, "modle", "model", {"layer": "logits"}),
    ("oracle", OracleSettings, "styles", "styles_path", {"dim": -1}),
    ("mert", MertSettings, "pool", "pooling", {"pooling": "median"}),
    ("music2vec", Music2VecSettings, "sample_rates", "sample_rate", {"sample_rate": 0}),
    ("encodecmae", EncodecMAESettings, "modle", "model", {"model": ""}),
    ("musicfm", MusicFMSettings, "stats_path", "stat_path", {"pooling": "sum"}),
    ("jukebox", JukeboxSettings, "cachedir", "cache_dir", {"layer": 0}),
    ("mule", MuleSettings, "models", "model", {"model": 3}),
    ("muq", MuQSettings, "layr", "layer", {"pooling": "cls"}),
    ("muq_mulan", MuQMuLanSettings, "modl", "model", {"model": None}),
    ("onion_mfcc", PrecomputedSettings, "dimm", "dim", {"format": "npz"}),
    ("split", SplitSettings, "duplicate_play", "duplicate_plays", {"protocol": "recsys"}),
    ("controls", ControlsSettings, "shufle", "shuffle", {"seed": -1}),
    ("train", TrainSettings, "topk", "top_k", {"top_k": 0}),
    ("evaluate", EvaluateSettings, "k", "ks", {"ks": []}),
    ("compare", CompareSettings, "tolerence", "tolerance", {"tolerance": -0.1}),
    ("report", ReportSettings, "cold", "cold_k", {"k": 0}),
    ("cluster", ClusterSettings, "resource", "resources", {"resources": {"*": {"num_cpu": 1}}}),
]
IDS = [case[0] for case in CASES]


def section(where: str) -> dict:
    values: object = PARAMS
    for part in where.split("."):
        values = values.get(part) if isinstance(values, dict) else None
    return values if values is not None else EXAMPLES[where]


@pytest.mark.parametrize("where, cls, typo, right, bad", CASES, ids=IDS)
def test_committed_section_validates(where, cls, typo, right, bad):
    assert isinstance(check(cls, section(where), where), cls)


@pytest.mark.parametrize("where, cls, typo, right, bad", CASES, ids=IDS)
def test_mistyped_key_refused(where, cls, typo, right, bad):
    values = section(where)
    mistyped = {**values, typo: values.get(right)}
    with pytest.raises(ValidationError) as raised:
        cls.model_validate(mistyped)
    assert [error["type"] for error in raised.value.errors()] == ["extra_forbidden"]
    with pytest.raises(SettingsError, match=rf"params\.yaml: {where}\.{typo}: unknown key \(did you mean {right}\?\)"):
        check(cls, mistyped, where)


@pytest.mark.parametrize("where, cls, typo, right, bad", CASES, ids=IDS)
def test_bad_value_refused(where, cls, typo, right, bad):
    [(key, value)] = bad.items()
    with pytest.raises(SettingsError, match=rf"params\.yaml: {where}\.{key}"):
        check(cls, {**section(where), **bad}, where)


def test_every_class_has_its_meaning():
    """docs/params.md is generated from the docstrings: every class and field has one."""
    for _, cls, *_ in CASES:
        assert cls.__doc__, cls
        assert all(field.description for field in cls.model_fields.values()), cls


def test_a_missing_key_is_named():
    values = {key: value for key, value in PARAMS["extract"].items() if key != "dtype"}
    with pytest.raises(SettingsError, match="extract.dtype is missing"):
        check(ExtractSettings, values, "extract")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"test_date": "2018-01-01"}, "journal.test_date='2018-01-01': must be after start_date"),
        ({"end_date": "2019-02-01"}, "journal.end_date='2019-02-01': must be after test_date .*, or null"),
        ({"cold_start": False}, "journal.val_from='without_cold': without_cold needs cold_start: true"),
        ({"test_size": 1.0}, "journal.test_size=1.0"),
        ({"start_date": "February"}, "journal.start_date='February': not a date"),
    ],
)
def test_protocol_checks(change, message):
    """The checks of audiorec.data.split.Protocol, each refused at its key."""
    split = {**PARAMS["split"], "journal": {**PARAMS["split"]["journal"], **change}}
    with pytest.raises(SettingsError, match=message):
        check(SplitSettings, split, "split")


def test_protocol_dates_unquoted_and_open_ended():
    """An unquoted YAML date reads as its text; a null end_date is an open test period."""
    journal = {**PARAMS["split"]["journal"], "start_date": datetime.date(2018, 2, 1), "end_date": None}
    protocol = check(SplitSettings, {**PARAMS["split"], "journal": journal}, "split").journal
    assert (protocol.start_date, protocol.end_date) == ("2018-02-01", None)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"format": "npy", "file": "vectors.npy", "dim": 8}, r"x\.ids=None: the npy format, and only it.*add ids"),
        ({"format": "csv", "file": "v.csv", "dim": 8, "ids": "ids.csv"}, r"x\.ids='ids.csv': .*remove ids"),
        (
            {"format": "tsv", "file": "/data/v.tsv", "dim": 8},
            r"x\.file='/data/v.tsv': name a file inside data/precomputed/",
        ),
        ({"format": "npy", "file": "v.npy", "dim": 8, "ids": "../ids.csv"}, r"x\.ids='../ids.csv': name a file inside"),
        ({"format": "tsv", "file": "v.tsv", "dim": 0}, r"x\.dim=0"),
    ],
)
def test_precomputed_rules(values, message):
    """audiorec.backends.precomputed.check_section's rules, each refused at its key with the fix."""
    with pytest.raises(SettingsError, match=message):
        check(PrecomputedSettings, values, "x")


def test_precomputed_npy_with_ids():
    settings = check(
        PrecomputedSettings, {"format": "npy", "file": "m.npy", "dim": 4, "ids": "ids.csv", "id_column": "t"}, "x"
    )
    assert (settings.ids, settings.id_column, settings.vector_column) == ("ids.csv", "t", None)


def test_cluster_resources_optional():
    assert check(ClusterSettings, {}, "cluster").resources is None
    with pytest.raises(SettingsError, match="cluster.resources"):
        check(ClusterSettings, {"resources": {"*": {"num_gpus": -1}}}, "cluster")


def test_modules_stay_light_and_shadow_nothing():
    """The settings import no heavy library, and audiorec/settings/random.py leaves the stdlib's random alone."""
    modules = ", ".join(f"audiorec.settings.{name}" for name in MODULES)
    code = (
        f"import sys; import {modules}; import random; "
        "assert 'audiorec' not in random.__file__ and hasattr(random, 'shuffle'), random.__file__; "
        "print(sorted({'torch', 'numpy', 'pandas', 'tensorflow', 'sklearn'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


MODULES = (
    "dataset",
    "synthetic",
    "extract",
    "random",
    "mfcc",
    "musicnn",
    "oracle",
    "mert",
    "music2vec",
    "encodecmae",
    "musicfm",
    "jukebox",
    "mule",
    "muq",
    "muq_mulan",
    "precomputed",
    "split",
    "controls",
    "train",
    "evaluate",
    "compare",
    "report",
    "cluster",
)
