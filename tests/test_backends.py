import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiorec import backends
from audiorec.config import ParamsError, validate
from audiorec.data.synthetic import sample_styles, synthesise
from audiorec.settings.base import SettingsError
from model_settings import section, synthetic_config


def test_unknown_backend_lists_registered_ones():
    with pytest.raises(KeyError, match="mfcc.*musicnn.*oracle.*random"):
        backends.create("wav2vec9")


def test_params_validation_names_parameter_and_choices():
    import yaml

    with open("params.yaml") as handle:
        params = yaml.safe_load(handle)
    validate(params)
    with pytest.raises(
        ParamsError, match="backends: unknown backend 'nope'; registered: encodecmae, jukebox, mert, mfcc"
    ):
        validate({**params, "backends": ["mfcc", "nope"]})
    with pytest.raises(ParamsError, match="models: unknown model 'svd'"):
        validate({**params, "models": ["svd"]})
    with pytest.raises(ParamsError, match="'mostpop' uses no audio; list it under params.yaml: baselines"):
        validate({**params, "models": ["shallow", "mostpop"]})
    with pytest.raises(
        ParamsError, match="baselines: 'knn' cannot run without audio; allowed: mostpop, ease, elsa, bert4rec"
    ):
        validate({**params, "baselines": ["knn"]})
    with pytest.raises(ParamsError, match="models lists knn more than once"):
        validate({**params, "models": ["knn", "shallow", "knn"]})
    with pytest.raises(ParamsError, match="backends: 'none' is the slot of the models without audio"):
        validate({**params, "backends": ["mfcc", "none"]})
    with pytest.raises(ParamsError, match=r"seeds=\[0, 0\] repeats a seed"):
        validate({**params, "seeds": [0, 0]})
    with pytest.raises(ParamsError, match=r"seeds=\[\]; must be a non-empty list"):
        validate({**params, "seeds": []})
    with pytest.raises(ParamsError, match="controls.models: 'knn' is not in models"):
        validate({**params, "models": ["shallow"], "controls": {**params["controls"], "models": ["knn"]}})
    with pytest.raises(ParamsError, match="model_settings='paper'; allowed: demo, study"):
        validate({**params, "model_settings": "paper"})
    with pytest.raises(
        ParamsError, match=r"split.journal.test_date='2018-01-01': must be after start_date \(2018-02-01\)"
    ):
        validate(
            {
                **params,
                "split": {**params["split"], "journal": {**params["split"]["journal"], "test_date": "2018-01-01"}},
            }
        )
    with pytest.raises(ParamsError, match="controls.shuffle: 'mert' is not in backends"):
        validate({**params, "controls": {**params["controls"], "shuffle": ["oracle", "mert"]}})
    with pytest.raises(ParamsError, match="report.cold_k=7"):
        validate({**params, "report": {"k": 50, "cold_k": 7}})


def test_random_backend_is_seeded():
    tracks = pd.DataFrame({"track_id": list("abc")})
    a = backends.create("random", **section("random", dim=5, seed=1)).embed_tracks(tracks)
    b = backends.create("random", **section("random", dim=5, seed=1)).embed_tracks(tracks)
    assert a.shape == (3, 5)
    np.testing.assert_array_equal(a, b)
    # A seed only compared with itself cannot show that it is used: another seed must give other vectors.
    for seed in (0, 2):
        other = backends.create("random", **section("random", dim=5, seed=seed)).embed_tracks(tracks)
        assert not np.isclose(a, other).any(), seed


def test_random_backend_draws_the_named_distribution():
    tracks = pd.DataFrame({"track_id": [str(i) for i in range(400)]})
    normal, uniform = (
        backends.create("random", **section("random", dim=50, seed=3, distribution=name)).embed_tracks(tracks)
        for name in ("normal", "uniform")
    )
    assert normal.dtype == uniform.dtype == np.float32
    # 20,000 draws: the moments of N(0, 1) and U[0, 1) within a few standard errors.
    assert abs(normal.mean()) < 0.03 and abs(normal.std() - 1) < 0.03 and normal.min() < -3
    assert uniform.min() >= 0 and uniform.max() < 1
    assert abs(uniform.mean() - 0.5) < 0.01 and abs(uniform.var() - 1 / 12) < 0.005
    with pytest.raises(SettingsError, match="random.distribution='beta': Input should be 'normal' or 'uniform'"):
        backends.create("random", **section("random", distribution="beta"))


