"""The extraction engine in process (audiorec/backends/engine.py): shards, resume, fingerprints,
the settings' checks, a backend without audio and two torchrun-like ranks.

Every vector is checked against one computed here from the file with soundfile, never against
the engine's own output: `Probe` embeds a track as [mean, samples, place in its batch, batch
size], so a track computed in another batch, another crop or another row shows at once.
The subprocess tests of tests/test_extraction.py (a SIGKILL, real torchrun) cover the same
paths end to end; these run in the test process, where mutmut can run them too."""

import io
import json
import logging
import multiprocessing
import os
import shutil
import socket
import sys
import time
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torch.distributed as dist  # at the top: imported once, and preloaded by mutmut's fork server

from audiorec import backends
from audiorec.backends import engine
from audiorec.backends.base import ExtractionError, record_failure
from audiorec.backends.engine import Ranks, ShardStore, code_digest, run_fingerprint, source_file, tracks_digest

RATE = 8000


def clips(folder, seconds, first=0):
    """Seeded noise WAVs of the given lengths, t000.wav... (numbered from `first`); their tracks table."""
    rows = []
    for i, length in enumerate(seconds, first):
        path = folder / f"t{i:03d}.wav"
        sf.write(path, np.random.default_rng(i).uniform(-0.5, 0.5, int(length * RATE)).astype(np.float32), RATE)
        rows.append({"track_id": f"t{i:03d}", "audio_path": str(path)})
    return pd.DataFrame(rows)


def expected(tracks, batch_size, max_seconds, bad=()):
    """What Probe must give, from soundfile alone: batches of `batch_size` consecutive rows from
    row 0, the `bad` rows (files that do not decode) left out of their batch and NaN."""
    out = np.full((len(tracks), 4), np.nan, np.float32)
    for start in range(0, len(tracks), batch_size):
        good = [row for row in range(start, min(start + batch_size, len(tracks))) if row not in bad]
        for place, row in enumerate(good):
            wave = sf.read(tracks["audio_path"].iloc[row], dtype="float32")[0][: int(round(max_seconds * RATE))]
            out[row] = [wave.mean(), len(wave), place, len(good)]
    return out


class Probe(backends.AudioBackend):
    """[mean, samples, place in the batch, batch size] of each track; records what it is asked."""

    name = "probe"
    sample_rate = RATE
    dim = 4

    def __init__(self, fail_at_batch=None):
        self.batches = []  # tracks per embed_batch call
        self.decoded_paths = []
        self.workers = []
        self.devices = []
        self.fail_at_batch = fail_at_batch

    def embed(self, waveform):
        raise AssertionError("the engine embeds whole batches")

    def embed_batch(self, waveforms):
        self.batches.append(len(waveforms))
        if len(self.batches) == self.fail_at_batch:
            raise RuntimeError("the model crashed")
        return np.array([[w.mean(), len(w), place, len(waveforms)] for place, w in enumerate(waveforms)], np.float32)

    def decoded(self, paths, max_seconds, depth, workers=1):
        self.decoded_paths.extend(paths)
        self.workers.append(workers)
        return super().decoded(paths, max_seconds, depth, workers)

    def use_device(self, device, dtype, local_rank=0):
        self.devices.append((device, dtype, local_rank))


