"""Shallow Net at Music4All's shape: one training batch of the model's code against the same
batch in plain autograd, and against its FLOP floor, in the same run.

The plain path is the formulation the model used before its batch was made memory-lean: the
layer over the distinct rows of the batch, `F.normalize(F.relu(...))`, each candidate's row
gathered and multiplied with its anchor, PyTorch's default (unfused) Adam and positive pairs
found by binary search in the sorted codes. Both paths draw negatives with the model's
`sample_negatives` and train the same parameters; `tests/test_shallow.py` checks that they
compute the same loss and gradients. The floor is the batch's FLOPs (the layer over its
distinct user and track rows, forward, weight and input gradients; the scores forward and
backward) at the GFLOP/s of a 4096² matmul measured here.

Needs a split of Music4All's shape, which `benchmarks/music4all_scale.py` writes:
  python benchmarks/music4all_scale.py --stages dataset split        # once: /tmp/music4all_scale_1
  python benchmarks/shallow_batch.py --widths 200 768 4800
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from music4all_scale import matmul_gflops  # noqa: E402

from audiorec import models  # noqa: E402
from audiorec.models.shallow import PositivePairs, ShallowRecommender, hinge_loss, sample_negatives  # noqa: E402
from audiorec.params import read_params  # noqa: E402


def plain_loss(
    model: ShallowRecommender, users: torch.Tensor, items: torch.Tensor, negatives: torch.Tensor
) -> torch.Tensor:
    """The hinge loss of negative users for each (user, track) pair, in plain autograd ops."""
    net = model.net

    def represent(table: torch.nn.Embedding, rows: torch.Tensor) -> torch.Tensor:
        distinct, inverse = torch.unique(rows, return_inverse=True)
        return F.embedding(inverse, F.normalize(F.relu(net.tower(table(distinct))), dim=-1))

    anchors = represent(net.items, items)
    candidates = represent(net.users, torch.cat([users[:, None], negatives], dim=1))
    scores = (anchors[:, None] * candidates).sum(-1)
    return hinge_loss(scores[:, 0], scores[:, 1:], model.margin)


def batch_flops(users: torch.Tensor, items: torch.Tensor, negatives: torch.Tensor, width: int) -> float:
    """The layer (width²) over the distinct user rows (forward, weight and input gradients) and
    track rows (forward and weight gradient: the audio table is frozen), and the scores (x3)."""
    distinct_users = len(torch.unique(torch.cat([users, negatives.reshape(-1)])))
    distinct_items = len(torch.unique(items))
    return 2 * width * width * (3 * distinct_users + 2 * distinct_items) + 3 * 2 * negatives.numel() * width


def time_batches(step, batches: list[torch.Tensor]) -> float:
    step(batches[0])  # warm-up: allocator and thread pools
    started = time.perf_counter()
    for batch in batches[1:]:
        step(batch)
    return (time.perf_counter() - started) / (len(batches) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir", type=Path, default=Path("/tmp/music4all_scale_1"), help="a music4all_scale scratch folder"
    )
    parser.add_argument("--widths", type=int, nargs="+", default=[200, 768])
    parser.add_argument("--batches", type=int, default=5, help="timed batches per path (after one warm-up)")
    args = parser.parse_args()
    train = pd.read_parquet(
        args.workdir / "data" / "splits" / "train.parquet", columns=["user_id", "track_idx", "count"]
    )
    n_items = len(pd.read_parquet(args.workdir / "data" / "tracks.parquet", columns=["track_id"]))
    gflops = matmul_gflops("cpu")
    print(
        f"{train['user_id'].nunique():,} users, {n_items:,} tracks, {len(train):,} train pairs; "
        f"{torch.get_num_threads()} torch threads, matmul {gflops:.0f} GFLOP/s"
    )
    print("| width | model's batch s | plain autograd s | speed-up | floor s | model / floor |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for width in args.widths:
        items = rng.standard_normal((n_items, width), dtype=np.float32)
        model = ShallowRecommender(models.settings(read_params(), "shallow", device="cpu", max_epochs=1))
        model._build(items, train)
        pairs = model._pairs(train)
        positives = model._codes(pairs)
        sorted_codes = PositivePairs(positives.codes, PositivePairs.DENSE_LIMIT + 1)  # binary search, as before
        order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(0))
        batches = [
            order[start : start + model.settings.batch_size]
            for start in range(0, (args.batches + 1) * model.settings.batch_size, model.settings.batch_size)
        ]

        def model_step(batch: torch.Tensor) -> None:
            loss = model._loss(pairs, batch, model.generator, positives)
            model.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            model.optimizer.step()

        plain_optimizer = torch.optim.Adam(model.trainable, lr=model.settings.lr)

        def plain_step(batch: torch.Tensor) -> None:
            users, items_ = pairs.users[batch], pairs.items[batch]
            negatives = sample_negatives(
                users,
                items_,
                model.n_users,
                model.n_items,
                model.settings.neg_samples,
                "item",
                model.generator,
                sorted_codes,
            )
            loss = plain_loss(model, users, items_, negatives)
            plain_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            plain_optimizer.step()

        fast, plain = time_batches(model_step, batches), time_batches(plain_step, batches)
        users, items_ = pairs.users[batches[1]], pairs.items[batches[1]]
        drawn = sample_negatives(
            users, items_, model.n_users, model.n_items, model.settings.neg_samples, "item", model.generator, positives
        )
        floor = batch_flops(users, items_, drawn, width) / (gflops * 1e9)
        print(
            f"| {width} | {fast:.3f} | {plain:.3f} | {plain / fast:.1f}× | {floor:.3f} | {fast / floor:.1f}× |",
            flush=True,
        )


if __name__ == "__main__":
    main()
