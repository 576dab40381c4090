"""Controls: the same model and data with one kind of signal destroyed.

`shuffled`: a backend's own vectors, dealt out to the wrong tracks. The control
keeps everything about an embedding matrix except which track each row belongs
to: the same values, dimension and distribution, but no content. What a backend
gains over its control is what its audio content gives; what the control reaches
on its own is the recommender's capacity to fit arbitrary vectors.

`unordered`: a sequential model (BERT4Rec) trained with the tracks of each
training sequence in random order. What the model gains over it is what the
order of listening gives.
"""

from __future__ import annotations

import numpy as np

from audiorec.io import masked_rows

KINDS = ("shuffled", "unordered")


def control_name(backend: str, kind: str = "shuffled") -> str:
    """The name a backend's control of `kind` goes by in paths and tables."""
    return f"{backend}_{kind}"


def shuffle_rows(item_embeddings: np.ndarray, seed: int) -> np.ndarray:
    """The rows of `item_embeddings` in a random order fixed by `seed`; masked rows (tracks
    the extraction skipped) stay where they are, so the control leaves out the same tracks."""
    usable = np.flatnonzero(~masked_rows(item_embeddings))
    shuffled = item_embeddings.copy()
    shuffled[usable] = item_embeddings[usable[np.random.default_rng(seed).permutation(len(usable))]]
    return shuffled
