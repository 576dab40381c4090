"""Shallow net: one epoch of the vectorised batch training path vs a per-sample Python loop.

Both paths run the same loss (`ShallowRecommender._loss`: sampling with
positive exclusion, forward, hinge) and an Adam step. The data is random,
built in-process, or with `--backend NAME` the default pipeline's own train
split and that backend's embeddings (run `make repro` first). The per-sample
loop handles one positive pair per step and is timed on a subset, extrapolated
to pairs/s; the ratio is measured in the same run.
Usage: python benchmarks/shallow_throughput.py [--backend musicnn] [--pairs 100000] [--baseline-pairs 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from audiorec import paths
from audiorec.io import load_embeddings
from audiorec import models
from audiorec.models.shallow import ShallowRecommender
from audiorec.models.training import resolve_device
from audiorec.params import read_params

TARGET_RATIO = 20


def synthetic(n_users: int, n_items: int, dim: int, n_pairs: int, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    items = rng.normal(size=(n_items, dim)).astype(np.float32)
    codes = rng.choice(n_users * n_items, size=n_pairs, replace=False)
    train = pd.DataFrame(
        {
            "user_id": [f"user{user:05d}" for user in codes // n_items],
            "track_idx": codes % n_items,
            "count": rng.integers(1, 20, size=n_pairs),
        }
    )
    return items, train


def pipeline_data(backend: str) -> tuple[np.ndarray, pd.DataFrame]:
    items = load_embeddings(paths.embeddings(backend), pd.read_parquet(paths.TRACKS))
    return items, pd.read_parquet(paths.SPLITS / "train.parquet")


def prepared(items: np.ndarray, train: pd.DataFrame, **params) -> tuple[ShallowRecommender, object, torch.Tensor]:
    model = ShallowRecommender(models.settings(read_params(), "shallow", **params))
    model._build(items, train)
    pairs = model._pairs(train)
    return model, pairs, model._codes(pairs)


def vectorised_epoch(items: np.ndarray, train: pd.DataFrame, **params) -> float:
    model, pairs, codes = prepared(items, train, **params)
    model._train_epoch(pairs, codes)  # warm-up: allocator and thread pools
    model, pairs, codes = prepared(items, train, **params)
    started = time.perf_counter()
    model._train_epoch(pairs, codes)
    if model.torch_device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def per_sample_loop(items: np.ndarray, train: pd.DataFrame, n_pairs: int, **params) -> float:
    model, pairs, codes = prepared(items, train, **params)
    model.net.train()
    started = time.perf_counter()
    for index in range(n_pairs):
        loss = model._loss(pairs, torch.tensor([index], device=model.torch_device), model.generator, codes)
        model.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        model.optimizer.step()
    if model.torch_device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", help="use the pipeline's train split and this backend's embeddings")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--dim", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--baseline-pairs", type=int, default=2000)
    parser.add_argument("--neg-samples", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.backend:
        items, train = pipeline_data(args.backend)
        args.users, (args.items, args.dim), args.pairs = train["user_id"].nunique(), items.shape, len(train)
    else:
        items, train = synthetic(args.users, args.items, args.dim, args.pairs)
    params = {"neg_samples": args.neg_samples, "batch_size": args.batch_size, "device": args.device}
    epoch_seconds = vectorised_epoch(items, train, **params)
    loop_seconds = per_sample_loop(items, train, args.baseline_pairs, **params)
    vectorised_rate = args.pairs / epoch_seconds
    loop_rate = args.baseline_pairs / loop_seconds
    ratio = vectorised_rate / loop_rate
    device = resolve_device(args.device)
    print(
        f"data: {args.backend or 'random'}: {args.users} users, {args.items} items, dim {args.dim}, "
        f"{args.pairs} positive pairs, "
        f"{args.neg_samples} negatives, device {device}, {torch.get_num_threads()} torch threads"
    )
    print(f"vectorised (batch {args.batch_size}):  {vectorised_rate:10.0f} pairs/s  (one epoch: {epoch_seconds:.2f} s)")
    print(
        f"per-sample loop:           {loop_rate:10.0f} pairs/s  ({args.baseline_pairs} pairs in {loop_seconds:.2f} s; "
        f"a full epoch would take {args.pairs / loop_rate:.0f} s)"
    )
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"speed-up: {ratio:.1f}x (target >= {TARGET_RATIO}x: {verdict})")


if __name__ == "__main__":
    main()
