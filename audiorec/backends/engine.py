"""Extraction that scales: shards written as they finish, resumed after a kill, spread over ranks.

The tracks are cut into shards of `shard_batches` x `batch_size` consecutive rows,
so a shard holds whole batches and every track is embedded in the same batch as
in an uninterrupted single-process run: the assembled matrix is byte-identical
however the work was split or interrupted. Each finished shard is written
atomically (temporary file, then rename) under the resume folder; a rerun loads
the shards that are there and computes the others.

Under `torchrun` (RANK / WORLD_SIZE / LOCAL_RANK in the environment) shard i goes
to rank i mod world size, and rank 0 gathers the finished shards through a gloo
process group: no shared filesystem is needed across machines. gloo rather than
NCCL even on GPUs, because the ranks exchange only the finished float32 rows,
once, on the CPU; no tensor of the model ever crosses ranks.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import time
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from audiorec.backends.base import (
    ERROR_POLICIES,
    AudioBackend,
    Backend,
    ExtractionError,
    check_batch_size,
    record_failure,
)

log = logging.getLogger(__name__)

# A rank that finishes its shards waits in the gather for the slowest one: with
# Jukebox that can be days, far beyond torch.distributed's 30-minute default.
GATHER_TIMEOUT = timedelta(days=14)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the processes `torchrun` started (rank 0 of 1 without it)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Ranks":
        return cls(
            int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))
        )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, shard: int) -> bool:
        return shard % self.size == self.rank

    def join(self) -> None:
        """Connect to the other ranks (torchrun's rendezvous address is in the environment)."""
        if self.size == 1:
            return  # importing torch costs a lone process 3-4 s, and backends without torch never need it
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo", timeout=GATHER_TIMEOUT)

    def gather(self, payload: dict) -> list[dict] | None:
        """Every rank's `payload` on rank 0 (None elsewhere)."""
        if self.size == 1:
            return [payload]
        import torch.distributed as dist

        received: list[dict] | None = [{} for _ in range(self.size)] if self.is_main else None
        dist.gather_object(payload, received, dst=0)
        dist.destroy_process_group()
        return received


class ShardStore:
    """Finished shards of one run in `root/<fingerprint>/`: one `.npz` per shard, named
    after the shard and a hash of its tracks (id, path, file size and modification time), so
    replacing an audio file invalidates only its shard."""

    def __init__(self, root: Path, fingerprint: str):
        self.root = root
        self.folder = root / fingerprint

    def discard_others(self) -> None:
        """Shards of runs with other settings, code or data can never be used again."""
        if self.root.is_dir():
            for other in self.root.iterdir():
                if other != self.folder:
                    shutil.rmtree(other, ignore_errors=True)

    def path(self, shard: int, tracks: pd.DataFrame) -> Path:
        return self.folder / f"shard-{shard:05d}-{tracks_digest(tracks)}.npz"

    def load(self, path: Path, rows: int, dim: int) -> tuple[np.ndarray, dict[int, str]] | None:
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as shard:
                embeddings = shard["embeddings"]
                failures = dict(zip(shard["failure_rows"].tolist(), shard["failure_reasons"].tolist()))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:  # a cut or empty file too
            log.warning("%s is unreadable (%s); computing the shard again", path, error)
            return None
        if embeddings.shape != (rows, dim) or embeddings.dtype != np.float32:
            log.warning(
                "%s holds %s %s, not (%d, %d) float32; computing the shard again",
                path,
                embeddings.shape,
                embeddings.dtype,
                rows,
                dim,
            )
            return None
        return embeddings, failures

    def save(self, path: Path, embeddings: np.ndarray, failures: dict[int, str]) -> None:
        """Write atomically: a kill leaves either the whole shard or no shard."""
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        rows = sorted(failures)
        with open(partial, "wb") as handle:
            np.savez(
                handle,
                embeddings=embeddings,
                failure_rows=np.array(rows, dtype=np.int64),
                failure_reasons=np.array([failures[row] for row in rows], dtype=np.str_),
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)


def tracks_digest(tracks: pd.DataFrame) -> str:
    """A hash of the tracks' ids, paths, file sizes and modification times (-1: missing file).
    The time tells apart a file replaced by one of the same size; a copy that does not keep
    times recomputes shards it could have used, the safe side of the trade."""
    stats = [file_stamp(path) for path in tracks["audio_path"]]
    rows = list(zip(tracks["track_id"].astype(str), tracks["audio_path"].astype(str), stats))
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def file_stamp(path: str) -> list[int]:
    """[size, modification time in ns] of a file; [-1, -1] if it is missing."""
    if not os.path.exists(path):
        return [-1, -1]
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns]


