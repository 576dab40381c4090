"""Audio backends, registered by name.

Classes are imported on first use (see audiorec.registry); add a backend by
adding its module here.
"""
from __future__ import annotations

from audiorec import registry
from audiorec.backends.base import AudioBackend, Backend, BackendUnavailable, ExtractionError
from audiorec.backends.engine import extract

REGISTRY: dict[str, str] = {
    "random": "audiorec.backends.random:RandomBackend",
    "mfcc": "audiorec.backends.mfcc:MFCCBackend",
    "musicnn": "audiorec.backends.musicnn:MusicnnBackend",
    "oracle": "audiorec.backends.oracle:OracleBackend",
    "mert": "audiorec.backends.mert:MertBackend",
    "music2vec": "audiorec.backends.music2vec:Music2VecBackend",
    "encodecmae": "audiorec.backends.encodecmae:EncodecMAEBackend",
    "musicfm": "audiorec.backends.musicfm:MusicFMBackend",
    "jukebox": "audiorec.backends.jukebox:JukeboxBackend",
    "mule": "audiorec.backends.mule:MuleBackend",
    "muq": "audiorec.backends.muq:MuQBackend",
    "muq_mulan": "audiorec.backends.muq_mulan:MuQMuLanBackend",
}


def create(name: str, **params) -> Backend:
    """Build a registered backend from its `params.yaml` section."""
    return registry.create(REGISTRY, name, "backend", **params)


__all__ = ["REGISTRY", "AudioBackend", "Backend", "BackendUnavailable", "ExtractionError", "create", "extract"]
