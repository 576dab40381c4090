"""A Music4All-shaped dataset with planted, recoverable structure.

Every track gets a hidden style (genre, tempo, key, brightness, percussiveness,
noisiness, register) and its audio is synthesised *from* that style, so audio
models can recover it. Users have tastes over genres and a popularity bias;
they listen in sessions that walk along a genre's track order, so the order of
plays carries signal for sequential models. The files written are the same as
a real Music4All copy (`audios/<id>.mp3`, `userid_trackid_timestamp.tsv`), and
the hidden styles go to a separate file for the `oracle` backend.
"""

from __future__ import annotations

import logging
import string
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

log = logging.getLogger(__name__)

LOG_NAME = "userid_trackid_timestamp.tsv"
AUDIO_DIR = "audios"
STYLES_NAME = "styles.parquet"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

# The log's time axis, relative to the split protocol's test date: a train year, then a test month.
# Both protocols see the same plays, shifted in time (params.yaml: split).
TRAIN_DAYS = 365
TEST_DAYS = 28
DAY_SECONDS = 86_400

SCALES = {
    "major": [0, 2, 4, 5, 7, 9, 11],
    "minor": [0, 2, 3, 5, 7, 8, 10],
    "pentatonic": [0, 3, 5, 7, 10],
    "whole_tone": [0, 2, 4, 6, 8, 10],
    "phrygian": [0, 1, 3, 5, 7, 8, 10],
}
# Within-genre style deviations (standard units) that shape both the audio and user taste.
DEVIATIONS = ["tempo_deviation", "brightness_deviation", "register_deviation"]
ALPHANUMERIC = np.array(list(string.ascii_letters + string.digits))


@dataclass(frozen=True)
class Timeline:
    """The log's first play, the test date and the end of the log."""

    start: pd.Timestamp
    test: pd.Timestamp
    end: pd.Timestamp

    @classmethod
    def around(cls, test_date: str) -> "Timeline":
        test = pd.Timestamp(test_date)
        return cls(test - pd.Timedelta(days=TRAIN_DAYS), test, test + pd.Timedelta(days=TEST_DAYS))


@dataclass(frozen=True)
class SyntheticConfig:
    # params.yaml `synthetic.<size>` (audiorec.settings.synthetic documents each) ...
    n_tracks: int
    n_users: int
    clip_seconds: float
    cold_fraction: float
    mean_sessions: float
    test_month_sessions: float
    popularity_exponent: float
    # ... and the generator's own constants.
    sample_rate: int = 16000
    n_genres: int = 8
    taste_concentration: float = 0.15
    taste_width: float = 0.8
    mean_session_length: float = 6.0
    continue_probability: float = 0.6
    repeat_probability: float = 0.15
    resume_probability: float = 0.5
    taste_drift: float = 1.0
    deviation_drift: float = 1.5
    seed: int = 0


def random_ids(rng: np.random.Generator, count: int, length: int) -> list[str]:
    """Unique alphanumeric ids, like Music4All's 16-character track ids."""
    ids: set[str] = set()
    ordered: list[str] = []
    while len(ordered) < count:
        candidate = "".join(rng.choice(ALPHANUMERIC, size=length))
        if candidate not in ids:
            ids.add(candidate)
            ordered.append(candidate)
    return ordered


def sample_genres(rng: np.random.Generator, n_genres: int) -> pd.DataFrame:
    """Genre centres spread over tempo, brightness, percussion and noise so they sound apart."""
    scale_names = list(SCALES)
    return pd.DataFrame(
        {
            "tempo": rng.permutation(np.linspace(70, 170, n_genres)),
            "scale": [scale_names[i % len(scale_names)] for i in rng.permutation(n_genres)],
            "root": rng.integers(0, 12, n_genres),
            "brightness": rng.permutation(np.linspace(0.6, 2.6, n_genres)),
            "percussiveness": rng.permutation(np.linspace(0.0, 1.0, n_genres)),
            "noisiness": rng.permutation(np.linspace(0.0, 0.6, n_genres)),
            "register": rng.permutation(np.linspace(45, 76, n_genres)).round(),
        }
    )


