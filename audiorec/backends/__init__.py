"""Audio backends, registered by name. Importing this package registers them all.

The musicnn module imports TensorFlow only when a musicnn backend is built.
"""
from audiorec.backends import mfcc, musicnn, oracle, random  # noqa: F401  (registration)
from audiorec.backends.base import REGISTRY, AudioBackend, Backend, create, extract

__all__ = ["REGISTRY", "AudioBackend", "Backend", "create", "extract"]
