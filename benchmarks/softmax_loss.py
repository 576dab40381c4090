"""BERT4Rec's full-softmax loss at Music4All's catalogue (55,923 classes): the model's
`ChunkedCrossEntropy` against the way it computed the same blocks before, in the same run.

Before: each block of rows took one `rows @ class_vectors.T` product into a fresh tensor and
`torch.logsumexp`, which allocates its own (rows x classes) temporary. Now: the product 512
classes at a time (`class_blocked_logits`) into a buffer reused by every block, and the
log-normaliser by the same steps into a second reused buffer (`logsumexp_rows`). Both paths
give the same bits (checked here on every run). Printed per width: the loss with its gradient
to the rows (the study's frozen class table needs none), the GFLOP/s of its two products,
and the logits product alone, one product against class blocks, next to a 4096-square
float32 matmul measured in the same run.

  python benchmarks/softmax_loss.py                  # 200-d and 768-d, about a minute
  python benchmarks/softmax_loss.py --widths 4800    # Jukebox's width, minutes
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from music4all_scale import matmul_gflops  # noqa: E402

from audiorec.models import kernels  # noqa: E402

CLASSES = 55_923  # the train vocabulary of the Music4All-shaped split


def before_forward(
    hidden: torch.Tensor, class_vectors: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss and its gradient to the rows as ChunkedCrossEntropy computed them before."""
    grad_hidden = torch.empty_like(hidden)
    total = hidden.new_zeros(())
    step = max(1, kernels.CROSS_ENTROPY_BLOCK // len(class_vectors))
    for start in range(0, len(hidden), step):
        rows, block_targets = hidden[start : start + step], targets[start : start + step]
        logits = rows @ class_vectors.T
        log_normalisers = torch.logsumexp(logits, dim=1)
        total += (log_normalisers - logits.gather(1, block_targets[:, None]).squeeze(1)).sum()
        probabilities = logits.sub_(log_normalisers[:, None]).exp_()
        probabilities[torch.arange(len(rows)), block_targets] -= 1
        torch.mm(probabilities, class_vectors, out=grad_hidden[start : start + step])
    # ChunkedCrossEntropy.backward scales by the upstream gradient over the row count, a tensor.
    return total / len(hidden), grad_hidden * (hidden.new_ones(()) / len(hidden))


def after_forward(
    hidden: torch.Tensor, class_vectors: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    rows = hidden.clone().requires_grad_()
    loss = kernels.ChunkedCrossEntropy.apply(rows, class_vectors, targets, True)
    loss.backward()
    return loss.detach(), rows.grad


def best_seconds(run, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[200, 768])
    parser.add_argument(
        "--rows", type=int, default=1000, help="masked positions (a 200-d Music4All batch has about 1,000)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    gflops = matmul_gflops("cpu")
    print(f"{torch.get_num_threads()} torch threads; 4096² float32 matmul: {gflops:.0f} GFLOP/s")
    print(
        "| width | loss before s | loss now s | speed-up "
        "| loss matmuls GFLOP/s now | logits product: one / class blocks GFLOP/s | same bits |"
    )
    print("|---|---|---|---|---|---|---|")
    for width in args.widths:
        class_vectors = torch.nn.functional.normalize(torch.randn(CLASSES, width, generator=generator), dim=-1)
        hidden = torch.randn(args.rows, width, generator=generator)
        targets = torch.randint(CLASSES, (args.rows,), generator=generator)
        before, after = before_forward(hidden, class_vectors, targets), after_forward(hidden, class_vectors, targets)
        same = all(torch.equal(old, new) for old, new in zip(before, after))
        seconds_before = best_seconds(lambda: before_forward(hidden, class_vectors, targets), args.repeats)
        seconds_after = best_seconds(lambda: after_forward(hidden, class_vectors, targets), args.repeats)
        block = hidden[: max(1, kernels.CROSS_ENTROPY_BLOCK // CLASSES)]
        logits = block.new_empty(len(block), CLASSES)
        product_flops = 2 * len(block) * CLASSES * width
        one = best_seconds(lambda: torch.mm(block, class_vectors.T, out=logits), args.repeats)
        blocked = best_seconds(lambda: kernels.class_blocked_logits(block, class_vectors, out=logits), args.repeats)
        loss_flops = 2 * product_flops * args.rows / len(block)
        print(
            f"| {width} | {seconds_before:.3f} | {seconds_after:.3f} | {seconds_before / seconds_after:.2f}× "
            f"| {loss_flops / seconds_after / 1e9:.0f} "
            f"| {product_flops / one / 1e9:.0f} / {product_flops / blocked / 1e9:.0f} "
            f"| {'yes' if same else 'NO'} |"
        )
    print(f"4096² float32 matmul at the end: {matmul_gflops('cpu'):.0f} GFLOP/s")


if __name__ == "__main__":
    main()
