"""Precomputed backends: files of vectors aligned to tracks.parquet by track id.

Every file here is written by hand (not by audiorec's own writer, except in the round-trip
test), with its rows shuffled, two tracks of the catalogue missing and two ids the catalogue
does not have; the expected matrix is the reference matrix by construction.
"""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from audiorec import backends
from audiorec.backends.precomputed import PrecomputedFileError, write
from audiorec.backends.sources import fingerprint
from audiorec.config import ParamsError, validate
from audiorec.io import masked_rows
from audiorec.workflow.worktree import REPO, write_params

CATALOGUE = [f"t{i:02d}" for i in range(10)]
LACKED = [3, 7]  # catalogue rows the files leave out
EXTRA = ["x1", "x2"]  # ids the catalogue does not have
DIM = 4


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory with data/precomputed/ (paths are relative to the repo root)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def tracks():
    return pd.DataFrame({"track_id": CATALOGUE, "audio_path": [f"/no/audio/{i}.mp3" for i in CATALOGUE]})


@pytest.fixture
def reference():
    """Values over 16 orders of magnitude: text formats must give back every float32 bit."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((len(CATALOGUE), DIM)) * 10.0 ** rng.uniform(-8, 8, (len(CATALOGUE), DIM))).astype(
        np.float32
    )


def file_rows(reference):
    """The file's (ids, vectors): the catalogue minus LACKED plus EXTRA, in shuffled order."""
    kept = [i for i in range(len(CATALOGUE)) if i not in LACKED]
    ids = [CATALOGUE[i] for i in kept] + EXTRA
    vectors = np.concatenate([reference[kept], np.full((len(EXTRA), DIM), 0.5, dtype=np.float32)])
    order = np.random.default_rng(1).permutation(len(ids))
    return [ids[i] for i in order], vectors[order]


def text_line(cells):
    return "\t".join(cells) + "\n"


