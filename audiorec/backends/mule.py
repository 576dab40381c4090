"""MULE (SF-NFNet-F0, SiriusXM/Pandora) through `mule-torch`, a PyTorch port of the
original TensorFlow model: the 1728-dim embedding averaged over its ~2 s slices.

mule-torch documents 16 kHz mono input (its mel front-end is built for it), so that
is the rate here; the journal study lists 44.1 kHz for MULE."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from audiorec.backends.pretrained import TorchBackend, load_pretrained, local_folder, require

if TYPE_CHECKING:
    import torch  # annotations only: the backends import torch when they run


class MuleBackend(TorchBackend):
    name = "mule"
    sample_rate = 16000
    dim = 1728

    def __init__(self, *, model: str):
        package = require("mule_torch", self.name, "pip install mule-torch (GPL-3.0; weights CC BY-NC 4.0)")
        folder = local_folder(model)
        load = package.MuleModel.from_pretrained
        self.model = load_pretrained(
            self.name, model, lambda name: load(model_dir=folder) if folder else load(hf_repo=name)
        )

    def forward(self, waveforms: list[np.ndarray]) -> "torch.Tensor":
        return self.model(self.batch(waveforms))
