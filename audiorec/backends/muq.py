"""MuQ (OpenMuQ/MuQ-large-msd-iter) through the `muq` package: 24 kHz, 1024 dims.

`muq` is on PyPI but imports torchaudio, nnAudio and x_clip; its weights come from
the hub (or a local folder saved with `save_pretrained`). Its forward pass returns the
`hidden_states` of its conformer (entry 0 the convolutional embeddings, then one per
layer: 13 for the large model), so every layer comes from one pass."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from audiorec.backends.pretrained import (
    HiddenStatesBackend,
    check_pooling,
    conformer_hidden_states,
    conformer_width,
    load_pretrained,
    require,
)

if TYPE_CHECKING:
    import torch  # annotations only: the backends import torch when they run

INSTALL = "pip install muq (it needs a torchaudio that matches your torch)"


class MuQBackend(HiddenStatesBackend):
    name = "muq"
    sample_rate = 24000
    model: Any  # muq's MuQ, from a package that ships no types

    def __init__(self, *, model: str, layer: int | str, layers: list[int], pooling: str):
        package = require("muq", self.name, INSTALL)
        self.model = load_pretrained(self.name, model, package.MuQ.from_pretrained)
        self.pooling = check_pooling(self.name, pooling)
        self.encoder = self.model.model.conformer  # the transformers conformer encoder MuQ runs
        self.choose_states(layer, layers, len(self.encoder.layers) + 1, conformer_width(self.encoder), model)

    def forward(self, waveforms: list[np.ndarray]) -> "torch.Tensor":
        with conformer_hidden_states(self.encoder):
            output = self.model(self.batch(waveforms), output_hidden_states=True)
        return self.pool_states(output.hidden_states)