def sample_styles(rng: np.random.Generator, config: SyntheticConfig) -> pd.DataFrame:
    """One row per track: its genre, its style drawn around the genre centre, release and popularity.

    `release_offset_s` is the release time in seconds relative to the test date: cold tracks
    come out in the first half of the test month, the others a year before the log starts."""
    genres = sample_genres(rng, config.n_genres)
    genre_share = rng.dirichlet(np.full(config.n_genres, 4.0))
    genre = rng.choice(config.n_genres, size=config.n_tracks, p=genre_share)
    centre = genres.iloc[genre].reset_index(drop=True)
    n = config.n_tracks
    release_offset_s = np.full(n, -(TRAIN_DAYS + 365) * DAY_SECONDS, dtype=np.int64)
    cold = rng.random(n) < config.cold_fraction
    release_offset_s[cold] = rng.integers(0, TEST_DAYS * DAY_SECONDS // 2, cold.sum())
    # Zipf-like popularity over a random permutation of tracks.
    popularity = 1.0 / np.arange(1, n + 1) ** config.popularity_exponent
    # Within-genre deviations in standard units: users prefer some of these too, and audio
    # reveals them less plainly than the genre, which separates the oracle from audio models.
    deviation = rng.normal(0, 1, (n, len(DEVIATIONS)))
    styles = pd.DataFrame(
        {
            "track_id": random_ids(rng, n, 16),
            "genre": genre,
            "tempo": centre["tempo"] * np.exp(0.06 * deviation[:, 0]),
            "scale": centre["scale"],
            "root": (centre["root"] + rng.choice([0, 0, 0, 7], n)) % 12,
            "brightness": np.clip(centre["brightness"] + 0.2 * deviation[:, 1], 0.3, 3.2),
            "percussiveness": np.clip(centre["percussiveness"] + rng.normal(0, 0.08, n), 0, 1),
            "noisiness": np.clip(centre["noisiness"] + rng.normal(0, 0.05, n), 0, 0.8),
            "register": centre["register"] + np.round(2.5 * deviation[:, 2]),
            "release_offset_s": release_offset_s,
            "popularity": rng.permutation(popularity),
            "seed": rng.integers(0, 2**31, n),
        }
    )
    for column, values in zip(DEVIATIONS, deviation.T):
        styles[column] = values
    return styles


def style_vectors(styles: pd.DataFrame, n_genres: int) -> np.ndarray:
    """The true style of each track, in the space user taste is defined in: the genre and
    the within-genre deviations. This is the upper bound any audio model can reach."""
    genre_onehot = 2.0 * np.eye(n_genres, dtype=np.float32)[styles["genre"].to_numpy()]
    return np.hstack([genre_onehot, styles[DEVIATIONS].to_numpy(dtype=np.float32)])


def synthesise(style: dict, seconds: float, sample_rate: int) -> np.ndarray:
    """Render a clip from its style: a melody with harmonics, drums at the tempo, a noise bed."""
    rng = np.random.default_rng(style["seed"])
    n = int(seconds * sample_rate)
    audio = np.zeros(n, dtype=np.float64)
    beat = 60.0 / style["tempo"]
    scale = np.array(SCALES[style["scale"]])
    harmonics = np.arange(1, 9)
    harmonic_gain = harmonics ** (-style["brightness"])
    note_length = beat / 2 if style["tempo"] < 110 else beat
    onset = 0.0
    while onset < seconds:
        degree = rng.integers(0, len(scale) * 2)
        midi = style["register"] + style["root"] + scale[degree % len(scale)] + 12 * (degree // len(scale))
        frequency = 440.0 * 2 ** ((midi - 69) / 12)
        start = int(onset * sample_rate)
        length = min(int(note_length * 1.5 * sample_rate), n - start)
        t = np.arange(length) / sample_rate
        partials = harmonic_gain[:, None] * np.sin(2 * np.pi * frequency * harmonics[:, None] * t)
        partials[harmonics * frequency > sample_rate / 2] = 0
        envelope = np.exp(-t * (3.0 / note_length)) * np.minimum(1.0, t * 200)
        audio[start : start + length] += 0.3 * envelope * partials.sum(axis=0)
        onset += note_length
    percussion = style["percussiveness"]
    if percussion > 0.05:
        kick_t = np.arange(int(0.25 * sample_rate)) / sample_rate
        kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-kick_t * 30)) * kick_t) * np.exp(-kick_t * 18)
        hat_t = np.arange(int(0.05 * sample_rate)) / sample_rate
        for k, beat_onset in enumerate(np.arange(0, seconds, beat / 2)):
            start = int(beat_onset * sample_rate)
            if k % 2 == 0:
                segment = kick[: n - start]
                audio[start : start + len(segment)] += 0.8 * percussion * segment
            else:
                hat = np.diff(rng.normal(0, 1, len(hat_t) + 1)) * np.exp(-hat_t * 80)
                segment = hat[: n - start]
                audio[start : start + len(segment)] += 0.25 * percussion * segment
    if style["noisiness"] > 0:
        noise = np.convolve(rng.normal(0, 1, n), np.ones(8) / 8, mode="same")
        audio += style["noisiness"] * 0.5 * noise
    peak = np.abs(audio).max()
    return (0.8 * audio / peak).astype(np.float32) if peak > 0 else audio.astype(np.float32)


