"""MuQ (OpenMuQ/MuQ-large-msd-iter) through the `muq` package: 24 kHz, 1024 dims.

`muq` is on PyPI but imports torchaudio, nnAudio and x_clip; its weights come from
the hub (or a local folder saved with `save_pretrained`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from audiorec.backends.pretrained import TorchBackend, check_pooling, load_pretrained, pool_time, require

if TYPE_CHECKING:
    import torch  # annotations only: the backends import torch when they run

INSTALL = "pip install muq (it needs a torchaudio that matches your torch)"


class MuQBackend(TorchBackend):
    name = "muq"
    sample_rate = 24000
    dim = 1024

    def __init__(self, *, model: str, layer: int, pooling: str):
        package = require("muq", self.name, INSTALL)
        self.model = load_pretrained(self.name, model, package.MuQ.from_pretrained)
        self.layer = layer
        self.pooling = check_pooling(self.name, pooling)

    def forward(self, waveforms: list[np.ndarray]) -> "torch.Tensor":
        output = self.model(self.batch(waveforms), output_hidden_states=True)
        return pool_time(output.hidden_states[self.layer], self.pooling)
