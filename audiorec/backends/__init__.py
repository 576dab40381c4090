"""Audio backends, registered by name.

Classes are imported on first use (see audiorec.registry); add a backend by
adding its module here.
"""
from __future__ import annotations

from audiorec import registry
from audiorec.backends.base import AudioBackend, Backend, extract

REGISTRY: dict[str, str] = {
    "random": "audiorec.backends.random:RandomBackend",
    "mfcc": "audiorec.backends.mfcc:MFCCBackend",
    "musicnn": "audiorec.backends.musicnn:MusicnnBackend",
    "oracle": "audiorec.backends.oracle:OracleBackend",
}


def create(name: str, **params) -> Backend:
    """Build a registered backend from its `params.yaml` section."""
    return registry.create(REGISTRY, name, "backend", **params)


__all__ = ["REGISTRY", "AudioBackend", "Backend", "create", "extract"]
