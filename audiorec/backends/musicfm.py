"""MusicFM (Won et al.) from a clone of its repository (not a package): layer 12 at
24 kHz, averaged over *time*, 1024 dims. The original study averaged over the channels
instead (a bug: a 750-dim vector of per-frame means for a 30 s clip)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from audiorec.backends.base import BackendUnavailable
from audiorec.backends.pretrained import TorchBackend, check_pooling, load_pretrained, pool_time

if TYPE_CHECKING:
    import torch  # annotations only: the backends import torch when they run

GET = (
    "git clone https://github.com/minzwon/musicfm {repo} && "
    "wget -P {repo}/data https://huggingface.co/minzwon/MusicFM/resolve/main/msd_stats.json "
    "https://huggingface.co/minzwon/MusicFM/resolve/main/pretrained_msd.pt"
)


class MusicFMBackend(TorchBackend):
    name = "musicfm"
    sample_rate = 24000
    dim = 1024
    model: Any  # MusicFM25Hz, from the repository's code, which ships no types

    def __init__(
        self,
        *,
        repo: str,
        stat_path: str,
        model_path: str,
        layer: int,
        pooling: str,
    ):
        self.pooling = check_pooling(self.name, pooling)
        for key, path in {"repo": repo, "stat_path": stat_path, "model_path": model_path}.items():
            if not Path(path).exists():
                raise BackendUnavailable(
                    f"musicfm.{key}: {path} does not exist. MusicFM is not a package: get its code and weights with "
                    f"`{GET.format(repo=repo)}`, then point musicfm.repo, stat_path and model_path there"
                )
        sys.path.insert(
            0, str(Path(repo).resolve())
        )  # the repository's documented import: `from model.musicfm_25hz import ...`
        module = importlib.import_module("model.musicfm_25hz")
        self.model = load_pretrained(
            self.name,
            model_path,
            lambda path: module.MusicFM25Hz(is_flash=False, stat_path=stat_path, model_path=path),
            download=f"`{GET.format(repo=repo)}`",
        )
        self.layer = layer

    def forward(self, waveforms: list[np.ndarray]) -> "torch.Tensor":
        return pool_time(self.model.get_latent(self.batch(waveforms), layer_ix=self.layer), self.pooling)
