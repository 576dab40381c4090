"""Music4All-Onion scale: every stage on a log of the real shape, next to a floor measured in the same run.

Writes a synthetic listening log of Music4All-Onion's shape (benchmarks/music4all_log.py)
and random embedding matrices at the study's widths into a scratch folder laid out like
the repository (params.yaml, data/, metrics/), then runs the real stage modules there,
each in its own process, and prints wall time and peak memory (the process's VmHWM)
per stage next to its floor: parsing the TSV for the dataset stage, a BLAS matmul of the
same shape for KNN, a sort of the catalogue for MostPop, and for Shallow and BERT4Rec the
FLOPs of one epoch at the GFLOP/s of a matmul on this machine. The scratch params.yaml
sets max_epochs: 1 for Shallow and BERT4Rec.

The train stage of Shallow and BERT4Rec is one number (epoch + validation + ranking), so
each also runs in a worker process that calls the library directly on the same data and
times the pieces: the training epoch, the per-epoch validation (val loss, user vectors,
retrieval, metrics) and the final ranking of val, test and cold users. An epoch longer
than --epoch-budget is measured on its first batches and extrapolated by their FLOPs;
a train stage whose estimate exceeds --stage-limit is not run (the table says so).
The worker hooks the models' private `_train_epoch`, `_loss`, `_validate`,
`_user_vectors` and bert4rec's `length_batches`; a hook that no longer exists is
reported as missing and its phase left out. MostPop's ranking is also timed against the
dense users x tracks formulation it replaced, on the same users, in the same run.
BERT4Rec's worker also runs under each loss of --bert4rec-losses other than params.yaml's
(default: `sampled_softmax` next to `softmax`), for its epoch time and peak memory.

Usage:
  python benchmarks/music4all_scale.py --scale 0.05                  # quick check, all stages
  python benchmarks/music4all_scale.py --scale 1 --widths 200 4800   # Music4All-Onion shape
  python benchmarks/music4all_scale.py --full --stages dataset split # also a 250M-row log
  python benchmarks/music4all_scale.py --scale 1 --profile           # + torch.profiler top ops of one epoch
  python benchmarks/music4all_scale.py --scale 1 --study-times-out t.json # + the whole-study stages for cluster_time.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
# audiorec from this checkout, not from wherever the venv points; the log writer next to this file.
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from music4all_log import AUDIO_DIR, LOG_NAME, ROW_BYTES, LogShape, write_log  # noqa: E402

from audiorec import paths  # noqa: E402
from audiorec.models import DETERMINISTIC  # noqa: E402

STAGES = ("dataset", "split", "knn", "mostpop", "shallow", "bert4rec", "evaluate")
BERT4REC_LOSSES = ("softmax", "sampled_softmax")
TRAINED = ("shallow", "bert4rec")
BENCHMARK_SEED = 0  # the trained models' one run (params.yaml: seeds)
WIDTHS = (200, 768, 1024, 4800)
# The study's nine pretrained backends and their widths (the reference's table; MusicFM over time).
STUDY_BACKENDS = {
    "musicnn": 200,
    "mert": 1024,
    "music2vec": 768,
    "encodecmae": 768,
    "jukebox": 4800,
    "musicfm": 1024,
    "mule": 1728,
    "muq": 1024,
    "muq_mulan": 512,
}
FULL_LOG_ROWS = 250_000_000
DISK_MARGIN = 5 * 2**30
GIB = 2**30
MIN_AVAILABLE = 0.5  # GiB the machine keeps free while a stage runs under --max-memory
VALIDATION_TARGET = 0.2  # of an epoch
NOT_COUNTED = (
    "hours null: not measured at this shape (extraction, the report). Not in the list: the references "
    "without audio other than MostPop (BERT4Rec on a learned item table, EASE/ELSA) and early stopping"
)


def backend_name(width: int) -> str:
    return f"random{width}"


# ---------------------------------------------------------------- scratch folder


def prepare(work: Path, shape: LogShape, log_rows: int, device: str, fresh: bool) -> dict:
    """Log, audio placeholders and params.yaml under `work`; an existing log of
    the same shape is reused unless `fresh`. `log_rows` > 0: padded to that many rows with
    plays from before the window."""
    source = work / "music4all"
    manifest = source / "manifest.json"
    wanted = {"shape": shape.as_dict(), "log_rows": log_rows}
    if fresh or not manifest.is_file() or json.loads(manifest.read_text())["request"] != wanted:
        shutil.rmtree(work, ignore_errors=True)
        source.mkdir(parents=True)
        started = time.perf_counter()
        sizes = write_log(source, shape, log_rows)
        sizes["write_seconds"] = time.perf_counter() - started
        manifest.write_text(json.dumps({"request": wanted, "sizes": sizes}, indent=2))
    write_params(work, source, shape, device)
    return json.loads(manifest.read_text())["sizes"]


def write_embeddings(path: Path, n_tracks: int, width: int, seed: int, block: int = 4096) -> None:
    """Random float32 rows, one per track (the dataset stage sorts track ids; so does the generator)."""
    if path.is_file() and np.load(path, mmap_mode="r").shape == (n_tracks, width):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, width])
    matrix = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_tracks, width))
    for start in range(0, n_tracks, block):
        matrix[start : start + block] = rng.standard_normal((min(block, n_tracks - start), width), dtype=np.float32)
    matrix.flush()
    del matrix


def write_params(work: Path, source: Path, shape: LogShape, device: str) -> None:
    """The repository's params.yaml, pointed at the scratch log, one epoch for the trained models."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["dataset"].update(
        source="music4all", audio_dir=str(source / AUDIO_DIR), listening_log=str(source / LOG_NAME)
    )
    # The window of the protocol in force (split.protocol), so the split keeps the log's train year and test month.
    protocol = params["split"][params["split"]["protocol"]]
    protocol.update(start_date=shape.start_date, test_date=shape.test_date, end_date=shape.end_date)
    for model in TRAINED:
        params[model].update(max_epochs=1, device=device)
        if "min_epochs" in params[model]:
            params[model]["min_epochs"] = 0
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


# ---------------------------------------------------------------- running stages


@dataclass
class Row:
    stage: str
    width: str = "—"
    wall: float | None = None
    peak: float | None = None  # GiB
    floor: float | None = None
    note: str = ""
    estimated: bool = False


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    breakdowns: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(format_row(row), flush=True)
        return row


class OutOfMemory(RuntimeError):
    pass


