"""Shuffled-embedding controls: a backend's own vectors, dealt out to the wrong tracks.

A control keeps everything about an embedding matrix except which track each
row belongs to: the same values, dimension and distribution, but no content.
What a backend gains over its control is what its audio content gives; what
the control reaches on its own is the recommender's capacity to fit arbitrary
vectors.
"""
from __future__ import annotations

import numpy as np

from audiorec.io import masked_rows

SUFFIX = "_shuffled"


def control_name(backend: str) -> str:
    """The name a backend's control goes by in paths and tables."""
    return f"{backend}{SUFFIX}"


def shuffle_rows(item_embeddings: np.ndarray, seed: int) -> np.ndarray:
    """The rows of `item_embeddings` in a random order fixed by `seed`; masked rows (tracks
    the extraction skipped) stay where they are, so the control leaves out the same tracks."""
    usable = np.flatnonzero(~masked_rows(item_embeddings))
    shuffled = item_embeddings.copy()
    shuffled[usable] = item_embeddings[usable[np.random.default_rng(seed).permutation(len(usable))]]
    return shuffled
