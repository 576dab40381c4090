"""MusicFM (Won et al.) from a clone of its repository (not a package): layer 12 at
24 kHz, averaged over *time*, 1024 dims. The original study averaged over the channels
instead (a bug: a 750-dim vector of per-frame means for a 30 s clip).

`get_predictions` returns every hidden state of its conformer (entry 0 the convolutional
embeddings, then one per layer: 13), so the stored `layers` come from the same pass;
`get_latent(x, layer_ix)` is that pass's entry `layer_ix`."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from audiorec.backends.base import BackendUnavailable
from audiorec.backends.pretrained import (
    HiddenStatesBackend,
    check_pooling,
    conformer_hidden_states,
    conformer_width,
    load_pretrained,
)

if TYPE_CHECKING:
    import torch  # annotations only: the backends import torch when they run

GET = (
    "git clone https://github.com/minzwon/musicfm {repo} && "
    "wget -P {repo}/data https://huggingface.co/minzwon/MusicFM/resolve/main/msd_stats.json "
    "https://huggingface.co/minzwon/MusicFM/resolve/main/pretrained_msd.pt && "
    "hf download facebook/wav2vec2-conformer-rope-large-960h-ft config.json"
)
# The repository imports its own modules as `musicfm.modules...`: the clone must be a folder of that name, found
# from its parent folder.
PACKAGE = "musicfm"


class MusicFMBackend(HiddenStatesBackend):
    name = "musicfm"
    sample_rate = 24000
    model: Any  # MusicFM25Hz, from the repository's code, which ships no types

    def __init__(
        self,
        *,
        repo: str,
        stat_path: str,
        model_path: str,
        layer: int | str,
        layers: list[int],
        pooling: str,
    ):
        self.pooling = check_pooling(self.name, pooling)
        for key, path in {"repo": repo, "stat_path": stat_path, "model_path": model_path}.items():
            if not Path(path).exists():
                raise BackendUnavailable(
                    f"musicfm.{key}: {path} does not exist. MusicFM is not a package: get its code and weights with "
                    f"`{GET.format(repo=repo)}`, then point musicfm.repo, stat_path and model_path there"
                )
        if Path(repo).name != PACKAGE:
            raise BackendUnavailable(
                f"musicfm.repo: {repo} must be a folder named {PACKAGE}: the repository's code imports itself as "
                f"`{PACKAGE}.modules`; clone it as `git clone https://github.com/minzwon/musicfm models/{PACKAGE}`"
            )
        sys.path.insert(0, str(Path(repo).resolve().parent))  # its README's import: `from musicfm.model...`
        module = importlib.import_module(f"{PACKAGE}.model.musicfm_25hz")
        self.model = load_pretrained(
            self.name,
            model_path,
            lambda path: module.MusicFM25Hz(is_flash=False, stat_path=stat_path, model_path=path),
            download=f"`{GET.format(repo=repo)}`",
        )
        self.choose_states(
            layer, layers, len(self.model.conformer.layers) + 1, conformer_width(self.model.conformer), model_path
        )

    def forward(self, waveforms: list[np.ndarray]) -> "torch.Tensor":
        with conformer_hidden_states(self.model.conformer):
            _, hidden_states = self.model.get_predictions(self.batch(waveforms))
        return self.pool_states(hidden_states)