@pytest.fixture(autouse=True)
def one_process(monkeypatch):
    """One process, rank 0, whatever torchrun variables the caller's environment holds."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def bars(monkeypatch):
    """The progress bars extract opens, drawn (into a buffer) even where TQDM_DISABLE is set."""
    opened = []

    class Recorded(engine.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "disable": False, "file": io.StringIO()})
            opened.append(self)

    monkeypatch.setattr(engine, "tqdm", Recorded)
    return opened


def shard_files(root):
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def test_shards_hold_each_tracks_vector_and_a_rerun_loads_them_skipped_tracks_included(tmp_path, caplog, bars):
    """7 tracks in shards of 2 batches of 2; one file does not decode; max_seconds crops two."""
    caplog.set_level(logging.INFO, logger=engine.__name__)  # a malformed log call fails the test
    tracks = clips(tmp_path, [0.05, 0.1, 0.2, 0.05, 0.3, 0.15, 0.1])
    (tmp_path / "t002.wav").write_bytes(b"")
    root = tmp_path / "not" / "there" / "yet"
    settings = dict(
        max_seconds=0.125, batch_size=2, shard_batches=2, on_error="skip", resume_root=root, identity={"n": 1}
    )
    probe = Probe()
    before = time.perf_counter()
    embeddings, stats, skipped = backends.extract(probe, tracks, workers=2, **settings)
    wall = time.perf_counter() - before

    np.testing.assert_array_equal(embeddings, expected(tracks, 2, 0.125, bad={2}))
    assert probe.batches == [2, 1, 2, 1]  # the batch of the bad track holds the good one only
    assert probe.decoded_paths == tracks["audio_path"].tolist() and probe.workers == [2]
    assert probe.devices == [("auto", "float32", 0)]
    assert [(s["row"], s["track_id"], s["audio_path"]) for s in skipped] == [(2, "t002", str(tmp_path / "t002.wav"))]
    assert skipped[0]["reason"].startswith("cannot decode: ")
    assert (stats["tracks"], stats["skipped_tracks"], stats["dim"]) == (7, 1, 4)
    assert 0 <= stats["timing"]["seconds"] <= wall + 0.01
    [folder] = root.iterdir()
    names = shard_files(folder)
    assert [name[:12] for name in names] == ["shard-00000-", "shard-00001-"] and all(n.endswith(".npz") for n in names)
    assert [(bar.total, bar.initial, bar.n) for bar in bars] == [(7, 0, 7)]

    again = Probe()
    embeddings2, _, skipped2 = backends.extract(again, tracks, workers=1, **settings)  # workers: decoding threads only
    assert again.batches == [] and again.decoded_paths == []  # both shards loaded, nothing decoded
    assert embeddings2.dtype == np.float32
    np.testing.assert_array_equal(embeddings2, embeddings)
    assert skipped2 == skipped  # the skipped track and its reason come back from the shard
    assert [(bar.total, bar.initial, bar.n) for bar in bars[1:]] == [(7, 7, 7)]


def test_a_run_that_crashed_resumes_from_its_finished_shards(tmp_path, bars):
    tracks = clips(tmp_path, [0.05 + 0.01 * i for i in range(10)])  # shards of 4: rows 0-3, 4-7, 8-9
    settings = dict(max_seconds=1.0, batch_size=2, shard_batches=2, resume_root=tmp_path / "resume")
    crashing = Probe(fail_at_batch=4)
    with pytest.raises(RuntimeError, match="the model crashed"):
        backends.extract(crashing, tracks, **settings)
    [folder] = (tmp_path / "resume").iterdir()
    assert [name[:12] for name in shard_files(folder)] == ["shard-00000-"]  # no partial shard 1, no temp file

    resumed = Probe()
    embeddings, _, skipped = backends.extract(resumed, tracks, **settings)
    assert resumed.batches == [2, 2, 2]  # shards 1 and 2 only, in the batches of an uninterrupted run
    assert resumed.decoded_paths == tracks["audio_path"].iloc[4:].tolist()
    assert [(bar.total, bar.initial, bar.n) for bar in bars[1:]] == [(10, 4, 10)]
    whole, _, _ = backends.extract(Probe(), tracks, max_seconds=1.0, batch_size=2, shard_batches=2)
    np.testing.assert_array_equal(embeddings, whole)
    np.testing.assert_array_equal(embeddings, expected(tracks, 2, 1.0))
    assert skipped == []


def corrupt(path, how):
    with np.load(path) as good:
        arrays = {key: good[key] for key in good.files}
    if how == "garbage":
        path.write_bytes(b"not a shard at all" * 10)
        return
    if how == "rows":
        arrays["embeddings"] = arrays["embeddings"][:-1]
    elif how == "float64":
        arrays["embeddings"] = arrays["embeddings"].astype(np.float64)
    elif how == "pickled":  # a pickle can run code: never loaded
        arrays["failure_reasons"] = np.array(["x"] * len(arrays["failure_rows"]), dtype=object)
    elif how.startswith("no "):
        del arrays[how[3:]]
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def test_a_shard_that_is_unreadable_or_not_this_runs_shape_is_computed_again(tmp_path):
    tracks = clips(tmp_path, [0.05 + 0.01 * i for i in range(16)])
    (tmp_path / "t009.wav").write_bytes(b"")  # a skipped track in shard 4, so its failure list is not empty
    settings = dict(max_seconds=1.0, batch_size=2, shard_batches=1, on_error="skip", resume_root=tmp_path / "resume")
    first, _, skipped = backends.extract(Probe(), tracks, **settings)
    [folder] = (tmp_path / "resume").iterdir()
    paths = sorted(folder.iterdir())
    damage = ["garbage", "rows", "float64", "no embeddings", "pickled", "no failure_rows", "no failure_reasons"]
    for path, how in zip(
        paths, damage
    ):  # shards 0-6 damaged (shard 4, with the skipped track, pickled), shard 7 intact
        corrupt(path, how)

    probe = Probe()
    embeddings, _, skipped2 = backends.extract(probe, tracks, **settings)
    assert probe.decoded_paths == tracks["audio_path"].iloc[:14].tolist()  # every damaged shard again, shard 7 loaded
    np.testing.assert_array_equal(embeddings, first)
    np.testing.assert_array_equal(embeddings, expected(tracks, 2, 1.0, bad={9}))
    assert skipped2 == skipped and [s["row"] for s in skipped] == [9]
    again = Probe()
    backends.extract(again, tracks, **settings)
    assert again.batches == []  # the shards computed again were written whole


@pytest.mark.parametrize("cut", [0, 200])  # an empty file (EOFError), a cut zip (zipfile.BadZipFile)
def test_a_cut_shard_is_computed_again(tmp_path, cut):
    tracks = clips(tmp_path, [0.05] * 4)
    settings = dict(batch_size=2, shard_batches=1, resume_root=tmp_path / "resume")
    backends.extract(Probe(), tracks, **settings)
    shard = sorted((tmp_path / "resume").rglob("shard-*.npz"))[0]
    shard.write_bytes(shard.read_bytes()[:cut])
    embeddings, _, _ = backends.extract(Probe(), tracks, **settings)
    np.testing.assert_array_equal(embeddings, expected(tracks, 2, 30.0))


def test_what_changes_the_result_starts_over_and_what_does_not_resumes(tmp_path):
    """Each setting that changes a vector, and the catalogue, gets its own shards (the old ones
    deleted); the identity's key order and the decoding threads do not; a replaced audio file
    invalidates its own shard only."""
    tracks = clips(tmp_path, [0.05, 0.1, 0.2, 0.15, 0.3, 0.25])
    root = tmp_path / "resume"
    (root / "0123456789abcdef").mkdir(parents=True)  # shards of a run with other settings
    (root / "0123456789abcdef" / "shard-00000-0000000000000000.npz").write_bytes(b"old")
    (root / "notes.txt").write_text("not a run's folder")  # what cannot be removed does not stop the run
    base = dict(max_seconds=0.125, batch_size=2, shard_batches=1, dtype="float32", identity={"model": "a", "layer": 1})

    def run(tracks=tracks, **changes):
        probe = Probe()
        embeddings, _, _ = backends.extract(probe, tracks, resume_root=root, **{**base, **changes})
        folders = [path for path in root.iterdir() if path.is_dir()]
        assert len(folders) == 1, folders  # the shards of every other fingerprint are gone
        return probe, embeddings, folders[0]

    probe, embeddings, folder = run()
    assert sum(probe.batches) == 6
    np.testing.assert_array_equal(embeddings, expected(tracks, 2, 0.125))
    for changes in (dict(identity={"layer": 1, "model": "a"}), dict(workers=3)):
        probe, again, same = run(**changes)
        assert probe.batches == [] and same == folder, changes
        np.testing.assert_array_equal(again, embeddings)
    for changes in (
        dict(max_seconds=0.25),
        dict(batch_size=3),
        dict(shard_batches=3),
        dict(dtype="bfloat16"),
        dict(identity={"model": "b", "layer": 1}),
        dict(identity=None),
    ):
        probe, changed, other = run(**changes)
        assert sum(probe.batches) == 6 and other != folder, changes
        settings = {**base, **changes}
        np.testing.assert_array_equal(changed, expected(tracks, settings["batch_size"], settings["max_seconds"]))
        probe, _, folder = run()  # back to the first settings: their shards were deleted, all computed again
        assert sum(probe.batches) == 6
    more = pd.concat([tracks, clips(tmp_path, [0.1], first=6)], ignore_index=True)
    probe, _, other = run(more)
    assert sum(probe.batches) == 7 and other != folder  # a catalogue of another size starts over
    probe, _, folder = run()
    assert sum(probe.batches) == 6

    sf.write(tracks["audio_path"].iloc[3], np.full(400, 0.25, np.float32), RATE)  # row 3: shard 1 of 3
    probe, replaced, same = run()
    assert probe.decoded_paths == tracks["audio_path"].iloc[2:4].tolist() and same == folder
    np.testing.assert_array_equal(replaced, expected(tracks, 2, 0.125))
    assert replaced[3].tolist() == [0.25, 400, 1, 2]
    # Replaced by a file of the same size (same format and length, other samples): only its time differs.
    path = tracks["audio_path"].iloc[4]
    size, stamp = os.stat(path).st_size, os.stat(path).st_mtime_ns
    sf.write(path, np.full(int(0.3 * RATE), -0.125, np.float32), RATE)
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))  # a clock coarser than the test must not hide the change
    assert os.stat(path).st_size == size
    probe, same_size, _ = run()
    assert probe.decoded_paths == tracks["audio_path"].iloc[4:6].tolist()
    np.testing.assert_array_equal(same_size, expected(tracks, 2, 0.125))
    assert same_size[4][0] == -0.125


def test_fail_stops_at_the_first_bad_track_and_at_one_a_skip_run_masked_before(tmp_path):
    tracks = clips(tmp_path, [0.05] * 8)
    for bad in ("t003.wav", "t006.wav"):
        (tmp_path / bad).write_bytes(b"")
    message = r"^probe: track t003 \(row 3 of tracks.parquet, .*t003.wav\): cannot decode: .*extract.on_error: skip"
    probe = Probe()
    with pytest.raises(ExtractionError, match=message):
        backends.extract(probe, tracks, batch_size=2, shard_batches=1)
    assert probe.batches == [2]  # at once: nothing after the batch of the bad track

    settings = dict(batch_size=2, shard_batches=1, resume_root=tmp_path / "resume", identity={})
    backends.extract(Probe(), tracks, on_error="skip", **settings)
    loaded = Probe()
    with pytest.raises(ExtractionError, match=message):  # the lowest failed row of the loaded shards
        backends.extract(loaded, tracks, on_error="fail", **settings)
    assert loaded.batches == []


class Table(backends.Backend):
    """A backend without audio: vectors from a table; the tracks it lacks are its failures."""

    name = "table"
    dim = 2

    def __init__(self, vectors, covers_all_tracks=True):
        self.vectors = vectors
        self.covers_all_tracks = covers_all_tracks
        self.calls = []

    def embed_tracks(self, tracks, max_seconds=30.0, batch_size=32, failures=None):
        self.calls.append((tracks["track_id"].tolist(), max_seconds, batch_size))
        out = np.full((len(tracks), self.dim), np.nan, np.float32)
        for row in reversed(range(len(tracks))):  # failures found last row first
            if tracks["track_id"].iloc[row] in self.vectors:
                out[row] = self.vectors[tracks["track_id"].iloc[row]]
            else:
                record_failure(self.name, tracks, row, "not in the table", failures)
        return out


def test_a_backend_without_audio_gets_the_whole_table_and_the_policy_applies_to_what_it_lacks():
    tracks = pd.DataFrame({"track_id": ["a", "x", "b", "y"], "audio_path": ["a.mp3", "x.mp3", "b.mp3", "y.mp3"]})
    vectors = {"a": [1, 2], "b": [3, 4]}
    want = np.array([[1, 2], [np.nan, np.nan], [3, 4], [np.nan, np.nan]], np.float32)
    lacking = [(1, "x", "x.mp3", "not in the table"), (3, "y", "y.mp3", "not in the table")]
    listed = lambda skipped: [(s["row"], s["track_id"], s["audio_path"], s["reason"]) for s in skipped]  # noqa: E731

    partial = Table(vectors, covers_all_tracks=False)  # a precomputed file may lack tracks: masked even under fail
    embeddings, stats, skipped = backends.extract(partial, tracks, max_seconds=12.5, batch_size=7, on_error="fail")
    assert partial.calls == [(["a", "x", "b", "y"], 12.5, 7)]
    np.testing.assert_array_equal(embeddings, want)
    assert listed(skipped) == lacking and stats["skipped_tracks"] == 2

    embeddings, _, skipped = backends.extract(Table(vectors), tracks, on_error="skip")
    np.testing.assert_array_equal(embeddings, want)
    assert listed(skipped) == lacking
    with pytest.raises(
        ExtractionError, match=r"^table: track x \(row 1 of tracks.parquet, x.mp3\): not in the table\. Replace"
    ):
        backends.extract(Table(vectors), tracks, on_error="fail")
    complete, _, skipped = backends.extract(Table({**vectors, "x": [5, 6], "y": [7, 8]}), tracks, on_error="fail")
    assert complete.tolist() == [[1, 2], [5, 6], [3, 4], [7, 8]] and skipped == []


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("on_error", "sometimes", r"^extract.on_error='sometimes'; allowed: fail, skip$"),
        ("batch_size", 0, r"^extract.batch_size=0; must be an integer >= 1$"),
        ("shard_batches", 0, r"^extract.shard_batches=0; must be an integer >= 1$"),
        ("workers", 0, r"^extract.workers=0; must be an integer >= 1 \(decoding threads\)$"),
    ],
)
def test_each_bad_setting_is_refused_by_name_before_any_work(tmp_path, setting, value, message):
    probe = Probe()
    with pytest.raises(ValueError, match=message):
        backends.extract(probe, pd.DataFrame({"track_id": ["a"], "audio_path": ["a.wav"]}), **{setting: value})
    assert probe.devices == []
    tracks = clips(tmp_path, [0.05] * 3)
    smallest = dict(batch_size=1, shard_batches=1, workers=1)  # 1 is allowed for each
    np.testing.assert_array_equal(backends.extract(Probe(), tracks, **smallest)[0], expected(tracks, 1, 30.0))


def test_tracks_digest_sees_ids_paths_order_and_file_sizes_and_times_only(tmp_path):
    tracks = clips(tmp_path, [0.05, 0.1, 0.05])
    digest = tracks_digest(tracks)
    shuffled_index = tracks.set_index(pd.Index([7, 8, 9])).assign(genre=["x", "y", "z"])
    assert tracks_digest(shuffled_index) == digest  # other columns and the index do not count
    renamed = tracks.assign(track_id=["t000", "t001", "other"])
    shutil.copy(tracks["audio_path"][2], tmp_path / "copy.wav")  # the same bytes elsewhere
    moved = tracks.assign(audio_path=[tracks["audio_path"][0], tracks["audio_path"][1], str(tmp_path / "copy.wav")])
    swapped = tracks.iloc[[1, 0, 2]]
    digests = {digest, tracks_digest(renamed), tracks_digest(moved), tracks_digest(swapped)}
    sf.write(tracks["audio_path"][2], np.zeros(500, np.float32), RATE)  # same path, another size
    digests.add(tracks_digest(tracks))
    assert len(digests) == 5
    missing = pd.DataFrame({"track_id": ["m"], "audio_path": [str(tmp_path / "m.wav")]})
    gone = tracks_digest(missing)  # a missing file is no error: its shard fails to decode later
    (tmp_path / "m.wav").write_bytes(b"x")  # a file of 1 byte is not a missing file
    assert tracks_digest(missing) != gone
    (tmp_path / "m.wav").unlink()
    assert tracks_digest(missing) == gone


PLUGIN = """
import numpy as np
from audiorec.backends import AudioBackend


