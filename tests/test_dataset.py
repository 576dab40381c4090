import hashlib
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiorec import audio
from audiorec.data.music4all import read_dataset, read_plays, read_tracks
from audiorec.data.synthetic import AUDIO_DIR, LOG_NAME, STYLES_NAME, TEST_DAYS, TRAIN_DAYS, generate
from model_settings import synthetic_config

CONFIG = synthetic_config(n_tracks=12, n_users=8, clip_seconds=2, seed=3)
TEST_DATE = "2019-02-01"


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    first, second = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    generate(first, CONFIG, TEST_DATE, workers=1)
    generate(second, CONFIG, TEST_DATE, workers=2)
    return first, second


def test_same_seed_gives_identical_log_and_audio(generated):
    first, second = generated
    assert digest(first / LOG_NAME) == digest(second / LOG_NAME)
    clips = sorted((first / AUDIO_DIR).glob("*.mp3"))
    assert len(clips) == CONFIG.n_tracks
    for clip in clips:
        a, _ = sf.read(clip)
        b, _ = sf.read(second / AUDIO_DIR / clip.name)
        np.testing.assert_array_equal(a, b)


def test_other_seed_gives_other_data(generated, tmp_path):
    generate(tmp_path, synthetic_config(n_tracks=12, n_users=8, clip_seconds=2, seed=4), TEST_DATE, workers=1)
    assert digest(tmp_path / LOG_NAME) != digest(generated[0] / LOG_NAME)


def test_files_follow_music4all_layout(generated):
    root = generated[0]
    lines = (root / LOG_NAME).read_text().splitlines()
    assert lines[0] == "user_id\ttrack_id\ttimestamp"
    for line in lines[1:]:
        user, track, when = line.split("\t")
        assert re.fullmatch(r"[A-Za-z0-9]{16}", track)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", when)
        assert (root / AUDIO_DIR / f"{track}.mp3").is_file()
    info = sf.info(next((root / AUDIO_DIR).glob("*.mp3")))
    assert info.format == "MP3"
    assert info.duration == pytest.approx(CONFIG.clip_seconds, abs=0.1)


def test_reader_aligns_plays_with_sorted_tracks(generated):
    root = generated[0]
    tracks = read_tracks(root / AUDIO_DIR)
    assert tracks["track_id"].is_monotonic_increasing
    plays, stats = read_plays(root / LOG_NAME, tracks, chunk_mb=200 / 2**20)  # blocks of 200 bytes: many
    raw = pd.read_csv(root / LOG_NAME, sep="\t")
    assert len(plays) == len(raw) == stats["plays"]
    assert (tracks["track_id"].to_numpy()[plays["track_idx"]] == plays["track_id"].astype(str).to_numpy()).all()
    assert plays["user_id"].astype(str).tolist() == raw["user_id"].tolist()
    test = pd.Timestamp(TEST_DATE)
    assert plays["timestamp"].min() >= test - pd.Timedelta(days=TRAIN_DAYS)
    assert plays["timestamp"].max() < test + pd.Timedelta(days=TEST_DAYS)
    assert (plays["timestamp"] >= test).any() and (plays["timestamp"] < test).any()


def test_another_test_date_shifts_the_same_log(generated, tmp_path):
    """Either protocol runs on the built-in data: the same plays, placed around its test date."""
    generate(tmp_path, CONFIG, "2020-02-20", workers=1)
    here, there = (
        pd.read_csv(root / LOG_NAME, sep="\t", parse_dates=["timestamp"]) for root in (generated[0], tmp_path)
    )
    shift = pd.Timestamp("2020-02-20") - pd.Timestamp(TEST_DATE)
    pd.testing.assert_frame_equal(here.assign(timestamp=here["timestamp"] + shift), there)
    for clip in (tmp_path / AUDIO_DIR).glob("*.mp3"):
        assert digest(clip) == digest(generated[0] / AUDIO_DIR / clip.name)


def test_the_catalogue_is_the_played_tracks_with_audio(generated, tmp_path):
    """Audio files nobody played are counted and left out; track indices follow the sorted catalogue."""
    root = generated[0]
    audio_dir = tmp_path / AUDIO_DIR
    audio_dir.mkdir()
    for clip in (root / AUDIO_DIR).glob("*.mp3"):
        (audio_dir / clip.name).write_bytes(clip.read_bytes())
    for unplayed in ("0000000000000000", "zzzzzzzzzzzzzzzz"):
        (audio_dir / f"{unplayed}.mp3").write_bytes(b"")
    tracks, plays, stats = read_dataset(audio_dir, root / LOG_NAME)
    raw = pd.read_csv(root / LOG_NAME, sep="\t")
    assert tracks["track_id"].tolist() == sorted(raw["track_id"].unique())
    assert stats["audio_files"] == CONFIG.n_tracks + 2 and stats["tracks"] == len(tracks)
    assert stats["audio_without_plays"] == stats["audio_files"] - raw["track_id"].nunique()
    assert (tracks["track_id"].to_numpy()[plays["track_idx"]] == raw["track_id"].to_numpy()).all()
    assert (plays["track_id"].astype(str) == raw["track_id"]).all()


def test_reader_drops_plays_of_tracks_without_audio(generated, tmp_path):
    root = generated[0]
    tracks = read_tracks(root / AUDIO_DIR).iloc[1:]
    plays, stats = read_plays(root / LOG_NAME, tracks.reset_index(drop=True))
    assert stats["plays_without_audio"] > 0
    assert stats["plays"] + stats["plays_without_audio"] == stats["log_rows"]


def test_hidden_styles_cover_every_track(generated):
    styles = pd.read_parquet(generated[0] / STYLES_NAME)
    assert len(styles) == CONFIG.n_tracks
    assert len({len(v) for v in styles["style"]}) == 1


def test_reader_refuses_a_first_line_that_is_neither_header_nor_play(tmp_path, generated):
    bad = tmp_path / "log.tsv"
    bad.write_text("userid,trackid,timestamp\nuser_x\tAAAAAAAAAAAAAAAA\t2019-03-01 00:00:00\n")
    with pytest.raises(
        ValueError, match=r"log.tsv: line 1 is \['userid,trackid,timestamp'\]; expected the tab-separated header"
    ):
        read_plays(bad, read_tracks(generated[0] / AUDIO_DIR))


def test_audio_load_makes_mono_resamples_and_crops(tmp_path):
    rate = 8000
    t = np.arange(rate * 3) / rate
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1) * 0.5
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, rate)
    waveform = audio.load(path, sample_rate=16000, max_seconds=2)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert len(waveform) == 32000
    # Mono is the channel mean: a 0.5-amplitude tone against silence peaks near 0.25.
    assert np.abs(waveform[1000:-1000]).max() == pytest.approx(0.25, abs=0.01)
    spectrum = np.abs(np.fft.rfft(waveform))
    assert np.argmax(spectrum) * 16000 / len(waveform) == pytest.approx(440, abs=1)
