"""Audio backends, registered by name.

Classes are imported on first use, so validating names in params.yaml does not
load librosa or TensorFlow; add a backend by adding its module here.
"""
from __future__ import annotations

from importlib import import_module

from audiorec.backends.base import AudioBackend, Backend, extract

REGISTRY: dict[str, str] = {
    "random": "audiorec.backends.random:RandomBackend",
    "mfcc": "audiorec.backends.mfcc:MFCCBackend",
    "musicnn": "audiorec.backends.musicnn:MusicnnBackend",
    "oracle": "audiorec.backends.oracle:OracleBackend",
}


def create(name: str, **params) -> Backend:
    """Build a registered backend from its `params.yaml` section."""
    if name not in REGISTRY:
        raise KeyError(f"unknown backend {name!r} (params.yaml: backends); registered backends: {', '.join(sorted(REGISTRY))}")
    module, cls = REGISTRY[name].split(":")
    return getattr(import_module(module), cls)(**params)


__all__ = ["REGISTRY", "AudioBackend", "Backend", "create", "extract"]