# Children start through this: at exit it writes the process's VmHWM, the peak resident memory
# of its own image. wait4's ru_maxrss is not that: exec carries over the peak of the memory it
# replaces, which after Python's vfork is this benchmark's own (a child that never held 2 GiB
# reported 2 GiB after the parent had).
PEAK_FILE = "MUSIC4ALL_SCALE_PEAK_FILE"
BOOTSTRAP = f"""
import atexit, os, runpy, sys
def write_peak():
    with open('/proc/self/status') as status:
        kib = next(line.split()[1] for line in status if line.startswith('VmHWM'))
    with open(os.environ['{PEAK_FILE}'], 'w') as out:
        out.write(kib)
atexit.register(write_peak)
target, sys.argv = sys.argv[1], sys.argv[1:]
if target.endswith('.py'):
    runpy.run_path(target, run_name='__main__')
else:
    runpy.run_module(target, run_name='__main__', alter_sys=True)
"""


def run_process(
    target: str, args: list[str], work: Path, log_name: str, max_memory: float | None = None
) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GiB) of `target` (a module or a script) in its
    own process; stops on failure. With `max_memory` (GiB), a child that grows past it, or
    that leaves the machine with under MIN_AVAILABLE GiB, is killed and OutOfMemory raised:
    the machine may be shared."""
    import psutil

    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    log, peak_file = logs / f"{log_name}.log", logs / f"{log_name}.peak_kib"
    peak_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        PEAK_FILE: str(peak_file),
    }
    killed = None
    with log.open("w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", BOOTSTRAP, target, *args], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        watched = psutil.Process(process.pid)
        try:
            while process.poll() is None:
                if max_memory is not None and killed is None:
                    try:
                        rss = watched.memory_info().rss / GIB
                    except psutil.NoSuchProcess:
                        rss = 0.0
                    available = psutil.virtual_memory().available / GIB
                    if rss > max_memory or available < MIN_AVAILABLE:
                        killed = (
                            f"killed at {rss:.1f} GiB (--max-memory {max_memory:g} GiB; "
                            f"{available:.1f} GiB left on the machine)"
                        )
                        process.kill()
                time.sleep(0.2)
        finally:  # interrupted (Ctrl-C, or SIGTERM: see main): the child goes too
            if process.poll() is None:
                process.kill()
        wall = time.perf_counter() - started
    if killed:
        raise OutOfMemory(killed)
    if process.returncode:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"{target} {' '.join(args)} failed with exit code {process.returncode}; log {log}:\n{tail}")
    return wall, int(peak_file.read_text()) / 2**20


@dataclass
class Runner:
    """Runs stage modules and workers in the scratch folder, each in its own process."""

    work: Path
    max_memory: float | None = None

    def stage(self, argv: list[str], log_name: str) -> tuple[float, float]:
        return run_process(argv[0], argv[1:], self.work, log_name, self.max_memory)

    def worker(self, log_name: str, *args: str) -> tuple[dict, float, float]:
        out = self.work / "logs" / f"{log_name}.json"
        argv = ["--worker", *args, "--out", str(out)]
        wall, peak = run_process(str(Path(__file__).resolve()), argv, self.work, log_name, self.max_memory)
        return json.loads(out.read_text()), wall, peak


# ---------------------------------------------------------------- floors


def matmul_gflops(device: str, size: int = 4096, repeats: int = 5) -> float:
    """fp32 GFLOP/s of a square torch matmul: the rate the models' FLOP floors are taken at."""
    import torch

    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b  # warm-up
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def knn_floor(n_users: int, n_items: int, width: int, block: int = 1024) -> float:
    """Seconds of (users x width) @ (width x items) in float32 BLAS, in blocks of users (as faiss searches)."""
    rng = np.random.default_rng(0)
    items = rng.standard_normal((n_items, width), dtype=np.float32)
    users = rng.standard_normal((min(block, n_users), width), dtype=np.float32)
    started = time.perf_counter()
    for start in range(0, n_users, block):
        users[: min(block, n_users - start)] @ items.T
    return time.perf_counter() - started


def parse_floor(log: Path) -> float:
    """Seconds to parse the TSV into string columns with pyarrow on one thread, nothing kept."""
    from pyarrow import csv

    options = csv.ReadOptions(use_threads=False, block_size=64 * 2**20)
    started = time.perf_counter()
    for _ in csv.open_csv(log, read_options=options, parse_options=csv.ParseOptions(delimiter="\t", quote_char=False)):
        pass
    return time.perf_counter() - started


def sort_floor(n_items: int, repeats: int = 5) -> float:
    popularity = np.random.default_rng(0).integers(0, 1000, n_items).astype(np.float64)
    started = time.perf_counter()
    for _ in range(repeats):
        np.argsort(-popularity, kind="stable")
    return (time.perf_counter() - started) / repeats


@dataclass
class SplitShape:
    """What the FLOP floors need from the split: train pairs per user and the batch contents."""

    n_users: int
    n_items: int
    pair_users: np.ndarray  # user row of each train pair
    pair_items: np.ndarray
    ranked_users: int  # val + test users (the hot ranking)
    val_users: int


def split_shape(work: Path) -> SplitShape:
    import pandas as pd

    train = pd.read_parquet(work / "data" / "splits" / "train.parquet", columns=["user_id", "track_idx"])
    users = pd.factorize(train["user_id"], sort=True)[0]
    n_tracks = len(pd.read_parquet(work / "data" / "tracks.parquet", columns=["track_id"]))
    val = pd.read_parquet(work / "data" / "splits" / "val.parquet", columns=["user_id"])["user_id"].nunique()
    test = pd.read_parquet(work / "data" / "splits" / "test.parquet", columns=["user_id"])["user_id"].nunique()
    return SplitShape(users.max() + 1, n_tracks, users, train["track_idx"].to_numpy(), val + test, val)