def write_by_hand(folder, fmt, ids, vectors):
    """One file per format as someone else's tool would write it; returns the backend's section."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "tsv":  # Music4All-Onion style: id first, tab-separated, shortest exact decimals
        lines = [text_line(["id"] + [str(d) for d in range(DIM)])]
        lines += [text_line([i] + [repr(float(v)) for v in row]) for i, row in zip(ids, vectors)]
        (folder / "vectors.tsv").write_text("".join(lines))
        return {"format": "tsv", "file": "vectors.tsv", "dim": DIM}
    if fmt == "csv":  # the id column in the middle, found by its name
        lines = ["a,b,track,c,d\n"] + [
            ",".join([repr(float(v)) for v in row[:2]] + [i] + [repr(float(v)) for v in row[2:]]) + "\n"
            for i, row in zip(ids, vectors)
        ]
        (folder / "vectors.csv").write_text("".join(lines))
        return {"format": "csv", "file": "vectors.csv", "id_column": "track", "dim": DIM}
    if fmt == "npy":  # the original study: embeddings/<model>.npy + trackid_sorted.csv (index, trackid)
        np.save(folder / "model.npy", vectors)
        (folder / "trackid_sorted.csv").write_text(",trackid\n" + "".join(f"{n},{i}\n" for n, i in enumerate(ids)))
        return {"format": "npy", "file": "model.npy", "ids": "trackid_sorted.csv", "id_column": "trackid", "dim": DIM}
    table = pa.table(
        {"track": ids, "emb": pa.array([list(map(float, row)) for row in vectors], pa.list_(pa.float32()))}
    )
    pq.write_table(table, folder / "vectors.parquet")
    return {"format": "parquet", "file": "vectors.parquet", "id_column": "track", "vector_column": "emb", "dim": DIM}


@pytest.mark.parametrize("fmt", ["tsv", "csv", "npy", "parquet"])
def test_each_format_aligns_shuffled_incomplete_overcomplete_ids(workdir, tracks, reference, fmt):
    ids, vectors = file_rows(reference)
    section = write_by_hand(workdir / "data" / "precomputed" / "vecs", fmt, ids, vectors)
    # on_error: fail, the default: tracks a file lacks are masked all the same.
    embeddings, stats, skipped = backends.extract(backends.create("vecs", **section), tracks, on_error="fail")

    assert masked_rows(embeddings).tolist() == [i in LACKED for i in range(len(CATALOGUE))]
    kept = [i for i in range(len(CATALOGUE)) if i not in LACKED]
    assert embeddings[kept].tobytes() == reference[kept].tobytes()
    assert [(entry["row"], entry["track_id"]) for entry in skipped] == [(3, "t03"), (7, "t07")]
    assert all(section["file"] in entry["reason"] for entry in skipped)
    assert stats["dim"] == DIM and stats["tracks"] == 10 and stats["skipped_tracks"] == 2
    assert stats["file_rows"] == 10
    assert stats["ids_not_in_catalogue"] == 2 and stats["ids_not_in_catalogue_first"] == EXTRA


def test_rows_of_ids_outside_the_catalogue_are_not_checked(workdir, tracks, reference):
    ids = CATALOGUE + ["x1", "x1"]
    vectors = np.concatenate([reference, np.full((2, DIM), np.nan, dtype=np.float32)])
    section = write_by_hand(workdir / "data" / "precomputed" / "vecs", "tsv", ids, vectors)
    embeddings, stats, skipped = backends.extract(backends.create("vecs", **section), tracks)
    assert embeddings.tobytes() == reference.tobytes() and skipped == []
    assert stats["ids_not_in_catalogue"] == 2


def test_the_writer_round_trips_every_format(workdir, tracks, reference):
    ids, vectors = file_rows(reference)
    for fmt, file in (("tsv", "v.tsv"), ("csv", "v.csv"), ("npy", "v.npy"), ("parquet", "v.parquet")):
        folder = workdir / "data" / "precomputed" / fmt
        write(np.array(ids), vectors, fmt, folder / file, folder / "ids.tsv" if fmt == "npy" else None)
        section = {"format": fmt, "file": file, "dim": DIM, **({"ids": "ids.tsv"} if fmt == "npy" else {})}
        embeddings, _, skipped = backends.extract(backends.create(fmt, **section), tracks)
        assert len(skipped) == 2
        assert np.array_equal(embeddings, np.where(masked_rows(embeddings)[:, None], np.nan, reference), equal_nan=True)


# --- refusals: one line each, naming the file, the row and the fix ---------------------------------

TSV_HEADER = "id\t0\t1\t2\t3\n"


def tsv(*rows):
    return TSV_HEADER + "".join(text_line(row.split()) for row in rows)


REFUSALS = {
    "duplicate id": (
        "tsv",
        tsv("t00 1 2 3 4", "t01 1 2 3 4", "t02 1 2 3 4", "t01 5 6 7 8"),
        r"vectors.tsv: line 5 repeats track t01 of line 3; keep one row per track id",
    ),
    "NaN": (
        "tsv",
        tsv("t00 1 2 3 4", "t01 1 nan 3 4"),
        (
            r"vectors.tsv: line 3 \(track t01\) holds NaN \(or a missing value\) in dimension 1; "
            r"fix the value, or drop the row"
        ),
    ),
    "Inf": (
        "tsv",
        tsv("t00 1 2 3 4", "t01 1 2 -inf 4"),
        (
            r"vectors.tsv: line 3 \(track t01\) holds -inf \(Inf, or beyond the float32 range\) "
            r"in dimension 2; fix the value"
        ),
    ),
    "beyond float32": (
        "tsv",
        tsv("t00 1 2 3 1e39"),
        r"vectors.tsv: line 2 \(track t00\) holds inf \(Inf, or beyond the float32 range\) in dimension 3",
    ),
    "not a number": (
        "tsv",
        tsv("t00 1 2 3 4", "t01 1 2 3 4", "t02 1 abc 3 4"),
        r"vectors.tsv: line 4, column '1': 'abc' is not a number; fix the value, or drop the row",
    ),
    "a line too wide": (
        "tsv",
        tsv("t00 1 2 3 4", "t01 1 2 3 4", "t02 1 2 3 4 5"),
        r"vectors.tsv: .*Expected 5 fields in line 4, saw 6; every line needs its track id and 4 values",
    ),
    "too few columns": (
        "tsv",
        "id\t0\t1\t2\n" + text_line(["t00", "1", "2", "3"]),
        r"vectors.tsv: 3 value columns besides 'id' but vecs.dim is 4; set vecs.dim: 3, or drop the columns",
    ),
    "no id column": (
        "tsv",
        "track\t0\t1\t2\t3\n" + text_line(["t00", "1", "2", "3", "4"]),
        r"vectors.tsv: no column 'id' \(its columns: track, 0, 1, 2, 3\); set vecs.id_column",
    ),
    "another dataset": (
        "tsv",
        tsv("a00 1 2 3 4", "a01 1 2 3 4"),
        (
            r"vectors.tsv: none of its 2 track ids is a track of tracks.parquet "
            r"\(its first: 'a00', the catalogue's first: 't00'\)"
        ),
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_bad_table_is_refused_in_one_line(workdir, tracks, case):
    _, text, message = REFUSALS[case]
    folder = workdir / "data" / "precomputed" / "vecs"
    folder.mkdir(parents=True)
    (folder / "vectors.tsv").write_text(text)
    with pytest.raises(PrecomputedFileError, match=message) as refused:
        backends.extract(backends.create("vecs", format="tsv", file="vectors.tsv", dim=DIM), tracks)
    assert "\n" not in str(refused.value) and "data/precomputed/vecs/vectors.tsv" in str(refused.value)


def npy_case(folder, matrix, ids):
    np.save(folder / "m.npy", matrix)
    (folder / "ids.csv").write_text("id\n" + "".join(f"{i}\n" for i in ids))
    return {"format": "npy", "file": "m.npy", "ids": "ids.csv", "dim": DIM}


def parquet_case(folder, vectors, ids):
    pq.write_table(pa.table({"id": ids, "vector": pa.array(vectors, pa.list_(pa.float64()))}), folder / "v.parquet")
    return {"format": "parquet", "file": "v.parquet", "dim": DIM}


ARRAY_REFUSALS = {
    "npy of another width": (
        lambda folder: npy_case(folder, np.ones((3, 3), np.float32), CATALOGUE[:3]),
        r"m.npy: shape \(3, 3\), but vecs.dim is 4; every row must hold 4 values \(set vecs.dim",
    ),
    "npy Inf": (
        lambda folder: npy_case(folder, np.array([[1, 2, 3, 4], [1, 2, np.inf, 4]], np.float32), CATALOGUE[:2]),
        r"m.npy: row 1 \(track t01\) holds inf \(Inf, or beyond the float32 range\) in dimension 2; fix the value",
    ),
    "npy duplicate id": (
        lambda folder: npy_case(folder, np.ones((3, 4), np.float32), ["t00", "t05", "t05"]),
        r"m.npy: row 2 repeats track t05 of row 1; keep one row per track id",
    ),
    "npy ids of another length": (
        lambda folder: npy_case(folder, np.ones((3, 4), np.float32), CATALOGUE[:2]),
        r"ids.csv: 2 ids for the 3 rows of .*m.npy; the ids file needs one id per matrix row, in row order",
    ),
    "parquet row of another width": (
        lambda folder: parquet_case(folder, [[1, 2, 3, 4], [1, 2, 3]], CATALOGUE[:2]),
        r"v.parquet: row 1 \(track t01\) holds 3 values but vecs.dim is 4; every row needs 4 values \(fix the row",
    ),
    "parquet row without a vector": (
        lambda folder: parquet_case(folder, [[1, 2, 3, 4], None], CATALOGUE[:2]),
        r"v.parquet: row 1 \(track t01\) holds no vector but vecs.dim is 4",
    ),
    "parquet NaN": (
        lambda folder: parquet_case(folder, [[1, 2, 3, 4], [1, None, 3, 4]], CATALOGUE[:2]),
        (
            r"v.parquet: row 1 \(track t01\) holds NaN \(or a missing value\) in dimension 1; "
            r"fix the value, or drop the row"
        ),
    ),
}


@pytest.mark.parametrize("case", ARRAY_REFUSALS)
def test_a_bad_array_file_is_refused_in_one_line(workdir, tracks, case):
    make, message = ARRAY_REFUSALS[case]
    folder = workdir / "data" / "precomputed" / "vecs"
    folder.mkdir(parents=True)
    section = make(folder)
    with pytest.raises(PrecomputedFileError, match=message) as refused:
        backends.extract(backends.create("vecs", **section), tracks)
    assert "\n" not in str(refused.value) and "data/precomputed/vecs/" in str(refused.value)


def test_a_missing_file_says_where_to_put_it(workdir, tracks):
    with pytest.raises(
        FileNotFoundError, match=r"vecs: data/precomputed/vecs/v.tsv does not exist; put the file there"
    ):
        backends.extract(backends.create("vecs", format="tsv", file="v.tsv", dim=DIM), tracks)


# --- params.yaml ------------------------------------------------------------------------------------


@pytest.fixture
def params():
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize(
    "section, message",
    [
        (
            {"format": "xlsx", "file": "v.xlsx", "dim": 4},
            r"onion.format='xlsx': Input should be 'tsv', 'csv', 'npy' or 'parquet'",
        ),
        (
            {"format": "tsv", "file": "/data/onion/v.tsv", "dim": 4},
            (
                r"onion.file='/data/onion/v.tsv': name a file inside data/precomputed/onion/ "
                r"\(copy, link or `dvc import-url` it there\)"
            ),
        ),
        ({"format": "tsv", "file": "../v.tsv", "dim": 4}, r"onion.file='../v.tsv': name a file inside"),
        (
            {"format": "npy", "file": "v.npy", "dim": 4},
            r"onion.ids=None: the npy format, and only it, names the file of its track ids in row order: add ids",
        ),
        (
            {"format": "tsv", "file": "v.tsv", "ids": "i.csv", "dim": 4},
            r"onion.ids='i.csv': the npy format, and only it, .*: remove ids for the tsv format",
        ),
        ({"format": "tsv", "file": "v.tsv", "dim": "104"}, r"onion.dim='104': Input should be a valid integer"),
        ({"format": "tsv", "file": "v.tsv"}, r"onion.dim is missing; add it to onion"),
        (
            {"format": "tsv", "file": "v.tsv", "dim": 4, "id_col": "x"},
            r"onion.id_col: unknown key \(did you mean id_column\?\); the keys of onion: format, file",
        ),
    ],
)
def test_a_precomputed_section_is_checked_before_any_stage_runs(params, section, message):
    with pytest.raises(ParamsError, match=message):
        validate({**params, "backends": ["mfcc", "onion"], "onion": section})


def test_a_precomputed_name_stands_beside_built_in_ones(params):
    controls = {**params["controls"], "shuffle": ["onion"], "unordered": ["onion"]}
    validate(
        {
            **params,
            "backends": ["mfcc", "onion"],
            "onion": {"format": "tsv", "file": "v.tsv", "dim": 4},
            "controls": controls,
            "evaluate": {**params["evaluate"], "diversity_space": "onion"},
        }
    )
    with pytest.raises(
        ParamsError,
        match=(
            r"unknown backend 'onion'; registered: .*; "
            r"or vectors from a file: a section `onion:` with format, file and dim"
        ),
    ):
        validate({**params, "backends": ["mfcc", "onion"], "controls": controls})


# --- what extract@<name> depends on ----------------------------------------------------------------


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_each_kind_of_backend_depends_on_its_own_files(workdir):
    folder = workdir / "data" / "precomputed" / "onion"
    folder.mkdir(parents=True)
    (folder / "v.tsv").write_text(tsv("t00 1 2 3 4"))
    assert fingerprint("mfcc") == {
        "kind": "built-in",
        "class": "audiorec.backends.mfcc:MFCCBackend",
        "files": {"audiorec/backends/mfcc.py": md5(REPO / "audiorec/backends/mfcc.py")},
    }
    assert fingerprint("onion") == {
        "kind": "precomputed",
        "files": {
            "audiorec/backends/precomputed.py": md5(REPO / "audiorec/backends/precomputed.py"),
            "data/precomputed/onion/v.tsv": md5(folder / "v.tsv"),
        },
    }
    before = fingerprint("onion")
    (folder / "v.tsv").write_text(tsv("t00 1 2 3 5"))
    assert fingerprint("onion") != before
    with pytest.raises(
        FileNotFoundError,
        match=r"'study' is neither built in nor an installed plugin, and data/precomputed/study/ does not exist",
    ):
        fingerprint("study")


def run(command, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", *command], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_extract_stage_writes_a_precomputed_backend_like_any_other(workdir, tracks, reference):
    """The real stages (sources, extract) in a working directory: the matrix, the masked
    tracks and the counts land where an audio backend's do."""
    ids, vectors = file_rows(reference)
    section = write_by_hand(workdir / "data" / "precomputed" / "onion", "npy", ids, vectors)
    tracks.to_parquet(workdir / "data" / "tracks.parquet")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(backends=["random", "onion"], onion=section)
    params["evaluate"]["diversity_space"] = "onion"
    params["controls"].update(shuffle=["onion"], unordered=["onion"])  # a precomputed name serves the controls too
    write_params(workdir, params)

    run(["stages.code"], workdir)
    assert json.loads((workdir / "data/code/extract-onion.json").read_text())["backend"]["kind"] == "precomputed"
    run(["stages.extract", "--backend", "onion"], workdir)
    embeddings = np.load(workdir / "data/embeddings/onion.npy")
    kept = [i for i in range(len(CATALOGUE)) if i not in LACKED]
    assert embeddings[kept].tobytes() == reference[kept].tobytes() and masked_rows(embeddings)[LACKED].all()
    stats = json.loads((workdir / "metrics/extract/onion.json").read_text())
    assert [entry["track_id"] for entry in stats["skipped"]] == ["t03", "t07"]
    assert stats["ids_not_in_catalogue"] == 2 and stats["file"] == "data/precomputed/onion/model.npy"