def _write_clip(args: tuple[dict, Path, float, int]) -> None:
    style, path, seconds, sample_rate = args
    sf.write(str(path), synthesise(style, seconds, sample_rate), sample_rate, format="MP3")


def next_in_genre(styles: pd.DataFrame) -> dict[int, np.ndarray]:
    """For every track, the tracks that follow it in its genre's order (by tempo):
    sessions walk forward along this order, which is what makes play order informative."""
    following: dict[int, np.ndarray] = {}
    for _, members in styles.groupby("genre"):
        ordered = members.sort_values("tempo").index.to_numpy()
        for position, track in enumerate(ordered):
            following[track] = np.roll(ordered, -position)[1:4]
    return following


def sample_plays(
    rng: np.random.Generator, styles: pd.DataFrame, config: SyntheticConfig, timeline: Timeline
) -> pd.DataFrame:
    """Listening sessions: a start drawn from taste × popularity, then continuations along the
    genre order, repeats of earlier tracks, and fresh draws."""
    user_ids = ["user_" + u for u in random_ids(rng, config.n_users, 8)]
    genre = styles["genre"].to_numpy()
    popularity = styles["popularity"].to_numpy()
    release = np.datetime64(timeline.test, "s") + styles["release_offset_s"].to_numpy().astype("timedelta64[s]")
    following = next_in_genre(styles)
    deviations = styles[DEVIATIONS].to_numpy()
    span = int((timeline.end - timeline.start).total_seconds())
    train_span = int((timeline.test - timeline.start).total_seconds())
    rows: list[tuple[str, int, np.datetime64]] = []
    upcoming: int  # the track after the last session's end, once a user has one (`history` not empty)
    for user in user_ids:
        first_taste = rng.dirichlet(np.full(config.n_genres, config.taste_concentration))
        last_taste = (1 - config.taste_drift) * first_taste + config.taste_drift * rng.dirichlet(
            np.full(config.n_genres, config.taste_concentration)
        )
        first_deviation = rng.normal(0, 1, len(DEVIATIONS))
        last_deviation = first_deviation + rng.normal(0, config.deviation_drift, len(DEVIATIONS))
        activity = rng.lognormal(0, 0.6)
        n_sessions = 1 + rng.poisson(config.mean_sessions * activity)
        # Sessions over the whole log, plus the test month's own: how many users the test month
        # sees (and so how many validation users the protocol draws) is set apart from how long
        # their train histories are.
        n_test_sessions = rng.poisson(config.test_month_sessions * activity)
        session_offsets = np.sort(
            np.concatenate([rng.integers(0, span, n_sessions), rng.integers(train_span, span, n_test_sessions)])
        )
        history: list[int] = []
        for offset in session_offsets:
            session_start = np.datetime64(timeline.start, "s") + np.timedelta64(int(offset), "s")
            # Taste drifts over the year, so recent plays predict the test month best: the
            # order of a user's history carries signal beyond the sessions themselves.
            elapsed = offset / span
            taste = (1 - elapsed) * first_taste + elapsed * last_taste
            distance = ((deviations - ((1 - elapsed) * first_deviation + elapsed * last_deviation)) ** 2).sum(axis=1)
            preference = taste[genre] * popularity * np.exp(-distance / (2 * config.taste_width**2))
            weights = np.where(release <= session_start, preference, 0.0)
            cumulative = np.cumsum(weights)
            now = session_start
            fresh = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
            # Some sessions pick up where the previous one stopped, across the test boundary too.
            track = upcoming if history and rng.random() < config.resume_probability else fresh
            for _ in range(rng.geometric(1 / config.mean_session_length)):
                if now >= np.datetime64(timeline.end, "s"):
                    break
                rows.append((user, track, now))
                history.append(track)
                now = now + np.timedelta64(int(rng.integers(150, 330)), "s")
                draw = rng.random()
                candidates = following[track][release[following[track]] <= now]
                if draw < config.continue_probability and len(candidates):
                    track = int(candidates[0] if rng.random() < 0.6 else rng.choice(candidates))
                elif draw < config.continue_probability + config.repeat_probability:
                    track = int(history[rng.integers(len(history))])
                else:
                    track = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
            upcoming = track
    plays = pd.DataFrame(rows, columns=["user_id", "track", "timestamp"])
    plays["track_id"] = styles["track_id"].to_numpy()[plays["track"].to_numpy()]
    return plays.sort_values(["user_id", "timestamp"], kind="stable")[["user_id", "track_id", "timestamp"]]


