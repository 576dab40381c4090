"""The files of one extraction that stores layers (a backend's `layers`): each stored layer's matrix, and the
main layer's, split from the side-by-side vectors the backend returns."""

from __future__ import annotations

import shutil

import numpy as np

from audiorec import paths
from audiorec.backends.base import Backend, split_layers
from audiorec.settings.backends import layered


def write_layers(name: str, backend: Backend, embeddings: np.ndarray, section: dict, dtype: str) -> dict:
    """Each stored layer to data/layers/<name>/<layer>.npy in `dtype`, the main layer (unless `best`) to
    data/embeddings/<name>.npy in float32; returns the stored layers' widths for the metrics."""
    settings = layered(name, section)
    assert settings is not None  # a backend with layer_dims has a layered section
    by_layer = split_layers(embeddings, backend.layer_dims)
    folder = paths.stored_layers(name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    stored = {}
    for layer in settings.stored_layers():
        matrix = by_layer[backend.layer_key(layer)]
        np.save(folder / f"{layer}.npy", matrix.astype(dtype))
        stored[layer] = matrix.shape[1]
    main = settings.main_layer()
    if main is not None:
        paths.EMBEDDINGS.mkdir(parents=True, exist_ok=True)
        np.save(paths.embeddings(name), by_layer[backend.layer_key(main)])
    return stored