@pytest.mark.e2e
def test_dvc_reruns_only_the_backend_whose_own_file_changed(tmp_path):
    """The real DVC on a scratch copy (no audio needed: `-s` runs the named stages only): a new
    precomputed file re-runs its extract stage and no other; an edited backend module, its own."""
    from audiorec.workflow.worktree import DVC, copy_worktree, pipeline_env, write_params

    root = copy_worktree(tmp_path)
    (root / "data" / "raw").mkdir(parents=True)
    (root / "data" / "raw" / "audio.mp3").write_bytes(b"")
    pd.DataFrame({"track_id": CATALOGUE[:3], "audio_path": ["-"] * 3}).to_parquet(root / "data" / "tracks.parquet")
    folder = root / "data" / "precomputed" / "onion"
    folder.mkdir(parents=True)
    (folder / "v.tsv").write_text(tsv("t00 1 2 3 4", "t01 5 6 7 8"))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params.update(backends=["random", "onion"], onion={"format": "tsv", "file": "v.tsv", "dim": DIM})
    params["evaluate"]["diversity_space"] = "onion"
    params["controls"].update(shuffle=["onion"], unordered=[])
    write_params(root, params)

    def dvc(*args):
        result = subprocess.run(DVC + list(args), cwd=root, env=pipeline_env(), capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        return result.stdout

    def stale():
        dvc("repro", "-s", "code")
        return sorted(json.loads(dvc("status", "--json", "extract@onion", "extract@random")))

    dvc("repro", "-s", "code", "extract@onion", "extract@random")
    (folder / "v.tsv").write_text(tsv("t00 1 2 3 4", "t01 5 6 7 9"))
    assert stale() == ["extract@onion"]
    dvc("repro", "-s", "extract@onion")
    with open(root / "audiorec" / "backends" / "random.py", "a") as module:
        module.write("# edited\n")
    assert stale() == ["extract@random"]
