import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiorec import backends
from audiorec.config import ParamsError, validate
from audiorec.data.synthetic import SyntheticConfig, sample_styles, synthesise


def test_unknown_backend_lists_registered_ones():
    with pytest.raises(KeyError, match="mfcc.*musicnn.*oracle.*random"):
        backends.create("wav2vec9")


def test_params_validation_names_parameter_and_choices():
    import yaml

    with open("params.yaml") as handle:
        params = yaml.safe_load(handle)
    validate(params)
    with pytest.raises(ParamsError, match="backends: unknown backend 'nope'; registered: mfcc"):
        validate({**params, "backends": ["mfcc", "nope"]})
    with pytest.raises(ParamsError, match="models: unknown model 'svd'"):
        validate({**params, "models": ["svd"]})
    with pytest.raises(ParamsError, match="split.test_date"):
        validate({**params, "split": {**params["split"], "test_date": "2018-01-01"}})


def test_random_backend_is_seeded():
    tracks = pd.DataFrame({"track_id": list("abc")})
    a = backends.create("random", dim=5, seed=1).embed_tracks(tracks)
    b = backends.create("random", dim=5, seed=1).embed_tracks(tracks)
    assert a.shape == (3, 5)
    np.testing.assert_array_equal(a, b)


def test_oracle_refuses_without_synthetic_styles(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.source: synthetic"):
        backends.create("oracle", styles_path=str(tmp_path / "missing.parquet"))


def test_mfcc_separates_bright_from_dark_timbre(tmp_path):
    styles = sample_styles(np.random.default_rng(0), SyntheticConfig(n_tracks=40, n_users=1, clip_seconds=2))
    dark = styles.sort_values("brightness").iloc[0].to_dict()
    bright = styles.sort_values("brightness").iloc[-1].to_dict()
    backend = backends.create("mfcc", n_mfcc=13, sample_rate=16000)
    rows = []
    for name, style in {"dark": dark, "bright": bright}.items():
        path = tmp_path / f"{name}.wav"
        sf.write(path, synthesise(style, 2, 16000), 16000)
        rows.append({"track_id": name, "audio_path": str(path)})
    embeddings, stats = backends.extract(backend, pd.DataFrame(rows))
    assert embeddings.shape == (2, 52) and stats["dim"] == 52
    assert np.isfinite(embeddings).all()
    assert not np.allclose(embeddings[0], embeddings[1])


def test_report_k_must_be_evaluated():
    import yaml

    with open("params.yaml") as handle:
        params = yaml.safe_load(handle)
    with pytest.raises(ParamsError, match="report.k=20"):
        validate({**params, "report": {"k": 20}})
