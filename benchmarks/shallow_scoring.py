"""Shallow's two ways of scoring a batch's candidates, forward and backward, on the CPU:
one (batch x distinct rows) product gathered at the candidates, or each candidate's own dot
product (`GatheredDot`). Printed per width and number of distinct rows per candidate: both
times, their ratio, the path `ShallowNet.candidate_scores` takes (the rule
`distinct <= ALL_PAIRS_ROWS_PER_CANDIDATE x candidates`) and whether it is the faster one.

The rows include the two real shapes: the built-in dataset (about 1,000 users for 21
candidates, 48 rows per candidate) and Music4All-Onion (17,053 users, 812). Until
2026-12-01 the rule was `distinct <= candidates x width`, which sent both of them, and every
Music4All batch at 4,800-d, through the product.

  python benchmarks/shallow_scoring.py              # about a minute
  python benchmarks/shallow_scoring.py --widths 4800 --batch 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiorec.models import kernels, shallow  # noqa: E402

CANDIDATES = 21  # the positive and 20 negatives (params.yaml: shallow.neg_samples)
# Distinct rows of the scored table: 1-8 per candidate around the crossing, then the built-in
# dataset's users (1,008 = 48 per candidate) and Music4All's 17,053 (812).
DISTINCT_ROWS = (21, 42, 84, 168, 1_008, 17_053)


def seconds(run, budget: float = 1.0) -> float:
    """Best of repeated runs within about `budget` seconds (at least two)."""
    run()
    times: list[float] = []
    while len(times) < 2 or sum(times) < budget:
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def both_paths(batch: int, distinct: int, width: int, generator: torch.Generator) -> tuple[float, float]:
    anchors = torch.randn(batch, width, generator=generator, requires_grad=True)
    table = torch.randn(distinct, width, generator=generator, requires_grad=True)
    rows = torch.randint(distinct, (batch, CANDIDATES), generator=generator)
    upstream = torch.randn(batch, CANDIDATES, generator=generator)

    def all_pairs() -> None:
        (anchors @ table.T).gather(1, rows).backward(upstream)

    def per_candidate() -> None:
        kernels.GatheredDot.apply(anchors, table, rows).backward(upstream)

    return seconds(all_pairs), seconds(per_candidate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[104, 200, 1024])
    parser.add_argument("--batch", type=int, default=10_000, help="pairs per batch (params.yaml: shallow.batch_size)")
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    rule = shallow.ALL_PAIRS_ROWS_PER_CANDIDATE
    print(
        f"batch {args.batch:,}, {CANDIDATES} candidates per pair, {torch.get_num_threads()} torch threads; "
        f"the model's product up to {rule} distinct rows per candidate\n"
    )
    print(
        "| width | distinct rows | per candidate | all-pairs ms "
        "| per-candidate ms | all-pairs / per-candidate | model takes | faster |"
    )
    print("|---|---|---|---|---|---|---|---|")
    wrong = 0
    for width in args.widths:
        for distinct in DISTINCT_ROWS:
            product, candidates = both_paths(args.batch, distinct, width, generator)
            takes = "all-pairs" if distinct <= rule * CANDIDATES else "per-candidate"
            faster = "all-pairs" if product < candidates else "per-candidate"
            # Within 15% either way is a tie on this machine's noise.
            right = takes == faster or abs(product / candidates - 1) < 0.15
            wrong += not right
            print(
                f"| {width} | {distinct:,} | {distinct / CANDIDATES:.0f} "
                f"| {product * 1e3:.1f} | {candidates * 1e3:.1f} | "
                f"{product / candidates:.2f}× | {takes} | {'yes' if right else 'NO'} |"
            )
    print(
        f"\nthe rule picked the slower path (by more than 15%) "
        f"in {wrong} of {len(args.widths) * len(DISTINCT_ROWS)} shapes"
    )


if __name__ == "__main__":
    main()
