"""The backend interface: one frozen vector per track, and the batch loop of audio models."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, ClassVar, Iterator, Sequence, TypeVar

import numpy as np
import pandas as pd

from audiorec import audio

log = logging.getLogger(__name__)

T = TypeVar("T")

# What to do with a track that cannot be decoded or embedded (params.yaml: extract.on_error),
# and where and in which precision a torch backend runs (extract.device, extract.dtype).
ERROR_POLICIES = ("fail", "skip")
DEVICES = ("auto", "cuda", "cpu")
DTYPES = ("float32", "float16", "bfloat16")


class ExtractionError(RuntimeError):
    pass


class BackendUnavailable(ExtractionError):
    """A backend's package or weights are missing: the message says how to get them."""


class Backend(ABC):
    """Anything that gives one `dim`-vector per track of `tracks.parquet`."""

    # Set by each class, or per instance where params.yaml names it (precomputed files, plugins).
    name: str
    dim: int
    # Where the model runs ("cpu" or "cuda"); part of the resume fingerprint, since
    # GPU and CPU kernels round differently.
    device_kind: str = "cpu"
    # False for a source that may lack tracks by design (a precomputed file): the tracks it
    # reports in `failures` are masked whatever extract.on_error says.
    covers_all_tracks: ClassVar[bool] = True

    @abstractmethod
    def embed_tracks(
        self,
        tracks: pd.DataFrame,
        max_seconds: float = 30.0,
        batch_size: int = 32,
        failures: dict[int, str] | None = None,
    ) -> np.ndarray:
        """The `(n_tracks, dim)` matrix, row i for row i of `tracks`; audio models
        run `batch_size` tracks per forward pass. A track that cannot be embedded
        raises ExtractionError, or with a `failures` dict is recorded there (row ->
        reason) and gets a row of NaN."""

    @property
    def layer_dims(self) -> dict[str, int]:
        """The layers side by side in each vector `embed_tracks` returns, in order, with their widths (a backend
        storing several layers, audiorec.settings.layers); empty: one vector, no layers to split."""
        return {}

    def layer_key(self, layer: str) -> str:
        """The name `layer_dims` gives the layer params.yaml names `layer` (e.g. `-1`, the last, as its index)."""
        return layer

    def summary(self) -> dict:
        """What this backend adds to metrics/extract/<name>.json after `embed_tracks`."""
        return {}

    def use_device(self, device: str, dtype: str, local_rank: int = 0) -> None:
        """Run on `device` in `dtype` (extract.device, extract.dtype). Backends outside
        torch run where their library puts them, in float32."""
        if device not in ("auto", "cpu") or dtype != "float32":
            log.info(
                "%s runs on the CPU in float32: extract.device=%s and extract.dtype=%s do not apply",
                self.name,
                device,
                dtype,
            )


class AudioBackend(Backend):
    """An audio model that maps a mono waveform at `sample_rate` to a `dim`-vector."""

    sample_rate: int

    @abstractmethod
    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """One vector for one track, pooled over time."""

    def embed_batch(self, waveforms: list[np.ndarray]) -> np.ndarray:
        """`(len(waveforms), dim)`: one vector per track. Models with a real batch
        path override this; the default embeds one track at a time."""
        return np.stack([self.embed(waveform) for waveform in waveforms])

    def embed_tracks(
        self,
        tracks: pd.DataFrame,
        max_seconds: float = 30.0,
        batch_size: int = 32,
        failures: dict[int, str] | None = None,
    ) -> np.ndarray:
        """Decode each track at the model's rate and embed `batch_size` tracks at a
        time; decoding runs in a background thread so the model rarely waits on I/O."""
        check_batch_size(batch_size)
        waveforms = self.decoded(tracks["audio_path"].tolist(), max_seconds, depth=2 * batch_size)
        return self.embed_rows(tracks, range(len(tracks)), waveforms, batch_size, failures)

    def decoded(
        self, paths: list[str], max_seconds: float, depth: int, workers: int = 1
    ) -> Iterator[np.ndarray | Exception]:
        """The waveforms of `paths` in order, decoded ahead by `workers` threads."""
        return prefetch(lambda path: decode(path, self.sample_rate, max_seconds), paths, depth=depth, workers=workers)

    def embed_rows(
        self,
        tracks: pd.DataFrame,
        rows: Sequence[int],
        waveforms: Iterator[np.ndarray | Exception],
        batch_size: int,
        failures: dict[int, str] | None,
    ) -> np.ndarray:
        """`(len(rows), dim)` for the tracks at positions `rows` of `tracks`, whose
        waveforms come next from `waveforms`, in batches of `batch_size` from `rows[0]`."""
        embeddings = np.full((len(rows), self.dim), np.nan, dtype=np.float32)
        for start in range(0, len(rows), batch_size):
            batch = [next(waveforms) for _ in range(min(batch_size, len(rows) - start))]
            decoded = [i for i, item in enumerate(batch, start) if not isinstance(item, Exception)]
            for i, item in enumerate(batch, start):
                if isinstance(item, Exception):
                    record_failure(self.name, tracks, rows[i], f"cannot decode: {item}", failures)
            if decoded:
                embeddings[decoded] = self.embed_batch([item for item in batch if not isinstance(item, Exception)])
            for i in decoded:
                if not np.isfinite(embeddings[i]).all():
                    record_failure(self.name, tracks, rows[i], "the model returned NaN or Inf", failures)
                    embeddings[i] = np.nan
        return embeddings


def split_layers(embeddings: np.ndarray, layer_dims: dict[str, int]) -> dict[str, np.ndarray]:
    """The column blocks of `embeddings`, one per layer of `layer_dims`, in its order."""
    if embeddings.shape[1] != sum(layer_dims.values()):
        raise ValueError(f"{embeddings.shape[1]} columns, but the layers {layer_dims} have {sum(layer_dims.values())}")
    bounds = np.cumsum(list(layer_dims.values()))[:-1]
    return dict(zip(layer_dims, np.split(embeddings, bounds, axis=1)))


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"extract.batch_size={batch_size!r}; must be an integer >= 1")


def record_failure(backend: str, tracks: pd.DataFrame, row: int, reason: str, failures: dict[int, str] | None) -> None:
    """Raise for track `row` (position in `tracks`), or with a `failures` dict record it there and go on."""
    track = tracks.iloc[row]
    if failures is None:
        raise ExtractionError(
            f"{backend}: track {track['track_id']} (row {row} of tracks.parquet, {track['audio_path']}): {reason}. "
            "Replace the file, or set extract.on_error: skip to mask the track and go on"
        )
    log.warning("%s: skipping track %s (%s): %s", backend, track["track_id"], track["audio_path"], reason)
    failures[row] = reason


def decode(path: str, sample_rate: int, max_seconds: float) -> np.ndarray | Exception:
    """The waveform, or the exception that stopped decoding it, so one bad file does not end the prefetch."""
    try:
        waveform = audio.load(path, sample_rate, max_seconds)
    except Exception as error:  # noqa: BLE001 - soundfile raises several types; each becomes a per-track outcome
        return error
    return waveform if len(waveform) else ValueError("the file decodes to no samples")


def prefetch(load: Callable[[str], T], paths: list[str], depth: int = 8, workers: int = 1) -> Iterator[T]:
    """Yield `load(path)` in order while the next `depth` files decode in `workers` threads."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = [pool.submit(load, p) for p in paths[:depth]]
        for next_path in paths[depth:] + [None] * min(depth, len(paths)):
            yield pending.pop(0).result()
            if next_path is not None:
                pending.append(pool.submit(load, next_path))