def test_oracle_refuses_without_synthetic_styles(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.source: synthetic"):
        backends.create("oracle", **section("oracle", styles_path=str(tmp_path / "missing.parquet")))


def test_mfcc_separates_bright_from_dark_timbre(tmp_path):
    styles = sample_styles(np.random.default_rng(0), synthetic_config(n_tracks=40, n_users=1, clip_seconds=2))
    # The generator's `brightness` is the exponent of its harmonics' roll-off (gain h^-brightness):
    # the lowest value is the brightest timbre, the highest the darkest.
    bright = styles.sort_values("brightness").iloc[0].to_dict()
    dark = styles.sort_values("brightness").iloc[-1].to_dict()
    backend = backends.create("mfcc", n_mfcc=13, sample_rate=16000)
    rows = []
    for name, style in {"bright": bright, "dark": dark}.items():
        path = tmp_path / f"{name}.wav"
        sf.write(path, synthesise(style, 2, 16000), 16000)
        rows.append({"track_id": name, "audio_path": str(path)})
    embeddings, stats, _ = backends.extract(backend, pd.DataFrame(rows))
    assert embeddings.shape == (2, 52) and stats["dim"] == 52
    assert np.isfinite(embeddings).all()
    assert not np.allclose(embeddings[0], embeddings[1])


def spectral_centroid(waveform: np.ndarray, sample_rate: int) -> float:
    """The power-weighted mean frequency of the whole clip, by numpy's FFT (no librosa)."""
    power = np.abs(np.fft.rfft(waveform)) ** 2
    return float((np.fft.rfftfreq(len(waveform), 1 / sample_rate) * power).sum() / power.sum())


def test_mfcc_orders_timbres_as_the_generator_planted_them(tmp_path):
    """Clips that differ only in the planted harmonic roll-off, from bright to dark. The first
    cepstral coefficient is the log-mel spectrum's tilt: it must rise as the clips darken (as an
    FFT spectral centroid, computed independently, falls), and the vectors must move away from
    the brightest clip in the same order. MFCCs of anything but the audio would not."""
    rolloff = [0.4, 0.8, 1.2, 1.6, 2.0, 2.4, 2.8]
    style = {
        "tempo": 120.0,
        "scale": "major",
        "root": 0,
        "register": 57.0,
        "percussiveness": 0.0,
        "noisiness": 0.0,
        "seed": 7,
    }
    rows, centroids = [], []
    for i, exponent in enumerate(rolloff):
        waveform = synthesise({**style, "brightness": exponent}, 2, 16000)
        centroids.append(spectral_centroid(waveform, 16000))
        sf.write(tmp_path / f"{i}.wav", waveform, 16000)
        rows.append({"track_id": str(i), "audio_path": str(tmp_path / f"{i}.wav")})
    assert np.all(np.diff(centroids) < 0)  # the planted order, seen by an independent measure
    embeddings, _, _ = backends.extract(backends.create("mfcc", n_mfcc=13, sample_rate=16000), pd.DataFrame(rows))
    tilt = embeddings[:, 1]  # mean of coefficient 1 over frames
    assert np.all(np.diff(tilt) > 0), tilt
    assert np.all(np.diff(np.linalg.norm(embeddings - embeddings[0], axis=1)) > 0)


def test_report_k_must_be_evaluated():
    import yaml

    with open("params.yaml") as handle:
        params = yaml.safe_load(handle)
    with pytest.raises(ParamsError, match="report.k=20"):
        validate({**params, "report": {"k": 20, "cold_k": 10}})


class _DurationBackend(backends.AudioBackend):
    """Embeds a track as its length in samples, so row order is checkable by hand."""

    name = "duration"
    sample_rate = 8000
    dim = 1

    def embed(self, waveform):
        return np.array([len(waveform)], dtype=np.float32)


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_batches_keep_rows_aligned_with_tracks(tmp_path, batch_size):
    lengths = [800, 1600, 400, 2400, 1200, 3200, 2000]
    rows = []
    for i, length in enumerate(lengths):
        path = tmp_path / f"{i}.wav"
        sf.write(path, np.zeros(length, dtype=np.float32), 8000)
        rows.append({"track_id": str(i), "audio_path": str(path)})
    embeddings, _, _ = backends.extract(_DurationBackend(), pd.DataFrame(rows), batch_size=batch_size)
    assert embeddings[:, 0].tolist() == lengths


def test_batch_size_must_be_positive(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(800, dtype=np.float32), 8000)
    with pytest.raises(ValueError, match="extract.batch_size"):
        backends.extract(_DurationBackend(), pd.DataFrame([{"track_id": "a", "audio_path": str(path)}]), batch_size=0)


def test_oracle_lift_keeps_inner_products(tmp_path):
    styles = np.random.default_rng(0).normal(size=(6, 11)).astype(np.float32)
    path = tmp_path / "styles.parquet"
    pd.DataFrame({"track_id": list("abcdef"), "style": list(styles)}).to_parquet(path)
    tracks = pd.DataFrame({"track_id": list("fedcba")})
    # dim 0: the raw 11 style coordinates (the constructor's old default; params.yaml lifts to 128).
    raw = backends.create("oracle", **section("oracle", styles_path=str(path), dim=0)).embed_tracks(tracks)
    lifted = backends.create("oracle", **section("oracle", styles_path=str(path), dim=128)).embed_tracks(tracks)
    np.testing.assert_array_equal(raw, styles[::-1])
    assert lifted.shape == (6, 128)
    np.testing.assert_allclose(lifted @ lifted.T, raw @ raw.T, rtol=1e-5, atol=1e-5)
    assert np.linalg.matrix_rank(lifted) == 6
    with pytest.raises(ValueError, match="oracle.dim=5"):
        backends.create("oracle", **section("oracle", styles_path=str(path), dim=5))