class PluginBackend(AudioBackend):
    name = "plugin"
    sample_rate = 8000
    dim = 1

    def embed(self, waveform):
        return np.ones(1, np.float32)
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A backend class from a file outside audiorec (as a plugin package's), and copies of the
    audiorec sources its values depend on, which a test may edit: base.py (its parent class) and audio.py."""
    import importlib.util

    import audiorec.audio
    import audiorec.backends.base

    source = tmp_path / "engine_test_plugin.py"
    source.write_text(PLUGIN)
    spec = importlib.util.spec_from_file_location("engine_test_plugin", source)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "engine_test_plugin", module)
    spec.loader.exec_module(module)
    copies = {}
    for name, real in (("base", audiorec.backends.base), ("audio", audiorec.audio)):
        copies[name] = tmp_path / "copies" / name / f"{name}.py"
        copies[name].parent.mkdir(parents=True)
        shutil.copyfile(real.__file__, copies[name])
        monkeypatch.setattr(real, "__file__", str(copies[name]))
    return module.PluginBackend, {"plugin": source, **copies}


def test_code_digest_follows_the_plugins_class_and_the_audiorec_code_it_runs(plugin):
    cls, files = plugin
    backend = cls()
    assert source_file(cls) == str(files["plugin"])
    seen = [code_digest(backend)]
    for name in ("plugin", "base", "audio"):
        with open(files[name], "a") as handle:
            handle.write("\n# changed\n")
        seen.append(code_digest(backend))
        assert code_digest(backend) == seen[-1]  # the same code, the same digest
    assert len(set(seen)) == 4, seen


def test_a_class_without_a_source_file_hashes_the_rest(plugin):
    _, files = plugin
    fileless = type(
        "Fileless",
        (backends.AudioBackend,),
        {"__module__": "no_such_module", "name": "x", "dim": 1, "sample_rate": RATE, "embed": lambda self, w: w[:1]},
    )
    assert source_file(fileless) is None  # as a class typed into `python -c`
    digest = code_digest(fileless())
    with open(files["base"], "a") as handle:
        handle.write("\n# changed\n")
    assert code_digest(fileless()) != digest


def test_run_fingerprint_changes_with_everything_that_changes_a_vector_and_nothing_else(plugin, tmp_path):
    cls, files = plugin
    backend = cls()
    identity = {"model": tmp_path / "weights", "layer": 1}  # a Path: no JSON type
    settings = {"max_seconds": 30.0, "batch_size": 32, "shard_size": 1024, "dtype": "float32"}
    fingerprint = run_fingerprint(backend, identity, settings, 100)
    reordered = run_fingerprint(backend, dict(reversed(identity.items())), dict(reversed(settings.items())), 100)
    assert reordered == fingerprint  # the order of params.yaml's keys does not count
    renamed = cls()
    renamed.name = "other"
    on_gpu = cls()
    on_gpu.device_kind = "cuda"
    changed = [
        run_fingerprint(renamed, identity, settings, 100),
        run_fingerprint(on_gpu, identity, settings, 100),
        run_fingerprint(backend, {**identity, "model": tmp_path / "other"}, settings, 100),
        run_fingerprint(backend, {**identity, "layer": 2}, settings, 100),
        run_fingerprint(backend, identity, {**settings, "dtype": "bfloat16"}, 100),
        run_fingerprint(backend, identity, settings, 101),
    ]
    with open(files["plugin"], "a") as handle:
        handle.write("\n# changed\n")
    changed.append(run_fingerprint(backend, identity, settings, 100))
    assert len({fingerprint, *changed}) == 1 + len(changed), changed


def test_shard_store_writes_whole_shards_and_keeps_only_its_own_folder(tmp_path):
    root = tmp_path / "resume"
    store = ShardStore(root, "f" * 16)
    assert store.folder == root / ("f" * 16)
    tracks = pd.DataFrame({"track_id": ["a", "b"], "audio_path": ["a.wav", "b.wav"]})
    path = store.path(3, tracks)
    assert path == root / ("f" * 16) / f"shard-00003-{tracks_digest(tracks)}.npz"
    assert store.path(4, tracks) != path and store.path(3, tracks.iloc[::-1]) != path
    assert store.load(path, 2, 3) is None  # not written yet
    rows = np.arange(6, dtype=np.float32).reshape(2, 3)
    rows[1] = np.nan
    store.save(path, rows, {11: "cannot decode: é", 10: "the model returned NaN or Inf"})
    store.save(store.path(4, tracks), rows, {})  # a second shard in the same folder
    assert sorted(p.name for p in store.folder.iterdir()) == sorted(
        [path.name, store.path(4, tracks).name]
    )  # no temp files
    embeddings, failures = store.load(path, 2, 3)
    np.testing.assert_array_equal(embeddings, rows)
    assert embeddings.dtype == np.float32
    assert failures == {10: "the model returned NaN or Inf", 11: "cannot decode: é"}
    assert all(type(row) is int for row in failures)
    assert store.load(store.path(4, tracks), 2, 3)[1] == {}
    assert store.load(path, 3, 3) is None and store.load(path, 2, 4) is None  # another run's shape
    (root / "other").mkdir()
    (root / "other" / "x.npz").write_bytes(b"x")
    ShardStore(root, "f" * 16).discard_others()
    assert [p.name for p in root.iterdir()] == ["f" * 16]
    ShardStore(tmp_path / "never made", "f" * 16).discard_others()  # no folder yet: nothing to do


# --- two ranks, as under torchrun (fork, gloo on this machine) ----------------------------


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def two_ranks(monkeypatch):
    """This process is rank 0 of 2; `start(target)` forks rank 1 (local rank 1), which runs
    `target` and exits. A rank that fails makes the other fail within the shortened gather timeout."""
    monkeypatch.setattr(engine, "GATHER_TIMEOUT", timedelta(seconds=60))
    for name, value in dict(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE="2", RANK="0", LOCAL_RANK="0"
    ).items():
        monkeypatch.setenv(name, value)
    started = []

    def rank_1(target):
        os.environ.update(RANK="1", LOCAL_RANK="1")
        target()

    def start(target):
        child = multiprocessing.get_context("fork").Process(target=rank_1, args=(target,))
        child.start()
        started.append(child)
        return child

    yield start
    if dist.is_initialized():
        dist.destroy_process_group()
    for child in started:  # joined by a passing test; after a failure, rank 1 stops soon or is ended
        child.join(timeout=10)
        if child.is_alive():
            child.kill()


def test_join_connects_the_ranks_over_gloo_with_the_gather_timeout(two_ranks):
    def other():
        Ranks(1, 2, 1).join()
        dist.barrier()
        dist.destroy_process_group()

    child = two_ranks(other)
    ranks = Ranks.from_env()
    ranks.join()
    ranks.join()  # joined already: nothing to do
    assert dist.is_initialized() and (dist.get_rank(), dist.get_world_size()) == (0, 2)
    assert dist.get_backend() == "gloo"  # even on GPUs: only finished rows cross ranks, once, on the CPU
    group = dist.distributed_c10d._get_default_group()
    assert group._get_backend(torch.device("cpu")).options._timeout == engine.GATHER_TIMEOUT
    dist.barrier()
    dist.destroy_process_group()
    child.join(timeout=60)
    assert child.exitcode == 0


def test_two_ranks_split_the_shards_and_rank_0_gathers_the_whole_matrix(two_ranks, tmp_path, monkeypatch):
    tracks = clips(tmp_path, [0.05 + 0.02 * i for i in range(7)])  # shards of 2: 0, 2 on rank 0; 1, 3 on rank 1
    settings = dict(max_seconds=1.0, batch_size=2, shard_batches=1, resume_root=tmp_path / "resume")
    report = tmp_path / "rank1.json"

    def other():
        probe = Probe()
        result = backends.extract(probe, tracks, **settings)
        report.write_text(json.dumps({"result": result, "paths": probe.decoded_paths, "devices": probe.devices}))

    child = two_ranks(other)
    probe = Probe()
    embeddings, stats, skipped = backends.extract(probe, tracks, **settings)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert not dist.is_initialized()  # the group is left once the rows are gathered
    np.testing.assert_array_equal(embeddings, expected(tracks, 2, 1.0))
    assert stats["tracks"] == 7 and skipped == []
    paths = tracks["audio_path"].tolist()
    assert probe.decoded_paths == paths[0:2] + paths[4:6] and probe.devices == [("auto", "float32", 0)]
    rank_1 = json.loads(report.read_text())
    assert rank_1 == {"result": None, "paths": paths[2:4] + paths[6:7], "devices": [["auto", "float32", 1]]}

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):  # one process now: the shards of both ranks load
        monkeypatch.delenv(name)
    alone = Probe()
    single, _, _ = backends.extract(alone, tracks, **settings)
    assert alone.batches == []
    np.testing.assert_array_equal(single, embeddings)