def shallow_epoch_flops(shape: SplitShape, width: int, params: dict, sample_batches: int = 64) -> float:
    """FLOPs one Shallow epoch cannot avoid: the tower (width x width) over the distinct
    user and track rows of each batch, forward and weight gradient, plus the input gradient
    of the trainable rows; and the (1 + negatives) scores per pair, forward and backward.
    Distinct rows are counted on batches drawn as the model draws them."""
    rng = np.random.default_rng(0)
    n_pairs, batch, negatives = len(shape.pair_users), params["batch_size"], params["neg_samples"]
    n_batches = -(-n_pairs // batch)
    negative_users = params["sample_type"] == "item"
    user_rows = item_rows = 0.0
    for _ in range(min(sample_batches, n_batches)):
        picked = rng.choice(n_pairs, size=min(batch, n_pairs), replace=False)
        drawn = rng.integers(shape.n_users if negative_users else shape.n_items, size=(len(picked), negatives))
        users, items = shape.pair_users[picked], shape.pair_items[picked]
        user_rows += len(np.unique(np.concatenate([users, drawn.ravel()]) if negative_users else users))
        item_rows += len(np.unique(items if negative_users else np.concatenate([items, drawn.ravel()])))
    scale = n_batches / min(sample_batches, n_batches)
    d_out = params.get("hidden_dim") or width
    tower = 2 * width * d_out
    user_trainable = not params.get("user_freeze", False)
    item_trainable = not params.get("item_freeze", True)
    tower_flops = tower * (2 * (user_rows + item_rows) + user_rows * user_trainable + item_rows * item_trainable)
    score_flops = 3 * 2 * n_pairs * (1 + negatives) * d_out
    return tower_flops * scale + score_flops


def bert4rec_batch_flops(lengths: np.ndarray, width: int, n_items: int, params: dict) -> float:
    """FLOPs of training on sequences of these lengths (no padding): per token and layer the
    attention projections (8 w^2), the feed-forward (4 w ff) and the attention itself
    (4 w L); forward and backward (x3). The softmax over the catalogue at the masked
    positions (2 w n_items each), forward and the gradient to the outputs (x2: the item
    table is frozen)."""
    d = params.get("hidden_dim") or width
    lengths = np.asarray(lengths, dtype=np.float64)
    tokens = lengths.sum()
    per_layer = tokens * (8 * d * d + 4 * d * params["intermediate_dim"]) + 4 * d * (lengths**2).sum()
    masked = params["mlm_probability"] * tokens + ((1 - params["mlm_probability"]) ** lengths).sum()
    catalogue = n_items if params.get("loss", "softmax") == "softmax" else params["n_negatives"]
    output_rows = 2 if params.get("item_freeze", True) else 3
    return 3 * params["n_layers"] * per_layer + output_rows * 2 * masked * catalogue * d


def bert4rec_epoch_flops(shape: SplitShape, width: int, params: dict) -> float:
    lengths = np.minimum(np.bincount(shape.pair_users), params["max_seq_len"])
    return bert4rec_batch_flops(lengths, width, shape.n_items, params)


# ---------------------------------------------------------------- the worker: pieces of one train stage


class Hooks:
    """Accumulated seconds of wrapped functions and methods, by phase name."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.missing: list[str] = []

    def wrap(self, phase: str, owner, name: str, around=None):
        original = getattr(owner, name, None)
        if original is None:
            self.missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
            return
        seconds = self.seconds

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return around(original, *args, **kwargs) if around else original(*args, **kwargs)
            finally:
                seconds[phase] = seconds.get(phase, 0.0) + time.perf_counter() - started

        setattr(owner, name, timed)

    def snapshot(self) -> dict[str, float]:
        return dict(self.seconds)


def load_stage_inputs(backend: str):
    """What stages/train.py loads, the same way."""
    import pandas as pd

    from audiorec import paths
    from audiorec.io import load_embeddings

    tracks = pd.read_parquet(paths.TRACKS)
    items = (
        load_embeddings(paths.embeddings(backend), tracks)
        if backend != "none"
        else np.zeros((len(tracks), 0), np.float32)
    )
    train = pd.read_parquet(paths.SPLITS / "train.parquet")
    truths = {
        split: pd.read_parquet(paths.SPLITS / name, columns=["user_id", "track_idx"])
        for split, name in (("val", "val.parquet"), ("test", "test.parquet"), ("cold", "cold_test.parquet"))
    }
    val = truths["val"][truths["val"]["track_idx"].isin(train["track_idx"])]
    return items, train, truths, val


def mostpop_worker(args) -> dict:
    """Ranking val and test users among the train tracks: the dense score matrix MostPop
    used until now vs one sorted popularity list, same lists required."""
    from audiorec import models
    from audiorec.models.mostpop import MostPopRecommender
    from audiorec.params import read_params
    from audiorec.evaluation.ranking import hot_candidates
    from audiorec.retrieval import top_k_by_score

    items, train, truths, _ = load_stage_inputs("none")
    model = MostPopRecommender(models.settings(read_params(), "mostpop")).fit(items, train)
    users = sorted(set(truths["val"]["user_id"]) | set(truths["test"]["user_id"]))
    candidates, top_k = hot_candidates(train), args.top_k
    started = time.perf_counter()
    new = model.recommend(users, top_k, candidates)["track_idx"].tolist()
    new_seconds = time.perf_counter() - started
    started, old = time.perf_counter(), []
    for start in range(0, len(users), 1024):  # the replaced code, batch by batch as it ran
        batch = users[start : start + 1024]
        scores = np.broadcast_to(model.popularity, (len(batch), len(model.popularity)))
        old += top_k_by_score(scores, [model.seen_items[user] for user in batch], top_k, candidates)
    old_seconds = time.perf_counter() - started
    same = all(np.array_equal(a, b) for a, b in zip(new, old))
    return {"users": len(users), "new_seconds": new_seconds, "old_seconds": old_seconds, "identical": same}


def faiss_top_k_unseen(
    user_vectors, item_vectors, seen_items, top_k, batch_size=1024, candidates=None
) -> list[np.ndarray]:
    """audiorec.retrieval.top_k_unseen as it was until this benchmark: faiss's exact
    inner-product search for top_k plus the longest history of the batch, then filtered."""
    import faiss

    if candidates is not None:
        candidates = np.unique(candidates)
        positions = [np.searchsorted(candidates, seen[np.isin(seen, candidates)]) for seen in seen_items]
        ranked = faiss_top_k_unseen(user_vectors, item_vectors[candidates], positions, top_k, batch_size)
        return [candidates[r] for r in ranked]
    index = faiss.IndexFlatIP(item_vectors.shape[1])
    index.add(np.ascontiguousarray(item_vectors, dtype=np.float32))
    history = np.array([len(seen) for seen in seen_items])
    order = np.argsort(history, kind="stable")
    ranked: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(seen_items)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        depth = min(len(item_vectors), top_k + int(history[batch].max()))
        _, found = index.search(np.ascontiguousarray(user_vectors[batch], dtype=np.float32), depth)
        for user, row in zip(batch, found):
            row = row[row >= 0]
            ranked[user] = row[~np.isin(row, seen_items[user])][:top_k]
    return ranked


def retrieval_worker(args) -> dict:
    """The validation's retrieval (top 50 among the train tracks for every val user) on
    KNN's vectors for this width: faiss as before vs the BLAS product and selection now."""
    from audiorec.models.base import VAL_K
    from audiorec import models
    from audiorec.models.knn import KNNRecommender
    from audiorec.params import read_params
    from audiorec.evaluation.ranking import hot_candidates
    from audiorec.retrieval import top_k_unseen

    items, train, _, val = load_stage_inputs(args.backend)
    model = KNNRecommender(models.settings(read_params(), "knn")).fit(items, train)
    users = np.sort(val["user_id"].unique())
    rows = model._user_rows.get_indexer(users)
    seen = [model.seen_items[user] for user in users]
    candidates = hot_candidates(train)
    timings, lists = {}, {}
    for name, search in (("new", top_k_unseen), ("old", faiss_top_k_unseen)):
        started = time.perf_counter()
        lists[name] = search(model.user_vectors[rows], model.item_vectors, seen, VAL_K, candidates=candidates)
        timings[name] = time.perf_counter() - started
    same = sum(np.array_equal(a, b) for a, b in zip(lists["new"], lists["old"]))
    return {"users": len(users), "new_seconds": timings["new"], "old_seconds": timings["old"], "identical": int(same)}


def trained_worker(args) -> dict:
    """One epoch of Shallow or BERT4Rec with its validation, then the final ranking, timed in
    pieces. A piece longer than `epoch_budget` seconds (the epoch, Shallow's val loss,
    BERT4Rec's user vectors) is cut there and extrapolated (Cuts). With `profile`, only the
    epoch runs, under torch.profiler."""
    import torch

    from audiorec import models
    from audiorec.config import load_params
    from audiorec.models import base
    from audiorec.evaluation.ranking import rank_splits

    items, train, truths, val = load_stage_inputs(args.backend)
    params = load_params()
    overrides = {"device": args.device, "max_epochs": 1, "resume": False, **({"loss": args.loss} if args.loss else {})}
    settings = models.settings(params, args.model, **overrides)
    recommender = models.create(args.model, settings)
    module = sys.modules[type(recommender).__module__]
    cls = type(recommender)
    hooks, cuts = Hooks(), Cuts(args.epoch_budget)
    hooks.wrap("epoch", cls, "_train_epoch", around=cuts.around_epoch)
    hooks.wrap("validation", module, "validation_metrics")
    hooks.wrap("retrieval", module, "top_k_unseen")
    hooks.wrap("metrics", base, "per_user_metrics")
    if args.model == "shallow":
        hooks.wrap("val loss + validation", cls, "_validate", around=cuts.around_validate)
        cuts.cut_shallow(hooks, cls)
    else:
        hooks.wrap("user vectors", cls, "_user_vectors", around=cuts.around_user_vectors)
        cuts.cut_bert4rec(hooks, module, items.shape[1], len(items), settings.model_dump())
    if args.profile:
        cuts.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
        recommender.fit(items, train)
        return {"epoch": cuts.summary(), "profile": profile_summary(cuts.profiler)}
    started = time.perf_counter()
    recommender.fit(items, train, val=val)
    fit_seconds = time.perf_counter() - started
    during_fit = hooks.snapshot()
    cuts.context = "ranking"
    started = time.perf_counter()
    rank_splits(recommender, train, truths, params["train"]["top_k"])
    ranking_seconds = time.perf_counter() - started
    after = hooks.snapshot()
    return {
        "fit_seconds": fit_seconds,
        "ranking_seconds": ranking_seconds,
        "during_fit": during_fit,
        "in_ranking": {phase: after.get(phase, 0.0) - during_fit.get(phase, 0.0) for phase in after},
        # Seconds the cut pieces would have taken on top of what ran, by where they ran.
        "extrapolated_extra": cuts.extra,
        "missing_hooks": hooks.missing,
        "epoch": cuts.summary(),
        "val_users": int(val["user_id"].nunique()),
        "torch_threads": torch.get_num_threads(),
    }


class Cuts:
    """Cuts long pieces of a train stage after `seconds` and keeps what extrapolates them:
    the epoch (its batches run and the total, weighted by FLOPs where batches differ, as
    BERT4Rec's lengths do), Shallow's val loss (by batches) and BERT4Rec's user vectors (by
    tokens). What a cut piece would have cost on top goes to `extra[context]`."""

    def __init__(self, seconds: float):
        self.seconds, self.started, self.in_epoch, self.in_validate = seconds, None, False, False
        self.done_weight = self.total_weight = 0.0
        self.done_batches = self.total_batches = 0
        self.measured_seconds = None
        self.profiler = None
        self.context = "fit"
        self.extra = {"fit": 0.0, "ranking": 0.0}
        self.val_loss = {"first": None, "cut": None, "done": 0, "total": 0}

    def over(self) -> bool:
        return time.perf_counter() - self.started > self.seconds

    def around_epoch(self, original, *args, **kwargs):
        self.in_epoch, self.started = True, time.perf_counter()
        if self.profiler is not None:
            self.profiler.__enter__()
        try:
            return original(*args, **kwargs)
        finally:
            if self.profiler is not None:
                self.profiler.__exit__(None, None, None)
            self.in_epoch = False
            if self.measured_seconds is None:
                self.measured_seconds = time.perf_counter() - self.started

    def around_validate(self, original, *args, **kwargs):
        self.in_validate, self.val_loss = True, {"first": None, "cut": None, "done": 0, "total": 0}
        try:
            return original(*args, **kwargs)
        finally:
            self.in_validate = False
            state = self.val_loss
            if state["cut"] is not None and state["done"]:
                per_batch = (state["cut"] - state["first"]) / state["done"]
                self.extra[self.context] += per_batch * (state["total"] - state["done"])

    def cut_shallow(self, hooks: Hooks, cls) -> None:
        """Shallow's batches are alike (pairs drawn at random): extrapolate by their count.
        Past the budget, `_loss` returns a constant, so the rest of the epoch (or of the val
        loss) costs nothing."""
        import torch

        original = getattr(cls, "_loss", None)
        if original is None:
            hooks.missing.append(f"{cls.__name__}._loss")
            return
        cuts = self

        def loss(model, pairs, batch, *args, **kwargs):
            if cuts.in_epoch:
                cuts.total_batches += 1
                cuts.total_weight += 1
                if cuts.measured_seconds is None and cuts.over():
                    cuts.measured_seconds = time.perf_counter() - cuts.started
                if cuts.measured_seconds is not None:
                    return torch.zeros((), requires_grad=True)
                cuts.done_batches += 1
                cuts.done_weight += 1
            elif cuts.in_validate:
                state, now = cuts.val_loss, time.perf_counter()
                state["total"] += 1
                state["first"] = state["first"] or now
                if state["cut"] is None and state["done"] and now - state["first"] > cuts.seconds:
                    state["cut"] = now
                if state["cut"] is not None:
                    return torch.zeros(())
                state["done"] += 1
            return original(model, pairs, batch, *args, **kwargs)

        cls._loss = loss

    def cut_bert4rec(self, hooks: Hooks, module, width: int, n_items: int, params: dict) -> None:
        """BERT4Rec's batches differ in length: weigh each by its FLOPs (padded as it runs)."""
        original = getattr(module, "length_batches", None)
        if original is None:
            hooks.missing.append(f"{module.__name__}.length_batches")
            return
        cuts = self

        def length_batches(lengths, *args, **kwargs):
            batches = original(lengths, *args, **kwargs)
            if not cuts.in_epoch:
                return batches
            weights = [
                bert4rec_batch_flops(np.full(len(rows), lengths[rows].max()), width, n_items, params)
                for rows in batches
            ]
            cuts.total_batches, cuts.total_weight = len(batches), float(sum(weights))

            def cut():
                for rows, weight in zip(batches, weights):
                    if cuts.done_batches and cuts.over():
                        cuts.measured_seconds = time.perf_counter() - cuts.started
                        return
                    cuts.done_batches += 1
                    cuts.done_weight += weight
                    yield rows

            return cut()

        module.length_batches = length_batches

    def around_user_vectors(self, original, model, rows, *args, **kwargs):
        """BERT4Rec's user vectors in chunks of users of similar length, chunks in random
        order, until the budget; the rest are zeros and their time is extrapolated by tokens."""
        sequences, max_len = getattr(model, "sequences", None), getattr(model, "max_seq_len", None)
        if sequences is None or max_len is None:
            return original(model, rows, *args, **kwargs)
        rows = np.asarray(rows)
        lengths = np.minimum([len(sequences[row]) for row in rows], max_len)
        by_length = np.argsort(lengths, kind="stable")
        chunks = np.array_split(by_length, max(1, len(rows) // 256))
        started, done_tokens, vectors = time.perf_counter(), 0, None
        for chunk in (chunks[i] for i in np.random.default_rng(0).permutation(len(chunks))):
            if done_tokens and time.perf_counter() - started > self.seconds:
                break
            part = original(model, rows[chunk], *args, **kwargs)
            if vectors is None:
                vectors = np.zeros((len(rows), part.shape[1]), dtype=part.dtype)
            vectors[chunk] = part
            done_tokens += int(lengths[chunk].sum())
        measured = time.perf_counter() - started
        self.extra[self.context] += measured * (lengths.sum() / done_tokens - 1) if done_tokens else 0.0
        return vectors

    def summary(self) -> dict:
        full = self.done_batches >= self.total_batches
        share = self.done_weight / self.total_weight if self.total_weight else 1.0
        return {
            "batches_run": self.done_batches,
            "batches": self.total_batches,
            "measured_seconds": self.measured_seconds,
            "share": share,
            "seconds": self.measured_seconds / share if self.measured_seconds is not None else None,
            "extrapolated": not full,
        }


def profile_summary(profile, top: int = 15) -> dict:
    events = profile.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    ranked = sorted(events, key=lambda event: event.self_cpu_time_total, reverse=True)[:top]
    return {
        "ops_self_seconds": total / 1e6,
        "top": [
            {
                "op": event.key,
                "self_seconds": event.self_cpu_time_total / 1e6,
                "calls": event.count,
                "share": event.self_cpu_time_total / total if total else 0.0,
            }
            for event in ranked
        ],
    }


def worker_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=("mostpop", "retrieval", *TRAINED), required=True)
    parser.add_argument("--backend", default="none")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epoch-budget", type=float, default=300)
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--loss", help="bert4rec.loss for this run instead of params.yaml's")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    args.model = args.worker
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    workers = {"mostpop": mostpop_worker, "retrieval": retrieval_worker}
    result = workers.get(args.worker, trained_worker)(args)
    Path(args.out).write_text(json.dumps(result, indent=2))


# ---------------------------------------------------------------- the benchmark


def format_row(row: Row) -> str:
    def number(value, digits=1):
        return "—" if value is None else f"{value:,.{digits}f}"

    ratio = "—" if row.wall is None or not row.floor else f"{row.wall / row.floor:,.1f}×"
    wall = number(row.wall) + (" (est.)" if row.estimated and row.wall is not None else "")
    return (
        f"| {row.stage} | {row.width} | {wall} | {number(row.peak, 2)} | {number(row.floor, 2)} "
        f"| {ratio} | {row.note} |"
    )


TABLE_HEADER = "| stage | width | wall s | peak GiB | floor s | wall / floor | note |\n|---|---|---|---|---|---|---|"


def full_log_rows(work: Path, wanted: int) -> tuple[int, str]:
    """`wanted` log rows, or as many as the disk holds."""
    free = shutil.disk_usage(next(p for p in (work, *work.parents) if p.exists())).free - DISK_MARGIN
    if wanted * ROW_BYTES <= free:
        return wanted, f"{wanted:,} rows ({wanted * ROW_BYTES / GIB:.1f} GiB of TSV)"
    fitting = int(free / ROW_BYTES)
    return (
        fitting,
        f"{fitting:,} of the {wanted:,} rows ({fitting / wanted:.0%}: the disk holds no more); extrapolated linearly",
    )


def main() -> None:
    if "--worker" in sys.argv:
        worker_main(sys.argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of Music4All-Onion's users and tracks (pairs follow)"
    )
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--device", default="auto", help="auto: cuda when torch sees one")
    parser.add_argument(
        "--full", action="store_true", help="dataset and split stages on a 250M-row log (disk permitting)"
    )
    parser.add_argument(
        "--full-rows",
        type=int,
        default=FULL_LOG_ROWS,
        help="log rows to write for --full (fewer: the dataset and split rows are also extrapolated to 250M)",
    )
    parser.add_argument("--workdir", type=Path, help="scratch folder (default /tmp/music4all_scale_<scale>)")
    parser.add_argument("--fresh", action="store_true", help="rewrite the log even if one of the same shape is there")
    parser.add_argument(
        "--epoch-budget", type=float, default=300, help="seconds of an epoch to measure before extrapolating"
    )
    parser.add_argument(
        "--stage-limit", type=float, default=3600, help="skip a train stage estimated to take longer (s)"
    )
    parser.add_argument(
        "--max-memory", type=float, help="GiB: kill a stage that grows past it (or leaves the machine < 0.5 GiB)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="torch.profiler top ops of one (budgeted) epoch per model and width"
    )
    parser.add_argument(
        "--bert4rec-losses",
        nargs="+",
        default=list(BERT4REC_LOSSES),
        choices=BERT4REC_LOSSES,
        help="BERT4Rec losses to time besides params.yaml's, which always runs (as the train stage too); "
        "the others get the worker's rows only",
    )
    parser.add_argument(
        "--study-times-out",
        type=Path,
        help="also write the whole-study estimate's stages (hours, what each needs) here as JSON, "
        "for benchmarks/cluster_time.py",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so a stage running now is killed with the benchmark
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    work = (args.workdir or Path(f"/tmp/music4all_scale_{args.scale:g}{'_full' if args.full else ''}")).resolve()
    shape = LogShape.scaled(args.scale)
    log_rows, full_note = 0, ""
    if args.full:
        log_rows, full_note = full_log_rows(work, args.full_rows)
    sizes = prepare(work, shape, log_rows, device, args.fresh)
    run, report = Runner(work, args.max_memory), Report()
    gflops = matmul_gflops(device)
    print(
        f"scratch: {work}\nlog: {sizes['log_rows']:,} rows ({sizes['log_bytes'] / GIB:.2f} GiB), "
        f"{sizes['tracks']:,} tracks, {sizes['users']:,} users; "
        f"device {device}, {torch.get_num_threads()} torch threads, "
        f"matmul {gflops:.0f} GFLOP/s, load average {os.getloadavg()[0]:.1f}"
        + (f"\n--full: {full_note}" if full_note else ""),
        flush=True,
    )
    print(TABLE_HEADER, flush=True)
    params = yaml.safe_load((work / "params.yaml").read_text())
    if "dataset" in args.stages:
        with guarded(report, "dataset"):
            wall, peak = run.stage(["stages.dataset"], "dataset")
            floor = parse_floor(work / "music4all" / LOG_NAME)
            row = report.add(
                Row(
                    "dataset",
                    wall=wall,
                    peak=peak,
                    floor=floor,
                    note=f"{sizes['log_rows']:,} log rows; floor: pyarrow parses the TSV",
                )
            )
            extrapolate_to_full_log(report, row, sizes["log_rows"], args.full)
    if "split" in args.stages:
        with guarded(report, "split"):
            wall, peak = run.stage(["stages.split"], "split")
            split = json.loads((work / "metrics" / "split.json").read_text())
            counts = ", ".join(
                f"{name} {split[name]['users']:,} users / {split[name]['interactions']:,} pairs"
                for name in ("train", "val", "test", "cold_test")
            )
            row = report.add(Row("split", wall=wall, peak=peak, note=counts))
            extrapolate_to_full_log(report, row, sizes["log_rows"], args.full)
    if not (work / "data" / "splits" / "train.parquet").is_file():
        raise SystemExit(f"{work} has no split yet: run with --stages dataset split first")
    split = split_shape(work)
    # One row per catalogue track: the dataset stage leaves out audio files nobody played.
    for width in args.widths:
        write_embeddings(work / "data" / "embeddings" / f"{backend_name(width)}.npy", split.n_items, width, shape.seed)
    # The models without audio read backend `none`'s zero-width matrix, as extract@none writes it.
    np.save(work / "data" / "embeddings" / "none.npy", np.zeros((split.n_items, 0), dtype=np.float32))
    evaluated: list[tuple[str, str]] = []
    if "mostpop" in args.stages:
        with guarded(report, "train mostpop"):
            wall, peak = run.stage(["stages.train", "--backend", "none", "--model", "mostpop"], "train_mostpop")
            compare, *_ = run.worker("mostpop_compare", "mostpop")
            ratio = compare["old_seconds"] / compare["new_seconds"]
            report.add(
                Row(
                    "train mostpop",
                    wall=wall,
                    peak=peak,
                    floor=sort_floor(split.n_items),
                    note=f"floor: argsort of the catalogue. Ranking {compare['users']:,} users: dense score matrix "
                    f"{compare['old_seconds']:.1f} s, sorted list {compare['new_seconds']:.2f} s = {ratio:.0f}× "
                    f"({'identical' if compare['identical'] else 'DIFFERENT'} lists)",
                )
            )
            evaluated.append(("none", "mostpop"))
    for width in args.widths:
        backend = backend_name(width)
        if "knn" in args.stages:
            with guarded(report, "train knn", str(width)):
                wall, peak = run.stage(["stages.train", "--backend", backend, "--model", "knn"], f"train_{backend}_knn")
                floor = knn_floor(split.ranked_users, split.n_items, width)
                report.add(
                    Row(
                        "train knn",
                        str(width),
                        wall,
                        peak,
                        floor,
                        f"floor: ({split.ranked_users:,} × {width}) @ ({width} × {split.n_items:,}) matmul",
                    )
                )
                evaluated.append((backend, "knn"))
                compare, wall, peak = run.worker(f"retrieval_{backend}", "retrieval", "--backend", backend)
                report.add(
                    Row(
                        "└ validation retrieval, KNN vectors",
                        str(width),
                        compare["new_seconds"],
                        peak,
                        knn_floor(split.val_users, split.n_items, width),
                        (
                            f"top 50 of {compare['users']:,} val users: "
                            f"faiss top_k + history (before) {compare['old_seconds']:.1f} s = "
                            f"{compare['old_seconds'] / compare['new_seconds']:.1f}× slower; "
                            f"identical lists {compare['identical']:,}/{compare['users']:,}"
                        ),
                    )
                )
        for model in TRAINED:
            if model in args.stages:
                with guarded(report, f"train {model}", str(width)):
                    trained_rows(report, run, model, width, split, params[model], gflops, device, args)
                    evaluated.append((backend, model))
        if "bert4rec" in args.stages:
            # The memory question: what the loss for catalogues whose logits do not fit costs here.
            other_losses = [loss for loss in args.bert4rec_losses if loss != params["bert4rec"]["loss"]]
            for loss in other_losses:
                with guarded(report, f"train bert4rec ({loss})", str(width)):
                    trained_rows(
                        report,
                        run,
                        "bert4rec",
                        width,
                        split,
                        {**params["bert4rec"], "loss": loss},
                        gflops,
                        device,
                        args,
                        loss=loss,
                    )
    if "evaluate" in args.stages:
        for backend, model in evaluated:
            seed = None if model in DETERMINISTIC else BENCHMARK_SEED
            if (work / paths.predictions(backend, paths.run_name(model, seed))).is_file():
                width = backend.removeprefix("random") if backend != "none" else "—"
                with guarded(report, f"evaluate {model}", width):
                    wall, peak = run.stage(
                        [
                            "stages.evaluate",
                            "--backend",
                            backend,
                            "--model",
                            model,
                            *([] if seed is None else ["--seed", str(seed)]),
                        ],
                        f"evaluate_{backend}_{model}",
                    )
                    report.add(Row(f"evaluate {model}", width, wall, peak))
    print_summary(report, args, gflops, device, split, params)


def extrapolate_to_full_log(report: Report, row: Row, log_rows: int, full: bool) -> None:
    """With --full on a log short of the real 250M rows, the row scaled linearly to them."""
    if not full or log_rows >= FULL_LOG_ROWS:
        return
    factor = FULL_LOG_ROWS / log_rows
    report.add(
        Row(
            f"{row.stage} at {FULL_LOG_ROWS:,} log rows",
            wall=row.wall * factor,
            peak=row.peak * factor,
            floor=row.floor * factor if row.floor else None,
            estimated=True,
            note=(
                f"the row above × {factor:.2f} (linear in the log's rows; memory too, which overstates its fixed part)"
            ),
        )
    )


@contextmanager
def guarded(report: Report, stage: str, width: str = "—"):
    """A stage killed for memory gets a row saying so; the benchmark goes on with the next."""
    try:
        yield
    except OutOfMemory as error:
        report.add(Row(stage, width, note=str(error)))


def trained_rows(
    report: Report,
    run: Runner,
    model: str,
    width: int,
    split: SplitShape,
    params: dict,
    gflops: float,
    device: str,
    args,
    loss: str | None = None,
) -> None:
    """The train stage's row and its pieces' rows. With `loss` (BERT4Rec's, other than
    params.yaml's), only the worker runs, under that loss; its rows are labelled with it and
    stay out of the whole-study estimate."""
    backend = backend_name(width)
    flops = (shallow_epoch_flops if model == "shallow" else bert4rec_epoch_flops)(split, width, params)
    floor = flops / (gflops * 1e9)
    variant = ["--loss", loss] if loss else []
    log_name = f"pieces_{backend}_{model}" + (f"_{loss}" if loss else "")
    pieces, wall, peak = run.worker(
        log_name, model, "--backend", backend, "--device", device, "--epoch-budget", str(args.epoch_budget), *variant
    )
    epoch = pieces["epoch"]
    fit = pieces["during_fit"]
    extra = pieces["extrapolated_extra"]
    setup = pieces["fit_seconds"] - (epoch["measured_seconds"] or 0.0) - validation_seconds(pieces, with_extra=False)
    validation, ranking_seconds = validation_seconds(pieces), pieces["ranking_seconds"] + extra["ranking"]
    estimate = setup + epoch["seconds"] + validation + ranking_seconds
    label = f"{model} ({loss})" if loss else model
    report.breakdowns[(label, width)] = {**pieces, "floor": floor, "flops": flops, "estimate": estimate}
    stage = f"train {label} (1 epoch + val + ranking)"
    if loss:
        report.add(
            Row(
                stage,
                str(width),
                estimate,
                None,
                floor,
                "not run as a stage (params.yaml trains the other loss): the pieces below",
                estimated=True,
            )
        )
    elif estimate <= args.stage_limit:
        with guarded(report, stage, str(width)):
            stage_wall, stage_peak = run.stage(
                ["stages.train", "--backend", backend, "--model", model, "--seed", str(BENCHMARK_SEED)],
                f"train_{backend}_{model}",
            )
            report.add(Row(stage, str(width), stage_wall, stage_peak, floor, "floor: one epoch's FLOPs"))
    else:
        report.add(
            Row(
                stage,
                str(width),
                estimate,
                None,
                floor,
                f"not run: the pieces below add up to {estimate:,.0f} s (> --stage-limit {args.stage_limit:,.0f} s)",
                estimated=True,
            )
        )
    cut = (
        f"{epoch['batches_run']} of {epoch['batches']} batches, extrapolated"
        if epoch["extrapolated"]
        else "whole epoch"
    )
    report.add(
        Row(
            f"├ {label} training epoch",
            str(width),
            epoch["seconds"],
            peak,
            floor,
            f"{cut}; {flops / 1e12:,.1f} TFLOP",
            estimated=epoch["extrapolated"],
        )
    )
    share = validation / epoch["seconds"] if epoch["seconds"] else float("nan")
    verdict = "≤" if share <= VALIDATION_TARGET else ">"
    parts = ", ".join(f"{name} {fit[name]:.1f} s" for name in ("user vectors", "retrieval", "metrics") if name in fit)
    if model == "shallow":
        parts = f"val loss {fit.get('val loss + validation', 0.0) - fit.get('validation', 0.0):.1f} s, " + parts
    cut = f" (+{extra['fit']:.0f} s extrapolated for the part cut at --epoch-budget)" if extra["fit"] else ""
    report.add(
        Row(
            f"├ {label} per-epoch validation",
            str(width),
            validation,
            None,
            None,
            (
                f"{pieces['val_users']:,} val users: {parts}{cut}; "
                f"{share:.0%} of the epoch ({verdict} {VALIDATION_TARGET:.0%})"
            ),
            estimated=bool(extra["fit"]),
        )
    )
    ranking = pieces["in_ranking"]
    parts = ", ".join(f"{name} {ranking[name]:.1f} s" for name in ("user vectors", "retrieval") if name in ranking)
    cut = f" (+{extra['ranking']:.0f} s extrapolated for the part cut at --epoch-budget)" if extra["ranking"] else ""
    report.add(
        Row(
            f"└ {label} final ranking",
            str(width),
            ranking_seconds,
            None,
            None,
            f"val + test + cold users: {parts}{cut}",
            estimated=bool(extra["ranking"]),
        )
    )
    if pieces["missing_hooks"]:
        report.notes.append(
            f"{label} @ {width}: hooks not found (their phase is not separated): {', '.join(pieces['missing_hooks'])}"
        )
    if args.profile:
        profiled, *_ = run.worker(
            log_name.replace("pieces_", "profile_"),
            model,
            "--backend",
            backend,
            "--device",
            device,
            "--epoch-budget",
            str(min(args.epoch_budget, 120)),
            "--profile",
            *variant,
        )
        report.breakdowns[(label, width)]["profile"] = profiled["profile"]
        report.breakdowns[(label, width)]["profiled_epoch"] = profiled["epoch"]


def print_summary(report: Report, args, gflops: float, device: str, split: SplitShape, params: dict) -> None:
    print(
        f"\nThe table again, in one piece (load average now {os.getloadavg()[0]:.1f}, "
        f"matmul {matmul_gflops(device):.0f} "
        f"GFLOP/s; at the start {gflops:.0f}):\n"
    )
    print(TABLE_HEADER)
    for row in report.rows:
        print(format_row(row))
    for note in report.notes:
        print(f"\nnote: {note}")
    for (model, width), pieces in report.breakdowns.items():
        if "profile" not in pieces:
            continue
        profile, epoch = pieces["profile"], pieces["profiled_epoch"]
        print(
            f"\ntorch.profiler, {model} @ {width}: {epoch['batches_run']} batches, "
            f"{epoch['measured_seconds']:.1f} s wall, "
            f"{profile['ops_self_seconds']:.1f} s inside torch ops (the rest is Python between ops)"
        )
        for entry in profile["top"]:
            print(
                f"  {entry['op']:<40} {entry['self_seconds']:8.2f} s {entry['share']:6.1%}  {entry['calls']:>8} calls"
            )
    study_estimate(report, args, split, params, f"{os.cpu_count()} cores, device {device}, matmul {gflops:.0f} GFLOP/s")


def study_estimate(report: Report, args, split: SplitShape, params: dict, machine: str) -> None:
    """The whole study's stages from this run's rows: printed, and written to --study-times-out."""
    if not report.breakdowns:
        return
    epoch_flops = {"shallow": shallow_epoch_flops, "bert4rec": bert4rec_epoch_flops}
    max_epochs = study_max_epochs()
    stages = study_stages(
        report, train_times(report), lambda model, width: epoch_flops[model](split, width, params[model]), max_epochs
    )
    print_study_estimate(stages, max_epochs)
    if args.study_times_out:
        header = {
            "source": f"benchmarks/music4all_scale.py {' '.join(sys.argv[1:])}",
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine,
            "not_counted": NOT_COUNTED,
        }
        write_study_times(args.study_times_out, stages, header)


def interpolate(points: list[tuple[float, float]], x: float) -> float:
    """y at x: linear between the measured points around x, proportional beyond them."""
    points = sorted(points)
    if x <= points[0][0] or len(points) == 1:
        return points[0][1] * x / points[0][0]
    if x >= points[-1][0]:
        return points[-1][1] * x / points[-1][0]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    raise AssertionError("unreachable")


def validation_seconds(pieces: dict, with_extra: bool = True) -> float:
    """The per-epoch validation: Shallow's val loss and ranking, BERT4Rec's ranking; with the
    extrapolated rest of a piece that was cut."""
    fit = pieces["during_fit"]
    measured = fit.get("val loss + validation", fit.get("validation", 0.0))
    return measured + (pieces["extrapolated_extra"]["fit"] if with_extra else 0.0)


@dataclass
class TrainTimes:
    """A measured Shallow or BERT4Rec train stage at one width: its epoch's FLOPs and the
    seconds of its pieces, what the whole-study estimate scales to other widths."""

    flops: float
    epoch: float
    validation: float  # per epoch
    ranking: float  # once, after the last epoch


@dataclass
class StudyStage:
    """One stage of the whole study at Music4All-Onion's shape; hours None: not measured here."""

    stage: str
    kind: str  # dataset, extract, split, train, evaluate, report
    hours: float | None
    needs: list[str]
    backend: str | None = None
    model: str | None = None


def train_times(report: Report) -> dict[str, dict[int, TrainTimes]]:
    """The measured train stages by model and width; the runs under another loss stay out."""
    times: dict[str, dict[int, TrainTimes]] = {}
    for (label, width), pieces in report.breakdowns.items():
        if label in TRAINED:
            ranking = pieces["ranking_seconds"] + pieces["extrapolated_extra"]["ranking"]
            times.setdefault(label, {})[width] = TrainTimes(
                pieces["flops"], pieces["epoch"]["seconds"], validation_seconds(pieces), ranking
            )
    return times


def study_max_epochs() -> dict[str, int]:
    """The study's max_epochs (the repository's params.yaml; the scratch one trains a single epoch)."""
    repo = yaml.safe_load((ROOT / "params.yaml").read_text())
    return {model: repo[model]["max_epochs"] for model in TRAINED}


def study_stages(
    report: Report,
    trained: dict[str, dict[int, TrainTimes]],
    epoch_flops: Callable[[str, int], float],
    max_epochs: dict[str, int],
) -> list[StudyStage]:
    """The whole study (9 backends x KNN, Shallow, BERT4Rec, at their max_epochs; MostPop) as
    stages with their hours and what each needs, from the measured widths: an epoch by its
    FLOPs (`epoch_flops(model, width)`), validation, ranking and KNN by the width, each linear
    between the measured points around it (proportional beyond them). Every evaluation takes
    the mean measured one. Extraction and the report are not measured by this benchmark."""
    walls = {row.stage: row.wall for row in report.rows if row.wall and row.width == "—"}
    knn = [(int(row.width), row.wall) for row in report.rows if row.stage == "train knn" and row.wall]
    evaluations = [row.wall for row in report.rows if row.stage.startswith("evaluate") and row.wall]
    evaluate = np.mean(evaluations) / 3600 if evaluations else None

    def hours(stage: str) -> float | None:
        return walls[stage] / 3600 if stage in walls else None

    stages = [
        StudyStage("dataset", "dataset", hours("dataset"), []),
        StudyStage("split", "split", hours("split"), ["dataset"]),
        StudyStage("train@mostpop", "train", hours("train mostpop"), ["split"], model="mostpop"),
    ]
    for backend, width in STUDY_BACKENDS.items():
        stages.append(StudyStage(f"extract@{backend}", "extract", None, ["dataset"], backend))
        for model in ("knn", *TRAINED):
            run = f"{backend}-{model}" + ("" if model in DETERMINISTIC else f"-{BENCHMARK_SEED}")
            seconds = interpolate(knn, width) if model == "knn" and knn else None
            if model in trained:
                measured = trained[model]
                epoch = interpolate([(t.flops, t.epoch) for t in measured.values()], epoch_flops(model, width))
                validation = interpolate([(w, t.validation) for w, t in measured.items()], width)
                ranking = interpolate([(w, t.ranking) for w, t in measured.items()], width)
                seconds = max_epochs[model] * (epoch + validation) + ranking
            stages.append(
                StudyStage(
                    f"train@{run}",
                    "train",
                    seconds / 3600 if seconds else None,
                    [f"extract@{backend}", "split"],
                    backend,
                    model,
                )
            )
    for train in [stage for stage in stages if stage.kind == "train"]:
        run = train.stage.removeprefix("train@")
        stages.append(StudyStage(f"evaluate@{run}", "evaluate", evaluate, [train.stage], train.backend, train.model))
    stages.append(StudyStage("report", "report", None, [stage.stage for stage in stages if stage.kind == "evaluate"]))
    return stages


def print_study_estimate(stages: list[StudyStage], max_epochs: dict[str, int]) -> None:
    """The whole study's train stages per backend, and the total of every measured stage."""
    trained = {(stage.backend, stage.model): stage.hours for stage in stages if stage.kind == "train"}
    print(
        f"\nWhole study on this machine: 9 backends x (KNN, Shallow <= {max_epochs['shallow']} epochs, "
        f"BERT4Rec <= {max_epochs['bert4rec']} epochs), one stage at a time, early stopping not counted:\n"
    )
    print("| backend | width | KNN s | Shallow h | BERT4Rec h |\n|---|---|---|---|---|")
    for backend, width in STUDY_BACKENDS.items():
        knn, *models = (trained[backend, model] for model in ("knn", *TRAINED))
        shown = [f"{knn * 3600:,.0f}" if knn else "—"] + [f"{cell:,.1f}" if cell else "—" for cell in models]
        print(f"| {backend} | {width} | " + " | ".join(shown) + " |")
    total = sum(stage.hours for stage in stages if stage.hours)
    print(f"\nTotal, with dataset, split, MostPop and the evaluations: {total:,.0f} h = {total / 24:,.1f} days.")


def write_study_times(path: Path, stages: list[StudyStage], header: dict) -> None:
    """The per-stage estimate as JSON for benchmarks/cluster_time.py: `header` says where it came from."""
    rows = [{**asdict(stage), "hours": None if stage.hours is None else round(stage.hours, 6)} for stage in stages]
    # One stage a line, so that the file reads (and diffs) as a table.
    head = json.dumps(header, indent=1).replace("\n", "\n ")
    body = ",\n".join(f"  {json.dumps(row)}" for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{{"header": {head},\n "stages": [\n{body}\n ]\n}}\n')


if __name__ == "__main__":
    main()
