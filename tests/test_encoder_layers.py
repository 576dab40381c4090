"""Every layer from one pass for the backends whose code cannot be installed here (MuQ, MusicFM, Jukebox).

MuQ and MusicFM run a transformers `Wav2Vec2ConformerEncoder` and read its `hidden_states`, which the bare
encoder stopped returning in transformers 5: `conformer_hidden_states` restores them. It is checked on a real
tiny encoder against the definition transformers 4 computed (each layer's input, then the final layer norm).
`muq` (its torchaudio does not import beside torch 2.13), MusicFM (a repository clone, weights from the hub) and
`jukemirlib` (not on PyPI, CUDA only) are stood in for by code that follows their documented calls around that
real encoder, or around a known function of the layer number, so the backends' own code runs: the import, the
layers they store, their order, their pooling.
"""

import sys
import types

import numpy as np
import pytest

from audiorec import backends
from audiorec.backends.base import BackendUnavailable, split_layers
from audiorec.backends.pretrained import conformer_hidden_states
from model_settings import section

WIDTH = 16
FRAME = 100  # samples per frame of the stand-in's embedding


@pytest.fixture(scope="module")
def encoder():
    """A tiny random conformer encoder, as MuQ and MusicFM build it (rotary positions)."""
    import torch
    from transformers import Wav2Vec2ConformerConfig
    from transformers.models.wav2vec2_conformer.modeling_wav2vec2_conformer import Wav2Vec2ConformerEncoder

    torch.manual_seed(0)
    config = Wav2Vec2ConformerConfig(
        hidden_size=WIDTH,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        position_embeddings_type="rotary",
        conv_depthwise_kernel_size=3,
    )
    return Wav2Vec2ConformerEncoder(config).eval()


def states_by_definition(encoder, inputs):
    """transformers 4's `hidden_states` of the encoder, computed layer by layer: the input to each layer (in eval
    mode dropout is the identity), then the last layer's output after the encoder's layer norm."""
    import torch

    with torch.inference_mode():
        positions = encoder.embed_positions(inputs)
        hidden, states = inputs, []
        for layer in encoder.layers:
            states.append(hidden)
            hidden = layer(hidden, attention_mask=None, relative_position_embeddings=positions)
        return [*states, encoder.layer_norm(hidden)]


def test_the_conformer_returns_transformers_4s_hidden_states_again(encoder):
    import torch

    inputs = torch.randn(2, 12, WIDTH)
    with torch.inference_mode(), conformer_hidden_states(encoder):
        output = encoder(inputs, output_hidden_states=True)
    expected = states_by_definition(encoder, inputs)
    assert len(output["hidden_states"]) == len(encoder.layers) + 1 == len(expected)
    for ours, theirs in zip(output["hidden_states"], expected):
        torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(output["hidden_states"][-1], output["last_hidden_state"])
    # Outside the context the encoder is as transformers left it: no hooks stay behind.
    assert not encoder._forward_hooks and not any(layer._forward_pre_hooks for layer in encoder.layers)


def frames_of(batch):
    """The stand-in's embedding: non-overlapping frames of the waveform, FRAME samples each, WIDTH of them kept."""
    usable = batch.shape[1] // FRAME * FRAME
    return batch[:, :usable].reshape(batch.shape[0], -1, FRAME)[..., :WIDTH]


