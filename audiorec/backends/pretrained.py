"""What the pretrained torch backends share: device and precision, batches of equal
length, time pooling, and one clear error for a missing package or missing weights.

`TransformersBackend` is the generic Hugging Face path (AutoModel +
AutoFeatureExtractor) behind `mert` and `music2vec`; the other backends wrap
their own packages' documented APIs.
"""

from __future__ import annotations

import importlib
import logging
import os
from abc import abstractmethod
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Sequence, TypeVar

import numpy as np

from audiorec.backends.base import DEVICES, DTYPES, AudioBackend, BackendUnavailable
from audiorec.settings.layers import BEST

if TYPE_CHECKING:
    # Annotations only: the backends import torch and transformers when they run.
    import torch
    from transformers import PreTrainedModel

log = logging.getLogger(__name__)

POOLINGS = ("mean", "max")
T = TypeVar("T")


def require(module: str, backend: str, install: str) -> ModuleType:
    """Import `module` or stop with what to install: a backend never falls back to random features."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise BackendUnavailable(
            f"{backend}: the Python package providing `{module}` is not installed ({error}). "
            f"Install it with: {install}. "
            f"Or remove '{backend}' from params.yaml: backends"
        ) from error


def load_pretrained(backend: str, model: str, load: Callable[[str], T], download: str | None = None) -> T:
    """`load(model)`, where `model` is a hub name or a local folder, with every way that fails
    (offline, never downloaded, a wrong folder, remote code not allowed) turned into one message."""
    if is_path(model) and not Path(model).exists():
        raise BackendUnavailable(
            f"{backend}.model: the folder {model} does not exist; "
            f"point {backend}.model in params.yaml at the downloaded weights"
        )
    try:
        return load(model)
    except Exception as error:  # noqa: BLE001 - each package raises its own types for a missing or offline checkpoint
        if "trust_remote_code" in str(error):
            raise BackendUnavailable(
                f"{backend}: {model} ships its own model code, which runs only with {backend}.trust_remote_code: true "
                "in params.yaml (read that code first: it runs on your machine)"
            ) from error
        offline = " (HF_HUB_OFFLINE=1: nothing is downloaded)" if os.environ.get("HF_HUB_OFFLINE") == "1" else ""
        if download is None and is_path(model):
            download = f"a fresh download into {model} (it lacks or has broken model files)"
        how = (
            download
            or f"`hf download {model} --local-dir models/{backend}` "
            f"and set {backend}.model in params.yaml to that folder"
        )
        raise BackendUnavailable(
            f"{backend}: cannot load the weights {model!r}{offline}: {str(error).rstrip('.')}. Get them with {how}"
        ) from error


def is_path(model: str) -> bool:
    """A weights location written as a path rather than a hub name ("owner/name")."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or Path(model).exists()


def local_folder(model: str) -> Path | None:
    """`model` as a folder on disk, or None for a hub name."""
    return Path(model).expanduser() if Path(model).expanduser().is_dir() else None


def resolve_device(setting: str, local_rank: int = 0) -> "torch.device":
    """extract.device -> a torch device; under torchrun each rank takes the GPU of its local rank."""
    import torch

    if setting not in DEVICES:
        raise ValueError(f"extract.device={setting!r}; allowed: {', '.join(DEVICES)}")
    if setting == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable("extract.device=cuda but torch sees no CUDA device; use auto or cpu")
    if setting == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def resolve_dtype(setting: str, device: "torch.device") -> "torch.dtype":
    import torch

    if setting not in DTYPES:
        raise ValueError(f"extract.dtype={setting!r}; allowed: {', '.join(DTYPES)}")
    if setting != "float32" and device.type != "cuda":
        raise ValueError(f"extract.dtype={setting} runs only on a CUDA device (here: {device}); use float32 on the CPU")
    return getattr(torch, setting)


