"""The backend interface: one frozen vector per track, and a registry by name."""
from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, ClassVar, Iterator

import numpy as np
import pandas as pd
from tqdm import tqdm

from audiorec import audio

log = logging.getLogger(__name__)


class Backend(ABC):
    """Anything that gives one `dim`-vector per track of `tracks.parquet`."""

    name: ClassVar[str]
    dim: int

    @abstractmethod
    def embed_tracks(self, tracks: pd.DataFrame, max_seconds: float = 30.0) -> np.ndarray:
        """The `(n_tracks, dim)` matrix, row i for row i of `tracks`."""


class AudioBackend(Backend):
    """An audio model that maps a mono waveform at `sample_rate` to a `dim`-vector."""

    sample_rate: int

    @abstractmethod
    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """One vector for one track, pooled over time."""

    def embed_tracks(self, tracks: pd.DataFrame, max_seconds: float = 30.0) -> np.ndarray:
        """Decode each track at the model's rate and embed it; decoding runs in a
        background thread so the model rarely waits on I/O."""
        embeddings = np.empty((len(tracks), self.dim), dtype=np.float32)
        paths = tracks["audio_path"].tolist()
        waveforms = prefetch(lambda path: audio.load(path, self.sample_rate, max_seconds), paths)
        for row, waveform in enumerate(tqdm(waveforms, total=len(paths), desc=f"extract {self.name}")):
            embeddings[row] = self.embed(waveform)
        return embeddings


def prefetch(load: Callable[[str], np.ndarray], paths: list[str], depth: int = 8) -> Iterator[np.ndarray]:
    """Yield `load(path)` in order while the next `depth` files decode in a thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = [pool.submit(load, p) for p in paths[:depth]]
        for next_path in paths[depth:] + [None] * min(depth, len(paths)):
            yield pending.pop(0).result()
            if next_path is not None:
                pending.append(pool.submit(load, next_path))


def extract(backend: Backend, tracks: pd.DataFrame, max_seconds: float = 30.0) -> tuple[np.ndarray, dict]:
    """Run a backend over all tracks; refuse to return non-finite embeddings."""
    started = time.perf_counter()
    embeddings = backend.embed_tracks(tracks, max_seconds=max_seconds)
    seconds = time.perf_counter() - started
    if embeddings.shape != (len(tracks), backend.dim):
        raise ValueError(f"backend {backend.name} returned shape {embeddings.shape}; expected {(len(tracks), backend.dim)}")
    bad_rows = np.flatnonzero(~np.isfinite(embeddings).all(axis=1))
    if len(bad_rows):
        raise ValueError(
            f"backend {backend.name} produced NaN/Inf for {len(bad_rows)} tracks, first {tracks['track_id'].iloc[bad_rows[0]]} "
            f"(row {bad_rows[0]} of tracks.parquet)"
        )
    stats = {"dim": backend.dim, "tracks": len(tracks), "seconds": round(seconds, 2), "tracks_per_second": round(len(tracks) / max(seconds, 1e-9), 2)}
    log.info("%s: %s", backend.name, stats)
    return embeddings, stats