def code_digest(backend: Backend) -> str:
    """A hash of the source that computes the backend's values (audiorec's, and a plugin's own
    class): a code change must not resume from shards the old code wrote."""
    import audiorec.audio

    classes = [cls for cls in type(backend).__mro__ if cls.__module__.startswith("audiorec.") or cls is type(backend)]
    files = {source_file(cls) for cls in classes}
    files.add(inspect.getsourcefile(audiorec.audio))
    digest = hashlib.sha256()
    for name in sorted(f for f in files if f):
        digest.update(Path(name).read_bytes())
    return digest.hexdigest()


def source_file(cls: type) -> str | None:
    try:
        return inspect.getsourcefile(cls)
    except (OSError, TypeError):  # a class defined without a file (`python -c`) has nothing to hash
        return None


def run_fingerprint(backend: Backend, identity: dict, settings: dict, n_tracks: int) -> str:
    """What makes two runs' shards interchangeable: backend, its params, code, device kind and batching."""
    described = {
        "backend": backend.name,
        "params": identity,
        "settings": settings,
        "device": backend.device_kind,
        "tracks": n_tracks,
        "code": code_digest(backend),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]


def extract(
    backend: Backend,
    tracks: pd.DataFrame,
    max_seconds: float = 30.0,
    batch_size: int = 32,
    on_error: str = "fail",
    *,
    device: str = "auto",
    dtype: str = "float32",
    workers: int = 1,
    shard_batches: int = 32,
    resume_root: Path | None = None,
    identity: dict | None = None,
) -> tuple[np.ndarray, dict, list[dict]] | None:
    """Run a backend over all tracks: the embeddings, their stats (`timing`: wall time and
    tracks/s), and the skipped tracks (None on every torchrun rank but 0, which gathers the result).

    With `on_error="skip"` a track that cannot be decoded or embedded keeps a row
    of NaN (a masked row: downstream stages leave it out) and is listed with its
    reason; any other non-finite value is refused. With `resume_root`, finished
    shards are kept under it (`identity`: the backend's params, part of the fingerprint).
    """
    check_settings(on_error, batch_size, shard_batches, workers)
    ranks = Ranks.from_env()
    backend.use_device(device, dtype, ranks.local_rank)
    ranks.join()
    started = time.perf_counter()
    failures: dict[int, str] = {}
    if isinstance(backend, AudioBackend):
        shard_size = shard_batches * batch_size
        store = None
        if resume_root is not None:
            settings = {"max_seconds": max_seconds, "batch_size": batch_size, "shard_size": shard_size, "dtype": dtype}
            store = ShardStore(Path(resume_root), run_fingerprint(backend, identity or {}, settings, len(tracks)))
            if ranks.local_rank == 0:
                store.discard_others()
        mine = embed_shards(
            backend, tracks, ranks, batch_size, shard_size, max_seconds, workers, store, on_error == "skip"
        )
        gathered = ranks.gather(mine)
        if gathered is None:
            return None
        embeddings, failures = assemble(gathered, len(tracks), backend.dim)
    else:
        # Without audio there is nothing to spread: rank 0 computes it all.
        if ranks.gather({}) is None:
            return None
        embeddings = backend.embed_tracks(tracks, max_seconds=max_seconds, batch_size=batch_size, failures=failures)
    seconds = time.perf_counter() - started
    if on_error == "fail" and failures and backend.covers_all_tracks:
        row = min(failures)
        record_failure(backend.name, tracks, row, failures[row], None)
    return checked(backend, tracks, embeddings, failures, seconds)


def check_settings(on_error: str, batch_size: int, shard_batches: int, workers: int) -> None:
    if on_error not in ERROR_POLICIES:
        raise ValueError(f"extract.on_error={on_error!r}; allowed: {', '.join(ERROR_POLICIES)}")
    check_batch_size(batch_size)
    if shard_batches < 1:
        raise ValueError(f"extract.shard_batches={shard_batches!r}; must be an integer >= 1")
    if workers < 1:
        raise ValueError(f"extract.workers={workers!r}; must be an integer >= 1 (decoding threads)")


