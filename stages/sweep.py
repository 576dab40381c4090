"""Queue a hyperparameter sweep, run it, and show the experiments ranked.

    python -m stages.sweep -S 'shallow.neg_samples=10,20,40' -S 'shallow.lr=0.001,0.0003' -j 2

Each -S is passed to `dvc exp run --queue` (comma-separated values make a grid).
Stages whose params did not change are restored from the DVC cache, so a sweep
of recommender params never re-extracts audio. Afterwards:
`dvc exp apply <name>` brings the best into the workspace.
"""

import argparse
import subprocess
from pathlib import Path

from audiorec.params import setup_logging
from audiorec.workflow.sweep import DVC, SweepError, queue, run_queue

# Experiments are ranked on validation: test metrics are reported, never chosen on.
DEFAULT_SORT = "metrics/musicnn/shallow.seed0.json:val.ndcg@50.mean"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-S", "--set-param", action="append", required=True, dest="set_params", metavar="PARAM=VALUES")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="parallel workers (each uses the cores a repro uses)")
    parser.add_argument("--sort-by", default=DEFAULT_SORT, help=f"metric to rank by (default {DEFAULT_SORT})")
    args = parser.parse_args()
    setup_logging()
    root = Path(".")
    try:
        names = queue(args.set_params, root)
        run_queue(root, args.jobs, names)
    except SweepError as error:
        raise SystemExit(f"sweep: {error}")
    subprocess.run(
        [*DVC, "exp", "show", "--only-changed", "--sort-by", args.sort_by, "--sort-order", "desc", "--md"], check=True
    )


if __name__ == "__main__":
    main()
