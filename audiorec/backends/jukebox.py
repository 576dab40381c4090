"""Jukebox (OpenAI) through `jukemirlib` (not on PyPI): layer 36 of the 5B prior's
transformer at 44.1 kHz, averaged over time, 4800 dims.

jukemirlib runs on CUDA only (it builds `torch.cuda` tensors), takes at most
8192 VQ-VAE tokens (about 24 s) per clip, embeds one clip at a time and keeps its
model in module globals; on first use it downloads about 10 GB of weights into
`jukebox.cache_dir`. One `extract` call returns every layer asked for from one pass,
which runs the prior only up to the *last layer of the list*: the list goes in ascending
order, or the deeper layers would be missing."""

from __future__ import annotations

import os

import numpy as np

from audiorec.backends.base import AudioBackend, BackendUnavailable
from audiorec.backends.pretrained import require
from audiorec.settings.layers import BEST

WIDTH = 4800


class JukeboxBackend(AudioBackend):
    name = "jukebox"
    sample_rate = 44100

    def __init__(self, *, layer: int | str, layers: list[int], cache_dir: str):
        self.jukemirlib = require(
            "jukemirlib", self.name, "pip install git+https://github.com/rodrigo-castellon/jukemirlib.git"
        )
        # Where its README says to set it (setattr: a module's attributes are not known to the type checker).
        setattr(self.jukemirlib, "CACHE_DIR", os.path.expanduser(cache_dir))
        # With stored layers, every layer wanted side by side in one vector; without, the one named alone.
        self.stores_layers = bool(layers)
        self.layers = sorted({*([] if layer == BEST else [int(layer)]), *layers})
        self.dim = WIDTH * len(self.layers)

    @property
    def layer_dims(self) -> dict[str, int]:
        return {str(layer): WIDTH for layer in self.layers} if self.stores_layers else {}

    def use_device(self, device: str, dtype: str, local_rank: int = 0) -> None:
        import torch

        if device == "cpu" or not torch.cuda.is_available():
            raise BackendUnavailable(
                "jukebox: jukemirlib runs on CUDA only (extract.device must be auto or cuda on a GPU machine)"
            )
        if dtype != "float32":
            raise ValueError(
                f"extract.dtype={dtype}: jukebox runs in float32 here (jukemirlib's fp16 path is not the study's)"
            )
        torch.cuda.set_device(local_rank)
        self.device_kind = "cuda"

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        by_layer = self.jukemirlib.extract(audio=waveform, layers=self.layers, meanpool=True)
        missing = [layer for layer in self.layers if layer not in by_layer]
        if missing:
            raise RuntimeError(f"jukebox: jukemirlib returned no layer {missing} for layers={self.layers}")
        return np.concatenate([np.asarray(by_layer[layer], dtype=np.float32).reshape(-1) for layer in self.layers])
