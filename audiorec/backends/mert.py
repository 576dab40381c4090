"""MERT-v1-330M (m-a-p): a HuBERT-style music encoder on 24 kHz audio, 1024 dims.

Its model class lives in the hub repository, so loading it needs
`mert.trust_remote_code: true` (off by default: it runs that code)."""

from __future__ import annotations

from audiorec.backends.pretrained import TransformersBackend


class MertBackend(TransformersBackend):
    name = "mert"