def check_pooling(backend: str, pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(f"{backend}.pooling={pooling!r}; allowed: {', '.join(POOLINGS)}")
    return pooling


def pool_time(hidden: "torch.Tensor", how: str) -> "torch.Tensor":
    """`(batch, frames, dim)` -> `(batch, dim)`; `how` was checked by `check_pooling`."""
    return hidden.mean(dim=1) if how == "mean" else hidden.amax(dim=1)


def equal_length_groups(waveforms: list[np.ndarray]) -> dict[int, list[int]]:
    """Positions of the waveforms by length. Padding would change what most of these
    models compute (group norm over time, convolutional positional embeddings), so a
    batch runs only clips of one length: batched equals one at a time. Music4All's
    clips are all 30 s, so real batches stay full."""
    groups: dict[int, list[int]] = {}
    for position, waveform in enumerate(waveforms):
        groups.setdefault(len(waveform), []).append(position)
    return groups


class TorchBackend(AudioBackend):
    """A torch model on `extract.device` in `extract.dtype`, fed batches of equal-length clips."""

    model: "torch.nn.Module"
    # Packages that cast their input to float32 themselves cannot run in reduced precision.
    full_precision_only: ClassVar[bool] = False

    def use_device(self, device: str, dtype: str, local_rank: int = 0) -> None:
        self.device = resolve_device(device, local_rank)
        if self.full_precision_only and dtype != "float32":
            raise ValueError(f"extract.dtype={dtype}: {self.name} runs in float32 only")
        self.dtype = resolve_dtype(dtype, self.device)
        self.device_kind = self.device.type
        self.model.to(self.device, self.dtype).eval()

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        return self.embed_batch([waveform])[0]

    def embed_batch(self, waveforms: list[np.ndarray]) -> np.ndarray:
        import torch

        if not hasattr(self, "device"):
            self.use_device("auto", "float32")
        out = np.empty((len(waveforms), self.dim), dtype=np.float32)
        for positions in equal_length_groups(waveforms).values():
            with torch.inference_mode():
                vectors = self.forward([waveforms[p] for p in positions])
            out[positions] = vectors.float().cpu().numpy()
        return out

    @abstractmethod
    def forward(self, waveforms: list[np.ndarray]) -> "torch.Tensor":
        """`(len(waveforms), dim)` for clips of one length."""

    def batch(self, waveforms: list[np.ndarray]) -> "torch.Tensor":
        """The clips as one `(batch, samples)` tensor on the model's device and precision."""
        import torch

        return torch.from_numpy(np.stack(waveforms)).to(self.device, self.dtype)


@contextmanager
def conformer_hidden_states(encoder: Any) -> Iterator[None]:
    """Within it, a transformers `Wav2Vec2ConformerEncoder` returns `hidden_states` again, as transformers 4 did:
    each layer's input (entry 0 the embeddings), then the final output after the encoder's layer norm.

    MuQ and MusicFM call that bare encoder with `output_hidden_states=True` and read `out["hidden_states"]`; from
    transformers 5 the bare encoder returns `last_hidden_state` only, so both fail without this."""
    states: list = []
    hooks = [layer.register_forward_pre_hook(lambda module, args: states.append(args[0])) for layer in encoder.layers]

    def add_states(module: object, args: object, output: dict) -> None:
        if output.get("hidden_states") is None:
            output["hidden_states"] = (*states, output["last_hidden_state"])
        states.clear()

    hooks.append(encoder.register_forward_hook(add_states))
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def conformer_width(encoder: Any) -> int:
    """The width of a conformer encoder's hidden states (its final layer norm's), whatever its config type."""
    return int(encoder.layer_norm.normalized_shape[0])


class HiddenStatesBackend(TorchBackend):
    """An encoder whose forward pass returns `hidden_states` (entry 0 the input embeddings, then one per layer):
    the entry at `layer` pooled over time; with `layers`, those entries of the same forward pass too, side by
    side (the extract stage splits them)."""

    pooling: str

    def choose_states(self, layer: int | str, layers: list[int], n_states: int, width: int, model_name: str) -> None:
        """Check the indices against the encoder's `n_states` entries of `width` floats; the vector holds each
        wanted one once."""
        self.n_states, self.width = n_states, width
        named = [] if layer == BEST else [int(layer)]
        for index in [*named, *layers]:
            if not -n_states <= index < n_states:
                raise ValueError(
                    f"{self.name}: hidden state {index} (layer or layers); {model_name} has hidden states "
                    f"0..{n_states - 1} (or -1 for the last)"
                )
        # With stored layers, every hidden state wanted side by side in one vector; without, the one named alone.
        self.stores_layers = bool(layers)
        self.indices = sorted({index % n_states for index in [*named, *layers]})
        self.dim = width * len(self.indices)

    @property
    def layer_dims(self) -> dict[str, int]:
        return {str(index): self.width for index in self.indices} if self.stores_layers else {}

    def layer_key(self, layer: str) -> str:
        return str(int(layer) % self.n_states)

    def pool_states(self, hidden_states: "Sequence[torch.Tensor]") -> "torch.Tensor":
        import torch

        return torch.cat([pool_time(hidden_states[index], self.pooling) for index in self.indices], dim=-1)


class TransformersBackend(HiddenStatesBackend):
    """A Hugging Face audio encoder: the hidden state at `layer`, pooled over time; with `layers`, those hidden
    states of the same forward pass too, side by side.

    `model` is a hub name or a local folder; `feature_extractor` another one for the input
    preprocessing where the model's repository has none (Music2Vec's card uses
    data2vec-audio's); `trust_remote_code` runs the model's own Python code from the hub
    (MERT needs it), so it is off unless the user turns it on.
    """

    model: PreTrainedModel

    def __init__(
        self,
        *,
        model: str,
        sample_rate: int,
        layer: int | str,
        layers: list[int],
        pooling: str,
        trust_remote_code: bool,
        feature_extractor: str | None = None,
    ):
        require("transformers", self.name, "pip install transformers")
        from transformers import AutoFeatureExtractor, AutoModel

        self.model_name = model
        self.pooling = check_pooling(self.name, pooling)
        self.extractor = load_pretrained(
            self.name,
            feature_extractor or self.model_name,
            lambda name: AutoFeatureExtractor.from_pretrained(name, trust_remote_code=trust_remote_code),
        )
        self.model = load_pretrained(
            self.name,
            self.model_name,
            lambda name: AutoModel.from_pretrained(name, trust_remote_code=trust_remote_code),
        )
        self.model.eval()
        self.sample_rate = sample_rate
        if self.sample_rate != self.extractor.sampling_rate:
            # The original study fed Music2Vec 24 kHz audio; allowed, to reproduce it, but never silently.
            log.warning(
                "%s: feeding %d Hz audio to %s, which was trained on %d Hz (%s.sample_rate)",
                self.name,
                self.sample_rate,
                self.model_name,
                self.extractor.sampling_rate,
                self.name,
            )
        config = self.model.config  # hidden states: the embeddings, then each layer
        self.choose_states(layer, layers, config.num_hidden_layers + 1, config.hidden_size, self.model_name)

    def forward(self, waveforms: list[np.ndarray]) -> "torch.Tensor":
        # The extractor normalises each clip as the model was trained; it is told the
        # model's own rate so a deliberate mismatch (sample_rate above) is not refused.
        inputs = self.extractor(waveforms, sampling_rate=self.extractor.sampling_rate, return_tensors="pt")
        values = inputs["input_values"].to(self.device, self.dtype)
        return self.pool_states(self.model(values, output_hidden_states=True).hidden_states)
