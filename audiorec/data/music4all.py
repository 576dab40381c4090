"""Reading a Music4All(-Onion) copy: the audio folder and the listening log.

The same reader serves the built-in synthetic data, which is written in the
same layout, so the synthetic pipeline exercises the real code path.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api.types import union_categoricals
from pyarrow import csv
from tqdm import tqdm

log = logging.getLogger(__name__)

# What to do with a malformed log line (params.yaml: dataset.on_bad_row).
BAD_ROW_POLICIES = ("fail", "skip")

LOG_COLUMNS = ["user_id", "track_id", "timestamp"]
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def read_tracks(audio_dir: str | Path) -> pd.DataFrame:
    """One row per `<track_id>.mp3` of `audio_dir`, sorted by track id."""
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise FileNotFoundError(
            f"audio folder {audio_dir} does not exist: set dataset.audio_dir in params.yaml "
            "to the folder holding Music4All's <track_id>.mp3 files"
        )
    paths = sorted(audio_dir.glob("*.mp3"))
    if not paths:
        raise FileNotFoundError(f"no .mp3 files in {audio_dir}: point dataset.audio_dir at Music4All's audios/ folder")
    return pd.DataFrame({"track_id": [p.stem for p in paths], "audio_path": [str(p) for p in paths]})


# Why a log row is unusable; `skip` counts each, in this order of checking.
BAD_ROW_REASONS = ("wrong_column_count", "empty_id", "bad_timestamp")


class BadRowError(ValueError):
    pass


def _bad_row(path: Path, line: int, reason: str, content: str) -> BadRowError:
    return BadRowError(
        f"{path}:{line}: {reason.replace('_', ' ')}: {content!r}. Fix or delete the line, or set "
        "dataset.on_bad_row: skip to drop such rows and count them in metrics/dataset.json"
    )


def _has_header(log_path: Path) -> bool:
    """True for Music4All-Onion's header; False for a header-less log whose line 1 is a play."""
    with log_path.open(errors="replace") as handle:
        first = handle.readline().rstrip("\r\n").split("\t")
    if first == LOG_COLUMNS:
        return True
    if len(first) == len(LOG_COLUMNS) and not pd.isna(
        pd.to_datetime(first[2], format=TIMESTAMP_FORMAT, errors="coerce")
    ):
        log.warning("%s has no header line; reading line 1 as a play (columns %s)", log_path, LOG_COLUMNS)
        return False
    raise ValueError(
        f"{log_path}: line 1 is {first!r}; expected the tab-separated header {LOG_COLUMNS!r} "
        "(Music4All-Onion's userid_trackid_timestamp.tsv layout) or a first play in that layout"
    )


def _log_batches(log_path: Path, header: bool, block_bytes: int, on_wrong_columns):
    """Record batches of the three columns as strings; rows with another column count go to `on_wrong_columns`."""

    def handle(row) -> str:
        return on_wrong_columns(row.number, row.text)

    return csv.open_csv(
        log_path,
        read_options=csv.ReadOptions(
            use_threads=False, block_size=block_bytes, skip_rows=int(header), column_names=LOG_COLUMNS
        ),
        # No quoting: a quote is part of an id in this format; empty lines are rows, so they are counted.
        parse_options=csv.ParseOptions(
            delimiter="\t", quote_char=False, ignore_empty_lines=False, invalid_row_handler=handle
        ),
        convert_options=csv.ConvertOptions(
            column_types={name: pa.string() for name in LOG_COLUMNS}, strings_can_be_null=False
        ),
    )


