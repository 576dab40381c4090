"""The batched, build-once musicnn path must give the library's own features."""

import numpy as np
import pytest
import soundfile as sf

from audiorec import backends
from audiorec.data.synthetic import sample_styles, synthesise
from audiorec.settings.base import SettingsError
from model_settings import section, synthetic_config


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    style = sample_styles(np.random.default_rng(1), synthetic_config(n_tracks=1, n_users=1, clip_seconds=7)).iloc[0]
    path = tmp_path_factory.mktemp("audio") / "clip.wav"
    # 16 kHz WAV: both paths read it without resampling, so only the feature code differs.
    # Quiet enough that the library's float16 spectrogram does not overflow.
    sf.write(path, 0.02 * synthesise(style.to_dict(), 7, 16000), 16000)
    return path


@pytest.fixture(scope="module")
def backend():
    return backends.create("musicnn", model="MSD_musicnn", layer="penultimate", layers=[])


def test_fast_path_matches_library_extractor(clip, backend):
    from musicnn.extractor import batch_data, extractor

    assert np.isfinite(batch_data(str(clip), backend.n_frames, backend.n_frames)[0]).all()
    _, _, features = extractor(
        str(clip), model="MSD_musicnn", input_length=3, input_overlap=False, extract_features=True
    )
    waveform, _ = sf.read(clip, dtype="float32")
    per_patch = backend.embed_patches(waveform)
    assert per_patch.shape == features["penultimate"].shape == (2, 200)
    # The library's loop re-appends the first patch's `penultimate` for every later patch,
    # so only patch 0 is comparable there ...
    # With oneDNN's kernels (TF_ENABLE_ONEDNN_OPTS=1) the two graphs, batched differently,
    # round differently: measured differences stay below 6e-6 on values of order 0.1.
    np.testing.assert_allclose(per_patch[0], features["penultimate"][0], rtol=1e-4, atol=2e-5)
    np.testing.assert_array_equal(features["penultimate"][1], features["penultimate"][0])
    assert np.abs(per_patch[1] - per_patch[0]).max() > 1e-3
    # ... while the pooled layers feeding it are appended correctly and must match for all patches.
    for layer in ("mean_pool", "max_pool"):
        pooled = backends.create("musicnn", model="MSD_musicnn", layer=layer, layers=[]).embed_patches(waveform)
        np.testing.assert_allclose(pooled, features[layer], rtol=1e-4, atol=1e-5)


def test_loud_audio_stays_informative(tmp_path, backend):
    """The library's float16 spectrogram turns loud input into inf and every track into
    the same vector; this path must keep loud tracks apart."""
    from musicnn.extractor import batch_data

    styles = sample_styles(np.random.default_rng(2), synthetic_config(n_tracks=2, n_users=1, clip_seconds=4))
    loud = [synthesise(style, 4, 16000) for style in styles.to_dict("records")]
    sf.write(tmp_path / "loud.wav", loud[0], 16000)
    assert np.isinf(batch_data(str(tmp_path / "loud.wav"), backend.n_frames, backend.n_frames)[0]).any()
    first, second = (backend.embed(waveform) for waveform in loud)
    assert np.isfinite(first).all() and np.isfinite(second).all()
    assert np.abs(first - second).max() > 0.1


def test_weights_are_the_checkpoint_not_random(backend):
    # Two freshly built backends must agree: random initialisation would differ.
    again = backends.create("musicnn", model="MSD_musicnn", layer="penultimate", layers=[])
    waveform = np.random.default_rng(0).normal(0, 0.1, 16000 * 4).astype(np.float32)
    np.testing.assert_allclose(backend.embed(waveform), again.embed(waveform), rtol=1e-5)


def test_clip_shorter_than_one_patch_is_padded(backend):
    vector = backend.embed(np.zeros(8000, dtype=np.float32) + 0.01)
    assert vector.shape == (200,) and np.isfinite(vector).all()


