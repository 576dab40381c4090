"""MusiCNN (Pons & Serra) and its VGG baseline through the four checkpoints shipped in the `musicnn`
package: MSD_musicnn, MTT_musicnn, MSD_vgg, MTT_vgg (two architectures, each trained on the Million
Song Dataset's and on MagnaTagATune's tags).

The library's own `extractor()` rebuilds the TensorFlow graph and session on
every call, runs one 3 s patch per session call, and restores the checkpoint
inside a bare try/except that would silently leave random weights. Here the
graph is built and restored once per process (failing loudly), and the
patches of a whole batch of tracks go through the network in one call. The spectrogram follows
`musicnn.extractor.batch_data` step for step, so every layer is the library's,
except that the library's float16 overflow on loud input is avoided (see
`log_mel_patches`).

Every layer `define_model` returns is one vector per 3 s patch: the per-patch vectors
(`mean_pool`, `max_pool`, `penultimate`) as they are, the per-frame maps of musicnn's
front- and mid-end averaged over time, the VGG's pooling blocks averaged over time and
frequency; a track's vector is the mean over its patches.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from audiorec.backends.base import AudioBackend
from audiorec.settings.layers import BEST, in_network_order
from audiorec.settings.musicnn import layers_of

MUSICNN_RATE = 16000
FFT_HOP = 256
FFT_SIZE = 512
N_MELS = 96
PATCH_SECONDS = 3


def checkpoint_dir(model: str) -> Path:
    import musicnn

    return Path(musicnn.__file__).parent / model


def log_mel_patches(waveform: np.ndarray, n_frames: int) -> np.ndarray:
    """musicnn's input: log-compressed mel frames cut into non-overlapping patches of `n_frames`."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=waveform, sr=MUSICNN_RATE, hop_length=FFT_HOP, n_fft=FFT_SIZE, n_mels=N_MELS
    ).T
    # musicnn rounds the mel power to float16 and computes log10(10000 * x + 1) in float16,
    # which overflows to inf for any bin above 6.55 (ordinary loud audio) and saturates the
    # network into one constant vector. Reproduce the float16 arithmetic where it fits, so
    # features match the library bit for bit there, and use float32 where it would overflow.
    half = np.float16
    rounded = np.minimum(mel, np.finfo(half).max).astype(half).astype(np.float32)
    scaled = 10000 * rounded
    fits = scaled < float(np.finfo(half).max) - 1
    as_library = np.log10(np.where(fits, scaled, 0).astype(half) + half(1)).astype(np.float32)
    log_mel = np.where(fits, as_library, np.log10(scaled + 1))
    if len(log_mel) < n_frames:
        # The library has no patch to return for a clip shorter than one and fails; here the
        # clip is zero-padded (log10(1 + 0): silence) to one patch.
        log_mel = np.pad(log_mel, ((0, n_frames - len(log_mel)), (0, 0)))
    starts = range(0, log_mel.shape[0] - n_frames + 1, n_frames)
    return np.stack([log_mel[s : s + n_frames] for s in starts]).astype(np.float32)


def per_patch(tf, tensor):
    """One vector per patch: drop the size-1 axes (musicnn's mid-end maps carry their channels on axis 2 and a
    trailing 1), then average every axis between the patch and the channels (time for musicnn's per-frame maps;
    time and frequency for the VGG's pooling blocks)."""
    singletons = [axis for axis in range(1, tensor.shape.rank) if tensor.shape[axis] == 1]
    tensor = tf.squeeze(tensor, singletons) if singletons else tensor
    inner = list(range(1, tensor.shape.rank - 1))
    return tf.reduce_mean(tensor, axis=inner) if inner else tensor


