"""MuQ-MuLan (OpenMuQ/MuQ-MuLan-large): the audio tower of a music-text joint
embedding, 24 kHz, one 512-dim vector per clip, through the `muq` package."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from audiorec.backends.muq import INSTALL
from audiorec.backends.pretrained import TorchBackend, load_pretrained, require

if TYPE_CHECKING:
    import torch  # annotations only: the backends import torch when they run


class MuQMuLanBackend(TorchBackend):
    name = "muq_mulan"
    sample_rate = 24000
    dim = 512

    def __init__(self, *, model: str):
        package = require("muq", self.name, INSTALL)
        self.model = load_pretrained(self.name, model, package.MuQMuLan.from_pretrained)

    def forward(self, waveforms: list[np.ndarray]) -> "torch.Tensor":
        return self.model(wavs=self.batch(waveforms))
