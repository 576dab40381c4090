"""Paired tests between two evaluated runs, on the same users, for any metrics.

    python -m stages.paired oracle/bert4rec oracle_unordered/bert4rec
    python -m stages.paired musicnn/shallow musicnn/knn --split cold --metrics hitrate@10 ndcg@10
    python -m stages.paired musicnn/shallow.seed0 musicnn/shallow.seed1

A run is `<backend>/<model>` as evaluate wrote it under data/eval/ (after `make repro`).
For a trained model, `<backend>/<model>` is each user's metric averaged over the seeds of
params.yaml: seeds, as the report tests it; `<backend>/<model>.seed<N>` is one seed's run.
The report tests each row against its table's best and its controls on HitRate@k only;
this answers any other pair (two models on one backend, a control on NDCG, two seeds).
"""

import argparse

import pandas as pd

from audiorec import paths
from audiorec.config import load_params
from audiorec.metrics import mean_over_seeds
from audiorec.evaluation.report import read_per_user
from audiorec.evaluation.significance import compare_runs


def per_user(run: str, seeds: list[int]) -> pd.DataFrame | None:
    """The per-user metrics of `run`: one evaluated run, or a trained model's mean over `seeds`;
    None if not evaluated."""
    backend, _, name = run.partition("/")
    if not name:
        return None
    exact = paths.per_user(backend, name).is_file()  # a deterministic model, or <model>.seed<N>
    try:
        return mean_over_seeds(list(read_per_user(backend, name, None if exact else seeds)))
    except FileNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", help="<backend>/<model> or <backend>/<model>.seed<N>")
    parser.add_argument("second", help="<backend>/<model> or <backend>/<model>.seed<N>")
    parser.add_argument("--split", default="test", choices=("val", "test", "cold"))
    parser.add_argument("--metrics", nargs="+", default=["hitrate@50", "ndcg@50", "recall@50"])
    args = parser.parse_args()
    seeds = load_params()["seeds"]
    frames = []
    for run in (args.first, args.second):
        frame = per_user(run, seeds)
        if frame is None:
            parser.error(
                f"no per-user values for {run!r} under {paths.EVAL}; give <backend>/<model> of an evaluated run "
                f"(a trained model: every seed of {seeds} evaluated) or <backend>/<model>.seed<N> (make repro)"
            )
        frames.append(frame)
    table = compare_runs(*frames, args.metrics, args.split).rename(columns={"first": args.first, "second": args.second})
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4g}"))


if __name__ == "__main__":
    main()