def write_log(plays: pd.DataFrame, path: Path) -> None:
    """Music4All's listening-log format: tab-separated, header, second-resolution timestamps."""
    formatted = plays.assign(timestamp=pd.to_datetime(plays["timestamp"]).dt.strftime(TIMESTAMP_FORMAT))
    formatted.to_csv(path, sep="\t", index=False, lineterminator="\n")


def generate(out_dir: str | Path, config: SyntheticConfig, test_date: str, workers: int = 2) -> None:
    """Write audios/, the listening log (a year before `test_date` and a month after it)
    and the hidden styles into `out_dir`."""
    out_dir = Path(out_dir)
    audio_dir = out_dir / AUDIO_DIR
    audio_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    styles = sample_styles(rng, config)
    plays = sample_plays(rng, styles, config, Timeline.around(test_date))
    write_log(plays, out_dir / LOG_NAME)
    vectors = style_vectors(styles, config.n_genres)
    hidden = styles.drop(columns=["seed"]).assign(style=list(vectors))
    hidden.to_parquet(out_dir / STYLES_NAME, index=False)
    log.info("synthetic log: %d plays by %d users over %d tracks", len(plays), config.n_users, config.n_tracks)
    jobs = [
        (style, audio_dir / f"{style['track_id']}.mp3", config.clip_seconds, config.sample_rate)
        for style in styles.to_dict("records")
    ]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for _ in tqdm(pool.map(_write_clip, jobs, chunksize=8), total=len(jobs), desc="synthesising audio"):
            pass
