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
from audiorec.config import ERROR_POLICIES

log = logging.getLogger(__name__)


class ExtractionError(RuntimeError):
    pass


class Backend(ABC):
    """Anything that gives one `dim`-vector per track of `tracks.parquet`."""

    name: ClassVar[str]
    dim: int

    @abstractmethod
    def embed_tracks(
        self, tracks: pd.DataFrame, max_seconds: float = 30.0, batch_size: int = 32, failures: dict[int, str] | None = None
    ) -> np.ndarray:
        """The `(n_tracks, dim)` matrix, row i for row i of `tracks`; audio models
        run `batch_size` tracks per forward pass. A track that cannot be embedded
        raises ExtractionError, or with a `failures` dict is recorded there (row ->
        reason) and gets a row of NaN."""


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
        self, tracks: pd.DataFrame, max_seconds: float = 30.0, batch_size: int = 32, failures: dict[int, str] | None = None
    ) -> np.ndarray:
        """Decode each track at the model's rate and embed `batch_size` tracks at a
        time; decoding runs in a background thread so the model rarely waits on I/O."""
        if batch_size < 1:
            raise ValueError(f"extract.batch_size={batch_size!r}; must be an integer >= 1")
        embeddings = np.full((len(tracks), self.dim), np.nan, dtype=np.float32)
        paths = tracks["audio_path"].tolist()
        waveforms = prefetch(lambda path: decode(path, self.sample_rate, max_seconds), paths, depth=2 * batch_size)
        with tqdm(total=len(paths), desc=f"extract {self.name}") as progress:
            for start in range(0, len(paths), batch_size):
                batch = [next(waveforms) for _ in range(min(batch_size, len(paths) - start))]
                decoded = [row for row, item in enumerate(batch, start) if not isinstance(item, Exception)]
                for row, item in enumerate(batch, start):
                    if isinstance(item, Exception):
                        self._failed(tracks, row, f"cannot decode: {item}", failures)
                if decoded:
                    embeddings[decoded] = self.embed_batch([batch[row - start] for row in decoded])
                for row in decoded:
                    if not np.isfinite(embeddings[row]).all():
                        self._failed(tracks, row, "the model returned NaN or Inf", failures)
                        embeddings[row] = np.nan
                progress.update(len(batch))
        return embeddings

    def _failed(self, tracks: pd.DataFrame, row: int, reason: str, failures: dict[int, str] | None) -> None:
        track = tracks.iloc[row]
        if failures is None:
            raise ExtractionError(
                f"{self.name}: track {track['track_id']} (row {row} of tracks.parquet, {track['audio_path']}): {reason}. "
                "Replace the file, or set extract.on_error: skip to mask the track and go on"
            )
        log.warning("%s: skipping track %s (%s): %s", self.name, track["track_id"], track["audio_path"], reason)
        failures[row] = reason


def decode(path: str, sample_rate: int, max_seconds: float) -> np.ndarray | Exception:
    """The waveform, or the exception that stopped decoding it, so one bad file does not end the prefetch."""
    try:
        waveform = audio.load(path, sample_rate, max_seconds)
    except Exception as error:  # noqa: BLE001 - soundfile raises several types; each becomes a per-track outcome
        return error
    return waveform if len(waveform) else ValueError("the file decodes to no samples")


def prefetch(load: Callable[[str], np.ndarray], paths: list[str], depth: int = 8) -> Iterator[np.ndarray]:
    """Yield `load(path)` in order while the next `depth` files decode in a thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = [pool.submit(load, p) for p in paths[:depth]]
        for next_path in paths[depth:] + [None] * min(depth, len(paths)):
            yield pending.pop(0).result()
            if next_path is not None:
                pending.append(pool.submit(load, next_path))


def extract(
    backend: Backend, tracks: pd.DataFrame, max_seconds: float = 30.0, batch_size: int = 32, on_error: str = "fail"
) -> tuple[np.ndarray, dict, list[dict]]:
    """Run a backend over all tracks: the embeddings, timing stats, and the skipped tracks.

    With `on_error="skip"` a track that cannot be decoded or embedded keeps a row
    of NaN (a masked row: downstream stages leave it out) and is listed with its
    reason; any other non-finite value is refused.
    """
    if on_error not in ERROR_POLICIES:
        raise ValueError(f"extract.on_error={on_error!r}; allowed: {', '.join(ERROR_POLICIES)}")
    failures: dict[int, str] | None = {} if on_error == "skip" else None
    started = time.perf_counter()
    embeddings = backend.embed_tracks(tracks, max_seconds=max_seconds, batch_size=batch_size, failures=failures)
    seconds = time.perf_counter() - started
    if embeddings.shape != (len(tracks), backend.dim):
        raise ValueError(f"backend {backend.name} returned shape {embeddings.shape}; expected {(len(tracks), backend.dim)}")
    masked = np.zeros(len(tracks), dtype=bool)
    masked[list(failures or {})] = True
    bad_rows = np.flatnonzero(~np.isfinite(embeddings).all(axis=1) & ~masked)
    if len(bad_rows):
        raise ExtractionError(
            f"backend {backend.name} produced NaN/Inf for {len(bad_rows)} tracks, first {tracks['track_id'].iloc[bad_rows[0]]} "
            f"(row {bad_rows[0]} of tracks.parquet)"
        )
    skipped = [
        {"row": row, "track_id": tracks["track_id"].iloc[row], "audio_path": tracks["audio_path"].iloc[row], "reason": reason}
        for row, reason in sorted((failures or {}).items())
    ]
    stats = {
        "dim": backend.dim,
        "tracks": len(tracks),
        "skipped_tracks": len(skipped),
        "seconds": round(seconds, 2),
        "tracks_per_second": round(len(tracks) / max(seconds, 1e-9), 2),
    }
    log.info("%s: %s", backend.name, stats)
    return embeddings, stats, skipped
