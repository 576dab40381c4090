"""BERT4Rec training memory: masked-only logits and sampled softmax vs the naive full logits.

Each variant trains the same network for `--batches` steps of `--batch` sequences
of `--seq` tracks on a synthetic catalogue of `--items` tracks (random audio
vectors, every position real), in its own process so peak memory (ru_maxrss) is
its own. `naive` is what the original code did: logits for every position,
`[batch x seq x n_items]`, then cross-entropy on the masked ones. The ratio of
peak memory is measured in the same run.
Usage: python benchmarks/bert4rec_memory.py [--items 50000] [--batch 128] [--seq 200] [--batches 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

VARIANTS = ("naive", "softmax", "sampled_softmax")
TARGET_RATIO = 4


def train_steps(variant: str, items: int, batch: int, seq: int, batches: int, dim: int) -> dict:
    import torch
    import torch.nn.functional as F

    from audiorec.models.bert4rec import IGNORE, BERT4RecNet, mask_tokens, masked_softmax_loss, sampled_softmax_loss

    torch.manual_seed(0)
    net = BERT4RecNet(
        torch.randn(items, dim),
        hidden_dim=0,
        max_seq_len=seq,
        n_layers=2,
        n_heads=2,
        intermediate_dim=256,
        dropout=0.1,
        item_freeze=True,
    )
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    log_q = torch.full((items,), -float(np.log(items)))
    started = time.perf_counter()
    for _ in range(batches):
        tokens = torch.randint(items, (batch, seq), generator=generator)
        masked, targets = mask_tokens(tokens, net.padding, net.mask, 0.2, 0.0, generator)
        outputs = net(masked)
        if variant == "naive":
            logits = outputs @ net.item_vectors().T
            loss = F.cross_entropy(logits.reshape(-1, items), targets.reshape(-1), ignore_index=IGNORE)
        elif variant == "softmax":
            loss = masked_softmax_loss(outputs, targets, net.item_vectors())
        else:
            negatives = torch.randint(items, (1000,), generator=generator)
            loss = sampled_softmax_loss(outputs, targets, net, negatives, log_q)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    return {
        "variant": variant,
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "sequences_per_second": batch * batches / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seq", type=int, default=200)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--variant", choices=VARIANTS, help="run one variant in this process (used internally)")
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(train_steps(args.variant, args.items, args.batch, args.seq, args.batches, args.dim)))
        return
    print(f"catalogue {args.items} tracks, batch {args.batch} x seq {args.seq}, {args.batches} steps, dim {args.dim}")
    results = {}
    for variant in VARIANTS:
        command = [sys.executable, __file__, "--variant", variant] + [
            f"--{name}={getattr(args, name)}" for name in ("items", "batch", "seq", "batches", "dim")
        ]
        results[variant] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        row = results[variant]
        print(f"{variant:<16} peak {row['peak_gib']:6.2f} GiB   {row['sequences_per_second']:7.1f} sequences/s")
    for variant in ("softmax", "sampled_softmax"):
        ratio = results["naive"]["peak_gib"] / results[variant]["peak_gib"]
        speed = results[variant]["sequences_per_second"] / results["naive"]["sequences_per_second"]
        verdict = "met" if ratio >= TARGET_RATIO else "not met"
        print(
            f"{variant}: {ratio:.1f}x less peak memory than naive "
            f"(target >= {TARGET_RATIO}x: {verdict}), {speed:.1f}x the speed"
        )


if __name__ == "__main__":
    main()
