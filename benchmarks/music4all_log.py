"""A listening log of Music4All-Onion's shape, for benchmarks/music4all_scale.py.

Nothing in it is learnable (the embeddings are random); only the sizes and the
skew are the real data's, as published for the study's split:

- 56,512 tracks, 17,053 users with plays in the train year (2019-02-20 to
  2020-02-20) and 5.1M distinct (user, track) train pairs. The distinct tracks
  per user are log-normal with the real median of 142; its spread is solved so
  that the mean is the published 5,122,221 / 17,053 = 300 pairs per user, so
  the heaviest users have thousands of tracks.
- Track popularity is a power law (Zipf, exponent 0.9) over a random order of
  the tracks; each user's tracks are drawn by popularity without replacement.
- Repeat plays: a pair is played a geometric number of times (mean 3).
- A test month (to 2020-03-20): 71% of the users (12,184 / 17,053 in the
  published split) play about 22 tracks new to them (the published val + test
  rows per user); 1% of the tracks (the journal's 589 cold tracks) appear only then.
- 10% of the pairs were also played in the year before the window, which the
  split's start date ignores; `extra_rows` adds more such history, for
  the reader at the full log's 250M rows.

Written as the real files: `audios/<track_id>.mp3` (empty placeholders: the
dataset stage only lists them) and a tab-separated `userid_trackid_timestamp.tsv`.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyarrow import csv
from tqdm import tqdm

LOG_NAME = "userid_trackid_timestamp.tsv"
AUDIO_DIR = "audios"
HEADER = "user_id\ttrack_id\ttimestamp\n"
# "user_" + 8 characters, a 16-character track id, "YYYY-MM-DD HH:MM:SS", two tabs and a newline.
ROW_BYTES = 13 + 16 + 19 + 3
ALPHABET = np.frombuffer((string.ascii_letters + string.digits).encode(), dtype="S1")
DAY = 86_400
HISTORY_START = np.datetime64("2005-01-01", "s")  # Last.fm scrobbles in LFM-2b reach back to 2005


@dataclass(frozen=True)
class LogShape:
    n_tracks: int = 56_512
    n_users: int = 17_053
    median_tracks: float = 142.0
    mean_tracks: float = 5_122_221 / 17_053
    zipf_exponent: float = 0.9
    mean_plays_per_pair: float = 3.0
    test_user_share: float = 12_184 / 17_053
    test_median_tracks: float = 13.0
    test_sigma: float = 1.0  # mean 13 e^0.5 = 21.4 new tracks per test-month user
    cold_share: float = 589 / 56_512
    history_share: float = 0.1
    start_date: str = "2019-02-20"
    test_date: str = "2020-02-20"
    end_date: str = "2020-03-20"
    seed: int = 0

    @classmethod
    def scaled(cls, scale: float, **overrides) -> "LogShape":
        """`scale` of the users and tracks; per-user activity keeps the real medians, so pairs scale too."""
        full = cls()
        return cls(n_tracks=round(full.n_tracks * scale), n_users=round(full.n_users * scale), **overrides)

    def as_dict(self) -> dict:
        return asdict(self)


def random_ids(rng: np.random.Generator, count: int, length: int, prefix: str = "") -> np.ndarray:
    """`count` distinct alphanumeric ids, sorted (Music4All's track ids are 16 characters)."""
    ids = np.empty(0, dtype=f"<U{len(prefix) + length}")
    while len(ids) < count:
        letters = ALPHABET[rng.integers(0, len(ALPHABET), size=(count, length))]
        fresh = np.char.add(prefix, letters.view(f"S{length}").ravel().astype(str))
        ids = np.unique(np.concatenate([ids, fresh]))
    return np.sort(rng.choice(ids, size=count, replace=False))


def weighted_without_replacement(
    rng: np.random.Generator,
    weights: np.ndarray,
    counts: np.ndarray,
    excluded: list[np.ndarray] | None = None,
    chunk: int = 64,
) -> list[np.ndarray]:
    """For each row, `counts[row]` distinct indices drawn by `weights` without replacement
    (Efraimidis-Spirakis: the smallest Exp(1) / weight keys), never one of `excluded[row]`."""
    drawn = []
    for start in range(0, len(counts), chunk):
        rows = range(start, min(start + chunk, len(counts)))
        keys = rng.exponential(size=(len(rows), len(weights))) / weights
        for offset, row in enumerate(rows):
            if excluded is not None:
                keys[offset, excluded[row]] = np.inf
            count = min(int(counts[row]), len(weights) - (0 if excluded is None else len(excluded[row])))
            drawn.append(np.argpartition(keys[offset], count - 1)[:count] if count > 0 else np.empty(0, np.int64))
    return drawn


def _seconds(date: str) -> int:
    return int(np.datetime64(date, "s").astype(np.int64))


def _plays(
    rng: np.random.Generator,
    pair_users: np.ndarray,
    pair_tracks: np.ndarray,
    first: np.ndarray,
    end: int,
    mean_plays: float,
):
    """Every play of each pair: the first at `first`, repeats uniform between it and `end`."""
    plays = rng.geometric(1 / mean_plays, size=len(first))
    users, tracks = np.repeat(pair_users, plays), np.repeat(pair_tracks, plays)
    start = np.repeat(first, plays)
    is_first = np.zeros(len(users), dtype=bool)
    is_first[np.cumsum(plays) - plays] = True
    when = np.where(is_first, start, start + (rng.random(len(users)) * (end - start)).astype(np.int64))
    return users, tracks, when


def core_plays(shape: LogShape) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user ids, track ids, and the user code, track code, unix seconds of every play) in the window."""
    rng = np.random.default_rng(shape.seed)
    track_ids = random_ids(rng, shape.n_tracks, 16)
    user_ids = random_ids(rng, shape.n_users, 8, prefix="user_")
    popularity = rng.permutation(np.arange(1, shape.n_tracks + 1) ** -shape.zipf_exponent)
    cold = np.zeros(shape.n_tracks, dtype=bool)
    cold[rng.choice(shape.n_tracks, size=round(shape.n_tracks * shape.cold_share), replace=False)] = True
    hot = np.flatnonzero(~cold)
    # The spread that gives the published mean at the published median: mean = median e^(sigma^2 / 2).
    sigma = np.sqrt(2 * np.log(shape.mean_tracks / shape.median_tracks))
    n_train = np.clip(np.round(rng.lognormal(np.log(shape.median_tracks), sigma, shape.n_users)), 1, len(hot) // 3)
    train_tracks = [hot[drawn] for drawn in weighted_without_replacement(rng, popularity[hot], n_train)]
    start, test, end = _seconds(shape.start_date), _seconds(shape.test_date), _seconds(shape.end_date)
    pair_users = np.repeat(np.arange(shape.n_users, dtype=np.int32), [len(t) for t in train_tracks])
    pair_tracks = np.concatenate(train_tracks).astype(np.int32)
    first = rng.integers(start, test, size=len(pair_users))
    parts = [_plays(rng, pair_users, pair_tracks, first, end, shape.mean_plays_per_pair)]
    # Some pairs also have plays from the year before the window (the split ignores them).
    earlier = rng.random(len(pair_users)) < shape.history_share
    parts.append(
        (pair_users[earlier], pair_tracks[earlier], rng.integers(start - 365 * DAY, start, size=int(earlier.sum())))
    )
    test_users = np.sort(rng.choice(shape.n_users, size=round(shape.n_users * shape.test_user_share), replace=False))
    n_test = np.clip(
        np.round(rng.lognormal(np.log(shape.test_median_tracks), shape.test_sigma, len(test_users))), 1, 500
    )
    new_tracks = weighted_without_replacement(
        rng, popularity, n_test, excluded=[train_tracks[user] for user in test_users]
    )
    test_pair_users = np.repeat(test_users.astype(np.int32), [len(t) for t in new_tracks])
    test_pair_tracks = np.concatenate(new_tracks).astype(np.int32)
    test_first = rng.integers(test, end, size=len(test_pair_users))
    parts.append(_plays(rng, test_pair_users, test_pair_tracks, test_first, end, shape.mean_plays_per_pair))
    users, tracks, when = (np.concatenate(column) for column in zip(*parts))
    order = np.lexsort((when, users))
    return track_ids, user_ids, users[order], tracks[order], when[order]


def history_plays(rng: np.random.Generator, shape: LogShape, rows: int, popularity: np.ndarray, activity: np.ndarray):
    """`rows` plays from before the window (2005 on): users by activity, tracks by popularity."""
    users = np.searchsorted(np.cumsum(activity) / activity.sum(), rng.random(rows)).astype(np.int32)
    tracks = np.searchsorted(np.cumsum(popularity) / popularity.sum(), rng.random(rows)).astype(np.int32)
    low = int(HISTORY_START.astype(np.int64))
    when = rng.integers(low, _seconds(shape.start_date) - 365 * DAY, size=rows)
    return np.minimum(users, len(activity) - 1), np.minimum(tracks, len(popularity) - 1), when


def write_rows(
    handle, user_ids: np.ndarray, track_ids: np.ndarray, users, tracks, when, block: int = 2_000_000
) -> None:
    """Tab-separated rows, unquoted, timestamps as `YYYY-MM-DD HH:MM:SS`."""
    user_dictionary, track_dictionary = pa.array(user_ids), pa.array(track_ids)
    options = csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    for start in range(0, len(users), block):
        part = slice(start, start + block)
        table = pa.table(
            {
                "user_id": user_dictionary.take(pa.array(users[part])),
                "track_id": track_dictionary.take(pa.array(tracks[part])),
                "timestamp": pa.array(when[part]).cast(pa.timestamp("s")).cast(pa.string()),
            }
        )
        csv.write_csv(table, handle, options)


def write_log(folder: Path, shape: LogShape, total_rows: int = 0, block: int = 10_000_000) -> dict:
    """The audio placeholders and the log under `folder`, padded to `total_rows` rows with
    plays from before the window (the full log's history) when it has fewer; returns its sizes."""
    track_ids, user_ids, users, tracks, when = core_plays(shape)
    audio = folder / AUDIO_DIR
    audio.mkdir(parents=True, exist_ok=True)
    for track_id in track_ids:
        (audio / f"{track_id}.mp3").touch()
    rng = np.random.default_rng(shape.seed + 1)
    popularity = np.bincount(tracks, minlength=shape.n_tracks) + 1.0
    activity = np.bincount(users, minlength=shape.n_users) + 1.0
    extra_rows = max(0, total_rows - len(users))
    with open(folder / LOG_NAME, "wb") as handle:
        handle.write(HEADER.encode())
        for start in tqdm(range(0, extra_rows, block), desc="history rows", unit="block", disable=not extra_rows):
            rows = min(block, extra_rows - start)
            write_rows(handle, user_ids, track_ids, *history_plays(rng, shape, rows, popularity, activity))
        write_rows(handle, user_ids, track_ids, users, tracks, when)
    return {
        "tracks": shape.n_tracks,
        "users": shape.n_users,
        "window_rows": len(users),
        "log_rows": len(users) + extra_rows,
        "log_bytes": (folder / LOG_NAME).stat().st_size,
    }