def embed_shards(
    backend: AudioBackend,
    tracks: pd.DataFrame,
    ranks: Ranks,
    batch_size: int,
    shard_size: int,
    max_seconds: float,
    workers: int,
    store: ShardStore | None,
    skip: bool,
) -> dict:
    """This rank's shards, loaded where finished before and computed otherwise:
    {"shards": {index: embeddings}, "failures": {row: reason}}. Failures are always
    recorded with `skip` and raised at once otherwise; `extract` checks the failures of
    loaded shards, so a shard computed under `skip` and resumed under `fail` still stops."""
    shards: dict[int, np.ndarray] = {}
    failures: dict[int, str] = {}
    pending: dict[int, range] = {}
    paths: dict[int, Path] = {}
    for index, start in enumerate(range(0, len(tracks), shard_size)):
        if not ranks.owns(index):
            continue
        rows = range(start, min(start + shard_size, len(tracks)))
        loaded = None
        if store is not None:
            paths[index] = store.path(index, tracks.iloc[rows.start : rows.stop])
            loaded = store.load(paths[index], len(rows), backend.dim)
        if loaded is None:
            pending[index] = rows
        else:
            shards[index], found = loaded
            failures.update(found)
    if shards:
        log.info(
            "%s: %d shards of this rank were finished before; computing the other %d",
            backend.name,
            len(shards),
            len(pending),
        )
    # One decoding pipeline across all pending shards, so the model never waits at a shard boundary.
    todo = [row for rows in pending.values() for row in rows]
    waveforms = backend.decoded(
        tracks["audio_path"].iloc[todo].tolist(), max_seconds, depth=2 * batch_size, workers=workers
    )
    finished = sum(len(shard) for shard in shards.values())
    with tqdm(total=finished + len(todo), initial=finished, desc=f"extract {backend.name}") as progress:
        for index, rows in pending.items():
            recorded: dict[int, str] | None = {} if skip else None
            shards[index] = backend.embed_rows(tracks, rows, waveforms, batch_size, recorded)
            failures.update(recorded or {})
            if store is not None:
                store.save(paths[index], shards[index], recorded or {})
            progress.update(len(rows))
    return {"shards": shards, "failures": failures}


def assemble(gathered: list[dict], n_tracks: int, dim: int) -> tuple[np.ndarray, dict[int, str]]:
    """The full matrix from every rank's shards, in shard order."""
    shards = {index: rows for payload in gathered for index, rows in payload["shards"].items()}
    failures = {row: reason for payload in gathered for row, reason in payload["failures"].items()}
    embeddings = (
        np.concatenate([shards[index] for index in sorted(shards)]) if shards else np.zeros((0, dim), np.float32)
    )
    if embeddings.shape != (n_tracks, dim):
        raise ExtractionError(
            f"the gathered shards hold {embeddings.shape[0]} rows for {n_tracks} tracks: a rank lost its work"
        )
    return embeddings, failures


def checked(
    backend: Backend, tracks: pd.DataFrame, embeddings: np.ndarray, failures: dict[int, str], seconds: float
) -> tuple[np.ndarray, dict, list[dict]]:
    """Refuse a wrong shape or NaN outside the masked rows; the stats and the skipped tracks."""
    if embeddings.shape != (len(tracks), backend.dim):
        raise ValueError(
            f"backend {backend.name} returned shape {embeddings.shape}; expected {(len(tracks), backend.dim)}"
        )
    masked = np.zeros(len(tracks), dtype=bool)
    masked[list(failures)] = True
    bad_rows = np.flatnonzero(~np.isfinite(embeddings).all(axis=1) & ~masked)
    if len(bad_rows):
        raise ExtractionError(
            f"backend {backend.name} produced NaN/Inf for {len(bad_rows)} tracks, "
            f"first {tracks['track_id'].iloc[bad_rows[0]]} "
            f"(row {bad_rows[0]} of tracks.parquet)"
        )
    skipped = [
        {
            "row": row,
            "track_id": tracks["track_id"].iloc[row],
            "audio_path": tracks["audio_path"].iloc[row],
            "reason": reason,
        }
        for row, reason in sorted(failures.items())
    ]
    # Wall time apart from the rest: it changes on every run, so it must stay out of the
    # DVC-tracked metrics file, or a repro on unchanged inputs would rewrite dvc.lock.
    timing = {"seconds": round(seconds, 2), "tracks_per_second": round(len(tracks) / max(seconds, 1e-9), 2)}
    stats = {
        "dim": backend.dim,
        "tracks": len(tracks),
        "skipped_tracks": len(skipped),
        **backend.summary(),
        "timing": timing,
    }
    log.info("%s: %s", backend.name, stats)
    return embeddings, stats, skipped