@pytest.fixture
def stand_in_muq(encoder, monkeypatch):
    """A `muq` module whose `MuQ` runs as the package documents: its `model.conformer`, called with
    `output_hidden_states=True`, and a `BaseModelOutput` with `last_hidden_state` and `hidden_states`."""
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    class MuQ(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = torch.nn.Module()
            self.model.conformer = encoder

        @classmethod
        def from_pretrained(cls, name):
            return cls()

        def forward(self, waveforms, output_hidden_states=True):
            states = self.model.conformer(frames_of(waveforms), output_hidden_states=True)["hidden_states"]
            return BaseModelOutput(last_hidden_state=states[-1], hidden_states=states)

    monkeypatch.setitem(sys.modules, "muq", types.SimpleNamespace(MuQ=MuQ))


def test_muq_stores_every_hidden_state_of_one_pass(stand_in_muq, encoder):
    import torch

    extractor = backends.create("muq", **section("muq", layer=-1, layers=[0, 1, 2, 3]))
    extractor.use_device("cpu", "float32")
    assert extractor.layer_dims == {str(index): WIDTH for index in range(4)} and extractor.layer_key("-1") == "3"
    waveforms = [np.random.default_rng(seed).normal(size=1200).astype(np.float32) for seed in (1, 2)]
    blocks = split_layers(extractor.embed_batch(waveforms), extractor.layer_dims)
    expected = states_by_definition(encoder, frames_of(torch.from_numpy(np.stack(waveforms))))
    for index in range(4):
        np.testing.assert_allclose(blocks[str(index)], expected[index].mean(dim=1).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="muq: hidden state 4 .* hidden states 0..3"):
        backends.create("muq", **section("muq", layer=4))


STAND_IN_MUSICFM = """
import torch
from transformers import Wav2Vec2ConformerConfig
from transformers.models.wav2vec2_conformer.modeling_wav2vec2_conformer import Wav2Vec2ConformerEncoder

from musicfm.modules.frames import frames_of  # the repository imports itself as `musicfm`, as MusicFM's code does


class MusicFM25Hz(torch.nn.Module):
    def __init__(self, is_flash, stat_path, model_path):
        super().__init__()
        torch.manual_seed(0)
        config = Wav2Vec2ConformerConfig(
            hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
            position_embeddings_type="rotary", conv_depthwise_kernel_size=3,
        )
        self.conformer = Wav2Vec2ConformerEncoder(config).eval()

    def get_predictions(self, x):
        out = self.conformer(frames_of(x), output_hidden_states=True)
        return {}, out["hidden_states"]
"""


@pytest.fixture
def fresh_musicfm_modules():
    """The stand-in clone is imported as `musicfm`: no such module before the test, none left after it."""

    def clear():
        for name in [name for name in sys.modules if name == "musicfm" or name.startswith("musicfm.")]:
            del sys.modules[name]

    clear()
    yield
    clear()


def test_musicfm_imports_its_clone_and_stores_every_hidden_state(tmp_path, monkeypatch, fresh_musicfm_modules):
    import inspect

    import torch

    clone = tmp_path / "musicfm"
    (clone / "model").mkdir(parents=True)
    (clone / "modules").mkdir()
    (clone / "data").mkdir()
    (clone / "model" / "musicfm_25hz.py").write_text(STAND_IN_MUSICFM)
    (clone / "modules" / "frames.py").write_text("WIDTH, FRAME = 16, 100\n" + inspect.getsource(frames_of))
    for name in ("msd_stats.json", "pretrained_msd.pt"):
        (clone / "data" / name).write_text("")
    monkeypatch.setattr(sys, "path", list(sys.path))
    paths = {"repo": str(clone), "stat_path": str(clone / "data/msd_stats.json")}
    extractor = backends.create(
        "musicfm",
        **section("musicfm", **paths, model_path=str(clone / "data/pretrained_msd.pt"), layer=3, layers=[0, 3]),
    )
    extractor.use_device("cpu", "float32")
    assert extractor.layer_dims == {"0": WIDTH, "3": WIDTH} and extractor.layer_key("-1") == "3"
    waveforms = [np.random.default_rng(seed).normal(size=1000).astype(np.float32) for seed in (3, 4)]
    blocks = split_layers(extractor.embed_batch(waveforms), extractor.layer_dims)
    expected = states_by_definition(extractor.model.conformer, frames_of(torch.from_numpy(np.stack(waveforms))))
    for index in (0, 3):
        np.testing.assert_allclose(blocks[str(index)], expected[index].mean(dim=1).numpy(), rtol=1e-5, atol=1e-6)
    renamed = tmp_path / "musicfm-main"
    clone.rename(renamed)
    with pytest.raises(BackendUnavailable, match="must be a folder named musicfm"):
        backends.create(
            "musicfm", **section("musicfm", repo=str(renamed), stat_path=str(renamed), model_path=str(renamed))
        )


def layer_vector(waveform, layer):
    """What the stand-in jukemirlib gives for a layer: a function of the clip and the layer number."""
    return np.full(4800, layer + float(waveform.mean()), dtype=np.float32)


@pytest.fixture
def stand_in_jukemirlib(monkeypatch):
    """A `jukemirlib` whose `extract` returns a dict layer -> mean-pooled vector and, like jukemirlib, stops the
    prior at the last layer of the list it is given (a layer listed after a smaller one is never reached)."""

    def extract(audio, layers, meanpool):
        assert meanpool
        reached = []
        for layer in range(1, 73):
            if layer in layers:
                reached.append(layer)
            if layer == layers[-1]:
                break
        return {layer: layer_vector(audio, layer) for layer in reached}

    monkeypatch.setitem(sys.modules, "jukemirlib", types.SimpleNamespace(extract=extract))


def test_jukebox_asks_for_its_layers_in_order_and_stores_each(stand_in_jukemirlib):
    extractor = backends.create("jukebox", **section("jukebox", layer=36, layers=[48, 12, 36]))
    assert extractor.layer_dims == {"12": 4800, "36": 4800, "48": 4800}
    waveform = np.linspace(-1, 1, 441).astype(np.float32)
    blocks = split_layers(extractor.embed(waveform)[None], extractor.layer_dims)
    for layer in (12, 36, 48):
        np.testing.assert_array_equal(blocks[str(layer)][0], layer_vector(waveform, layer))
    # Without stored layers it reads the one layer, as the study did.
    alone = backends.create("jukebox", **section("jukebox", layer=36))
    assert alone.layer_dims == {} and alone.dim == 4800
    np.testing.assert_array_equal(alone.embed(waveform), layer_vector(waveform, 36))


def test_jukebox_layers_are_the_priors():
    from audiorec.config import ParamsError
    from audiorec.settings.backends import layered

    assert layered("jukebox", section("jukebox", layer="best", layers=[72, 1])).stored_layers() == ["1", "72"]
    with pytest.raises(ParamsError, match="jukebox"):
        layered("jukebox", section("jukebox", layers=[73]))
    with pytest.raises(ParamsError, match="layer: best chooses among the stored layers"):
        layered("jukebox", section("jukebox", layer="best"))
