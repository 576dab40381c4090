"""EnCodecMAE (Pepino et al.) through the `encodecmae` package (not on PyPI): the
last encoder layer at 24 kHz, averaged over time, 768 dims for `base`.

The package embeds one clip at a time (`extract_features_from_array`, in 4 s chunks)
and in float32 only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from audiorec.backends.pretrained import TorchBackend, load_pretrained, require

if TYPE_CHECKING:
    import torch  # annotations only: the backends import torch when they run


class EncodecMAEBackend(TorchBackend):
    name = "encodecmae"
    sample_rate = 24000
    full_precision_only = True
    model: Any  # encodecmae's model class, from a package that ships no types

    def __init__(self, *, model: str):
        package = require("encodecmae", self.name, "pip install git+https://github.com/habla-liaa/encodecmae")
        self.model = load_pretrained(
            self.name,
            model,
            lambda name: package.load_model(name, device="cpu"),
            download=f"`hf download lpepino/encodecmae-{model}` "
            "(the package reads the Hugging Face cache; encodecmae.model names the size)",
        )
        self.dim = self.model.visible_encoder.model_dim

    def forward(self, waveforms: list[np.ndarray]) -> "torch.Tensor":
        import torch

        frames = [self.model.extract_features_from_array(waveform) for waveform in waveforms]
        return torch.from_numpy(np.stack([clip.mean(axis=0) for clip in frames]))