def test_unknown_layer_is_refused():
    with pytest.raises(SettingsError, match="musicnn.layer='cnn7': Input should be"):
        backends.create("musicnn", **section("musicnn", layer="cnn7"))


def test_batch_of_tracks_matches_one_track_at_a_time(backend):
    rng = np.random.default_rng(3)
    # Different lengths: 1, 2 and 3 patches, and a clip shorter than one patch.
    waveforms = [0.1 * rng.standard_normal(int(seconds * 16000)).astype(np.float32) for seconds in (3, 6.5, 9.2, 1)]
    one_by_one = np.stack([backend.embed(waveform) for waveform in waveforms])
    np.testing.assert_allclose(backend.embed_batch(waveforms), one_by_one, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def one_patch_clip(clip, tmp_path_factory):
    """The first 3 s of `clip`: one patch, where the library's features are that patch's maps
    (with more, it stacks the maps of later patches along time, and mislabels some of them)."""
    waveform, rate = sf.read(clip, dtype="float32")
    path = tmp_path_factory.mktemp("audio") / "one_patch.wav"
    sf.write(path, waveform[: 3 * rate], rate)
    return path


@pytest.mark.parametrize("model", ["MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"])
def test_every_stored_layer_is_the_library_extractors_map_averaged(one_patch_clip, model):
    """One backend storing every layer (`layers: all`) gives, in each column block, the library's tensor for that
    layer averaged over every axis but its channels: a per-frame map (musicnn's front- and mid-end), a per-patch
    vector (its pools and penultimate layer), a pooling block (the VGG's time x frequency x channels)."""
    from musicnn.extractor import extractor

    from audiorec.backends.base import split_layers
    from audiorec.settings.musicnn import layers_of

    _, _, features = extractor(
        str(one_patch_clip), model=model, input_length=3, input_overlap=False, extract_features=True
    )
    waveform, _ = sf.read(one_patch_clip, dtype="float32")
    backend = backends.create("musicnn", model=model, layer=layers_of(model)[-1], layers="all")
    assert list(backend.layer_dims) == list(layers_of(model))
    ours = split_layers(backend.embed_patches(waveform), backend.layer_dims)
    for layer in layers_of(model):
        theirs = features[layer].reshape(-1, features[layer].shape[-1]).mean(axis=0)
        assert ours[layer].shape == (1, theirs.shape[0]), (layer, ours[layer].shape)
        np.testing.assert_allclose(ours[layer][0], theirs, rtol=1e-4, atol=1e-5, err_msg=f"{model} {layer}")


def test_storing_layers_changes_no_layer(one_patch_clip):
    """The main layer read alone (`layers: []`, the study's path) equals its block of the extraction storing every
    layer, so a sweep's `penultimate` is the main table's."""
    from audiorec.backends.base import split_layers

    waveform, _ = sf.read(one_patch_clip, dtype="float32")
    alone = backends.create("musicnn", model="MSD_musicnn", layer="penultimate", layers=[])
    together = backends.create("musicnn", model="MSD_musicnn", layer="best", layers=["cnn1", "penultimate"])
    assert alone.layer_dims == {} and together.layer_dims == {"cnn1": 64, "penultimate": 200}
    blocks = split_layers(together.embed_batch([waveform]), together.layer_dims)
    np.testing.assert_allclose(blocks["penultimate"], alone.embed_batch([waveform]), rtol=1e-5, atol=1e-6)


def test_a_layer_of_the_other_architecture_is_refused_with_the_choices():
    with pytest.raises(SettingsError, match="layer 'pool5' is not a layer of MSD_musicnn; choose one of timbral"):
        backends.create("musicnn", **section("musicnn", layer="pool5"))
    with pytest.raises(SettingsError, match="layer 'penultimate' is not a layer of MTT_vgg; choose one of pool1"):
        backends.create("musicnn", **section("musicnn", model="MTT_vgg", layer="penultimate", layers=[]))
