"""Reading a Music4All(-Onion) copy: the audio folder and the listening log.

The same reader serves the built-in synthetic data, which is written in the
same layout, so the synthetic pipeline exercises the real code path.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals
from tqdm import tqdm

log = logging.getLogger(__name__)

LOG_COLUMNS = ["user_id", "track_id", "timestamp"]
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def read_tracks(audio_dir: str | Path) -> pd.DataFrame:
    """One row per `<track_id>.mp3`, sorted by track id.

    The row number is the track index that every embedding matrix and every
    model uses; nothing downstream sees raw track ids.
    """
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


def read_plays(log_path: str | Path, tracks: pd.DataFrame, chunk_rows: int = 1_000_000) -> tuple[pd.DataFrame, dict]:
    """Read the listening log in chunks, keeping plays of tracks that have audio.

    Chunks keep peak memory near one chunk of strings; user and track ids are
    stored as categoricals so a 250M-row log stays in memory.
    Returns the plays (`user_id, track_id, track_idx, timestamp`) and counts.
    """
    log_path = Path(log_path)
    if not log_path.is_file():
        raise FileNotFoundError(
            f"listening log {log_path} does not exist: set dataset.listening_log in params.yaml "
            "to Music4All-Onion's userid_trackid_timestamp.tsv"
        )
    header = log_path.open().readline().rstrip("\n").split("\t")
    if header != LOG_COLUMNS:
        raise ValueError(
            f"{log_path}: line 1 is {header!r}; expected the tab-separated header {LOG_COLUMNS!r} "
            "(Music4All-Onion's userid_trackid_timestamp.tsv layout)"
        )
    track_index = pd.Index(tracks["track_id"])
    users: list[pd.Categorical] = []
    track_indices: list[np.ndarray] = []
    timestamps: list[np.ndarray] = []
    total_rows = 0
    reader = pd.read_csv(log_path, sep="\t", dtype=str, chunksize=chunk_rows)
    for chunk in tqdm(reader, desc=f"reading {log_path.name}", unit="chunk"):
        total_rows += len(chunk)
        track_idx = track_index.get_indexer(chunk["track_id"])
        known = track_idx >= 0
        users.append(pd.Categorical(chunk["user_id"].to_numpy()[known]))
        track_indices.append(track_idx[known].astype(np.int32))
        timestamps.append(
            pd.to_datetime(chunk["timestamp"].to_numpy()[known], format=TIMESTAMP_FORMAT).to_numpy("datetime64[s]")
        )
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
    stats = {
        "log_rows": total_rows,
        "plays": len(plays),
        "plays_without_audio": total_rows - len(plays),
        "users": int(plays["user_id"].nunique()),
        "tracks": len(tracks),
        "tracks_played": int(plays["track_idx"].nunique()),
        "first_play": str(plays["timestamp"].min()),
        "last_play": str(plays["timestamp"].max()),
    }
    if stats["plays_without_audio"]:
        log.warning("%s: %d plays name tracks without audio and were dropped", log_path, stats["plays_without_audio"])
    return plays, stats
