"""Backends from other packages, found through the `audiorec.backends` entry-point group.

The example plugin of the docs (examples/plugin) is installed for real, with pip, into a
temporary folder; the tests put that folder on the path, so importlib.metadata finds its
entry point exactly as it would in a virtualenv.
"""

import importlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from audiorec import audio, backends
from audiorec.backends import plugins
from audiorec.backends.engine import code_digest
from audiorec.config import ParamsError, validate
from audiorec.workflow.worktree import REPO, write_params

RATE = 8000
SECTION = {"version": "0.1.0", "n_bands": 8, "frame": 256, "sample_rate": RATE}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """examples/plugin, pip-installed (offline, no dependencies) into a folder of its own."""
    source = shutil.copytree(REPO / "examples" / "plugin", tmp_path_factory.mktemp("src") / "plugin")
    target = tmp_path_factory.mktemp("site")
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--target",
        str(target),
        str(source),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return target


@pytest.fixture
def on_path(site, monkeypatch):
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return site


def test_the_plugin_is_found_through_its_entry_point(on_path):
    assert backends.kind("band_energy") == backends.PLUGIN
    (point,) = plugins.discovered()["band_energy"]
    assert (point.dist.name, point.value) == ("audiorec-band-energy", "audiorec_band_energy:BandEnergyBackend")
    backend = backends.create("band_energy", **SECTION)
    assert isinstance(backend, backends.AudioBackend)
    assert (backend.name, backend.dim, backend.sample_rate) == ("band_energy", 8, RATE)


def test_its_params_pin_the_installed_version(on_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params = {
        **params,
        "backends": ["mfcc", "band_energy"],
        "controls": {**params["controls"], "shuffle": [], "unordered": []},
        "evaluate": {**params["evaluate"], "diversity_space": "mfcc"},
    }
    validate({**params, "band_energy": SECTION})
    with pytest.raises(
        ParamsError,
        match=r"band_energy.version is missing: .* add `version: '0.1.0'` \(installed: audiorec-band-energy 0.1.0\)",
    ):
        validate({**params, "band_energy": {"n_bands": 8}})
    with pytest.raises(
        ParamsError,
        match=(
            r"band_energy.version='0.2.0' but audiorec-band-energy 0.1.0 is installed; "
            r"set band_energy.version: '0.1.0'"
        ),
    ):
        validate({**params, "band_energy": {**SECTION, "version": "0.2.0"}})
    with pytest.raises(ValueError, match=r"band_energy.version='0.2.0' but"):
        backends.create("band_energy", **{**SECTION, "version": "0.2.0"})


def test_a_change_to_the_plugin_code_is_a_new_resume_fingerprint(on_path, tmp_path, monkeypatch):
    """Resumed shards are only reused with the same code: the plugin's own module counts."""
    copy = shutil.copytree(on_path, tmp_path / "site")
    monkeypatch.syspath_prepend(str(copy))
    sys.modules.pop("audiorec_band_energy", None)
    importlib.invalidate_caches()
    backend = backends.create("band_energy", **SECTION)
    before = code_digest(backend)
    with open(copy / "audiorec_band_energy.py", "a") as module:
        module.write("# edited\n")
    assert code_digest(backend) != before
    sys.modules.pop("audiorec_band_energy", None)


def write_clips(folder, n):
    """Clips of different pitch and length, so every row differs and the order is checkable."""
    rows = []
    for i in range(n):
        t = np.arange(int(RATE * (0.3 + 0.05 * i))) / RATE
        path = folder / f"c{i}.wav"
        sf.write(path, (0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t)).astype(np.float32), RATE)
        rows.append({"track_id": f"c{i}", "audio_path": str(path)})
    return pd.DataFrame(rows)


def run_stage(launcher, work, site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(site)]), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(launcher, cwd=work, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_extract_stage_runs_the_plugin_alone_and_under_torchrun(site, tmp_path):
    """The real stages with the plugin only installed (nothing in this repo names it): the
    matrix equals the plugin's own `embed` on each decoded clip, and torchrun's is the same."""
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    tracks = write_clips(tmp_path, 5)
    tracks.to_parquet(work / "data" / "tracks.parquet")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(backends=["band_energy"], band_energy=SECTION)
    params["evaluate"]["diversity_space"] = "band_energy"
    params["controls"].update(shuffle=[], unordered=[])
    params["extract"].update(batch_size=2, shard_batches=1)
    write_params(work, params)

    run_stage([sys.executable, "-m", "stages.code"], work, site)
    assert (
        json.loads((work / "data/code/extract-band_energy.json").read_text())["backend"]["distribution"]
        == "audiorec-band-energy"
    )
    run_stage([sys.executable, "-m", "stages.extract", "--backend", "band_energy"], work, site)
    single = (work / "data/embeddings/band_energy.npy").read_bytes()
    assert json.loads((work / "metrics/extract/band_energy.json").read_text())["tracks"] == 5

    sys.path.insert(0, str(site))
    try:
        from audiorec_band_energy import BandEnergyBackend
    finally:
        sys.path.remove(str(site))
    model = BandEnergyBackend(n_bands=8, frame=256, sample_rate=RATE)
    direct = np.stack([model.embed(audio.load(path, RATE, 30.0)) for path in tracks["audio_path"]])
    np.testing.assert_array_equal(np.load(work / "data/embeddings/band_energy.npy"), direct)
    assert len(np.unique(direct, axis=0)) == 5

    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run_stage([*launcher, "-m", "stages.extract", "--backend", "band_energy"], work, site)
    assert (work / "data/embeddings/band_energy.npy").read_bytes() == single