class MusicnnBackend(AudioBackend):
    name = "musicnn"
    sample_rate = MUSICNN_RATE

    def __init__(self, *, model: str, layer: str, layers: list[str] | str):
        # tf.compat.v1.layers needs Keras 2 (tf-keras); this must be set before TensorFlow loads.
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # TensorFlow turns its oneDNN kernels on by itself only on some Intel CPUs; on a
        # 2-core AMD EPYC without AVX-512 they made extraction 2.2x faster (10.7 vs 4.9 tracks/s).
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
        import librosa
        import tensorflow as tf
        from musicnn import configuration, models

        network = layers_of(model)
        stored = in_network_order(layers, network)
        wanted = set(stored) | ({layer} if layer != BEST else set())
        unknown = sorted(wanted - set(network))
        if unknown:
            raise ValueError(f"musicnn: {', '.join(unknown)} not a layer of {model}; choose among {', '.join(network)}")
        self.model = model
        # Stored layers: every layer wanted side by side in one vector, the extract stage splits them;
        # none: the one layer alone, as the study read it.
        self.layers = [name for name in network if name in wanted]
        self.n_frames = (
            int(librosa.time_to_frames(PATCH_SECONDS, sr=MUSICNN_RATE, n_fft=FFT_SIZE, hop_length=FFT_HOP)) + 1
        )
        labels = configuration.MSD_LABELS if model.startswith("MSD") else configuration.MTT_LABELS
        self.graph = tf.Graph()
        with self.graph.as_default():
            with tf.name_scope("model"):
                self.patches = tf.compat.v1.placeholder(tf.float32, [None, self.n_frames, N_MELS])
                self.is_training = tf.compat.v1.placeholder(tf.bool)
                outputs = models.define_model(self.patches, self.is_training, model, len(labels))
            tensors = dict(zip(network, outputs[1:]))
            pooled = [per_patch(tf, tensors[name]) for name in self.layers]
            self.widths = {name: int(vector.shape[-1]) for name, vector in zip(self.layers, pooled)}
            self.output = tf.concat(pooled, axis=-1) if len(pooled) > 1 else pooled[0]
            self.session = tf.compat.v1.Session(graph=self.graph)
            prefix = str(checkpoint_dir(model)) + "/"
            try:
                tf.compat.v1.train.Saver().restore(self.session, prefix)
            except Exception as error:
                raise RuntimeError(
                    f"could not restore the {model} checkpoint from {prefix}: {error}. "
                    "Reinstall it with `pip install --no-deps --force-reinstall musicnn==0.1.0`."
                ) from error
        self.stores_layers = bool(stored)
        self.dim = int(self.output.shape[-1])

    @property
    def layer_dims(self) -> dict[str, int]:
        return self.widths if self.stores_layers else {}

    def patches_of(self, waveform: np.ndarray) -> np.ndarray:
        """The track's 3 s log-mel patches (zero-padded to one patch if shorter)."""
        minimum = (self.n_frames - 1) * FFT_HOP
        if len(waveform) < minimum:
            waveform = np.pad(waveform, (0, minimum - len(waveform)))
        return log_mel_patches(waveform, self.n_frames)

    def embed_patches(self, waveform: np.ndarray) -> np.ndarray:
        """The layers' vectors (side by side) for every 3 s patch of the track."""
        return self._run(self.patches_of(waveform))

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        return self.embed_patches(waveform).mean(axis=0).astype(np.float32)

    def embed_batch(self, waveforms: list[np.ndarray]) -> np.ndarray:
        # One session call for the whole batch: a 3 s clip is a single patch, far too
        # little work per call to keep the CPU busy (about 1.7x faster per patch).
        per_track = [self.patches_of(waveform) for waveform in waveforms]
        outputs = self._run(np.concatenate(per_track))
        bounds = np.cumsum([len(patches) for patches in per_track])[:-1]
        return np.stack([part.mean(axis=0) for part in np.split(outputs, bounds)]).astype(np.float32)

    def _run(self, patches: np.ndarray) -> np.ndarray:
        return self.session.run(self.output, feed_dict={self.patches: patches, self.is_training: False})
