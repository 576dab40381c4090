"""Music2Vec-v1 (m-a-p): a Data2VecAudio music encoder, 768 dims.

It was trained on 16 kHz audio, the default here; the original study fed it
24 kHz audio (set `music2vec.sample_rate: 24000` to reproduce that, with a warning)."""

from __future__ import annotations

from audiorec.backends.pretrained import TransformersBackend


class Music2VecBackend(TransformersBackend):
    name = "music2vec"
