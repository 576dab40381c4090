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
    def embed_tracks(self, tracks: pd.DataFrame, max_seconds: float = 30.0, batch_size: int = 32) -> np.ndarray:
        """The `(n_tracks, dim)` matrix, row i for row i of `tracks`; audio models
        run `batch_size` tracks per forward pass."""


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

    def embed_tracks(self, tracks: pd.DataFrame, max_seconds: float = 30.0, batch_size: int = 32) -> np.ndarray:
        """Decode each track at the model's rate and embed `batch_size` tracks at a
        time; decoding runs in a background thread so the model rarely waits on I/O."""
        if batch_size < 1:
            raise ValueError(f"extract.batch_size={batch_size!r}; must be an integer >= 1")
        embeddings = np.empty((len(tracks), self.dim), dtype=np.float32)
        paths = tracks["audio_path"].tolist()
        waveforms = prefetch(lambda path: audio.load(path, self.sample_rate, max_seconds), paths, depth=2 * batch_size)
        with tqdm(total=len(paths), desc=f"extract {self.name}") as progress:
            for start in range(0, len(paths), batch_size):
                batch = [next(waveforms) for _ in range(min(batch_size, len(paths) - start))]
                embeddings[start : start + len(batch)] = self.embed_batch(batch)
                progress.update(len(batch))
        return embeddings


def prefetch(load: Callable[[str], np.ndarray], paths: list[str], depth: int = 8) -> Iterator[np.ndarray]:
    """Yield `load(path)` in order while the next `depth` files decode in a thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = [pool.submit(load, p) for p in paths[:depth]]
        for next_path in paths[depth:] + [None] * min(depth, len(paths)):
            yield pending.pop(0).result()
            if next_path is not None:
                pending.append(pool.submit(load, next_path))


def extract(
    backend: Backend, tracks: pd.DataFrame, max_seconds: float = 30.0, batch_size: int = 32
) -> tuple[np.ndarray, dict]:
    """Run a backend over all tracks; refuse to return non-finite embeddings."""
    started = time.perf_counter()
    embeddings = backend.embed_tracks(tracks, max_seconds=max_seconds, batch_size=batch_size)
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