def read_plays(
    log_path: str | Path, tracks: pd.DataFrame, chunk_mb: float = 64, on_bad_row: str = "fail"
) -> tuple[pd.DataFrame, dict]:
    """Read the listening log in blocks, keeping the plays of tracks that have audio.

    A row with another column count, an empty user or track id, or a timestamp
    that is not `YYYY-MM-DD HH:MM:SS` is bad: `on_bad_row="fail"` stops at the
    first with its file, line and content; `"skip"` drops bad rows and counts
    them per reason. Plays of tracks without audio are always dropped and
    counted. Exact duplicate rows are kept, as plays (the studies counted them;
    `split.duplicate_plays` decides), and counted. Blocks keep peak memory near
    one block of strings; user and track ids are stored as categoricals so a
    250M-row log stays in memory. Returns the plays (`user_id, track_id,
    track_idx, timestamp`; `track_idx` is the row of `tracks`) and counts.
    """
    if on_bad_row not in BAD_ROW_POLICIES:
        raise ValueError(f"dataset.on_bad_row={on_bad_row!r}; allowed: {', '.join(BAD_ROW_POLICIES)}")
    log_path = Path(log_path)
    if not log_path.is_file():
        raise FileNotFoundError(
            f"listening log {log_path} does not exist: set dataset.listening_log in params.yaml "
            "to Music4All-Onion's userid_trackid_timestamp.tsv"
        )
    header = _has_header(log_path)
    bad_rows = dict.fromkeys(BAD_ROW_REASONS, 0)
    first_wrong: list[tuple[int, str]] = []

    def on_wrong_columns(line: int, text: str) -> str:
        if not first_wrong:
            first_wrong.append((line, text))
        bad_rows["wrong_column_count"] += 1
        return "skip" if on_bad_row == "skip" else "error"

    track_index = pd.Index(tracks["track_id"])
    users: list[pd.Categorical] = []
    track_indices: list[np.ndarray] = []
    timestamps: list[np.ndarray] = []
    usable_rows = rows_read = 0
    try:
        batches = _log_batches(log_path, header, int(chunk_mb * 2**20), on_wrong_columns)
        for batch in tqdm(batches, desc=f"reading {log_path.name}", unit="block"):
            chunk = batch.to_pandas()
            first_line = rows_read + int(header) + 1  # exact in fail mode, where nothing was skipped before
            rows_read += len(chunk)
            usable, when = _check_rows(chunk, log_path, first_line, on_bad_row, bad_rows)
            chunk, when = chunk[usable], when[usable]
            usable_rows += len(chunk)
            track_idx = track_index.get_indexer(chunk["track_id"])
            known = track_idx >= 0
            users.append(pd.Categorical(chunk["user_id"].to_numpy()[known]))
            track_indices.append(track_idx[known].astype(np.int32))
            timestamps.append(when[known])
    except pa.ArrowInvalid:
        if on_bad_row == "skip" or not first_wrong:
            raise
        line, text = first_wrong[0]
        raise _bad_row(log_path, line, "wrong_column_count", text) from None
    track_idx = np.concatenate(track_indices) if track_indices else np.empty(0, np.int32)
    plays = pd.DataFrame(
        {
            # union_categoricals keeps ids as codes: concatenating plain strings would not fit 250M rows.
            "user_id": union_categoricals(users) if users else pd.Categorical([]),
            "track_id": pd.Categorical.from_codes(track_idx, categories=track_index),
            "track_idx": track_idx,
            "timestamp": np.concatenate(timestamps) if timestamps else np.empty(0, "datetime64[s]"),
        }
    )
    # Counted, not dropped: a scrobbler that posts a play twice doubles its play count, which
    # is what both studies computed on (split.duplicate_plays: drop removes them).
    duplicate = plays.duplicated(["user_id", "track_idx", "timestamp"])
    stats = {
        "log_rows": rows_read + bad_rows["wrong_column_count"],
        "header": "present" if header else "missing",
        "bad_rows": bad_rows,
        "duplicate_rows": int(duplicate.sum()),
        "plays": len(plays),
        "plays_without_audio": usable_rows - len(plays),
        "users": int(plays["user_id"].nunique()),
        "first_play": str(plays["timestamp"].min()),
        "last_play": str(plays["timestamp"].max()),
    }
    for what in ("bad rows", "plays without audio"):
        count = sum(bad_rows.values()) if what == "bad rows" else stats[what.replace(" ", "_")]
        if count:
            log.warning("%s: dropped %d %s%s", log_path, count, what, f" {bad_rows}" if what == "bad rows" else "")
    return plays, stats


def _check_rows(
    chunk: pd.DataFrame, path: Path, first_line: int, on_bad_row: str, bad_rows: dict
) -> tuple[np.ndarray, np.ndarray]:
    """The usable rows of one block and every row's parsed time; bad rows raise
    (`fail`) or are counted in `bad_rows` (`skip`)."""
    empty_id = ((chunk["user_id"] == "") | (chunk["track_id"] == "")).to_numpy()
    when = pd.to_datetime(chunk["timestamp"], format=TIMESTAMP_FORMAT, errors="coerce")
    bad_time = when.isna().to_numpy() & ~empty_id
    if on_bad_row == "fail" and (empty_id.any() or bad_time.any()):
        row = int(np.flatnonzero(empty_id | bad_time)[0])
        fields = list(chunk.iloc[row])
        content = "\t".join(fields) if any(fields) else ""  # an empty line parses as three empty fields
        raise _bad_row(path, first_line + row, "empty_id" if empty_id[row] else "bad_timestamp", content)
    bad_rows["empty_id"] += int(empty_id.sum())
    bad_rows["bad_timestamp"] += int(bad_time.sum())
    return ~(empty_id | bad_time), when.to_numpy("datetime64[s]")


def catalogue(audio_files: pd.DataFrame, plays: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The study's catalogue: the tracks of the listening log that have audio (Music4All has
    about twice as many clips as Music4All-Onion's log plays), sorted by track id, as the
    original's `trackid_sorted.csv`. Its row number is the track index that every embedding
    matrix and every model uses; nothing downstream sees raw track ids. Returns the catalogue,
    the plays with `track_idx` re-indexed to it, and the counts."""
    played = np.flatnonzero(np.bincount(plays["track_idx"], minlength=len(audio_files)))
    new_index = np.full(len(audio_files), -1, dtype=np.int32)
    new_index[played] = np.arange(len(played), dtype=np.int32)
    tracks = audio_files.iloc[played].reset_index(drop=True)
    track_idx = new_index[plays["track_idx"].to_numpy()]
    plays = plays.assign(
        track_idx=track_idx, track_id=pd.Categorical.from_codes(track_idx, categories=pd.Index(tracks["track_id"]))
    )
    if len(played) < len(audio_files):
        log.info(
            "%d audio files have no plays in the log; they are not in the catalogue", len(audio_files) - len(played)
        )
    return (
        tracks,
        plays,
        {"audio_files": len(audio_files), "audio_without_plays": len(audio_files) - len(played), "tracks": len(tracks)},
    )


def read_dataset(
    audio_dir: str | Path, log_path: str | Path, chunk_mb: float = 64, on_bad_row: str = "fail"
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The catalogue (`track_id, audio_path`), its plays and the reading statistics."""
    audio_files = read_tracks(audio_dir)
    plays, stats = read_plays(log_path, audio_files, chunk_mb=chunk_mb, on_bad_row=on_bad_row)
    tracks, plays, counts = catalogue(audio_files, plays)
    return tracks, plays, stats | counts
