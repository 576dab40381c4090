"""Paired tests between two evaluated runs, on the same users, for any metrics.

    python -m stages.paired oracle/bert4rec oracle_unordered/bert4rec
    python -m stages.paired musicnn/shallow musicnn/knn --split cold --metrics hitrate@10 ndcg@10

A run is `<backend>/<model>` as evaluate wrote it under data/eval/ (after `make repro`).
The report tests each row against its table's best and its controls on HitRate@k only;
this answers any other pair (two models on one backend, a control on NDCG).
"""
import argparse

import pandas as pd

from audiorec import paths
from audiorec.significance import compare_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", help="<backend>/<model>")
    parser.add_argument("second", help="<backend>/<model>")
    parser.add_argument("--split", default="test", choices=("val", "test", "cold"))
    parser.add_argument("--metrics", nargs="+", default=["hitrate@50", "ndcg@50", "recall@50"])
    args = parser.parse_args()
    frames = []
    for run in (args.first, args.second):
        backend, _, model = run.partition("/")
        path = paths.per_user(backend, model)
        if not model or not path.is_file():
            parser.error(f"no per-user values for {run!r} at {path}; give <backend>/<model> of an evaluated run (make repro)")
        frames.append(pd.read_parquet(path))
    table = compare_runs(*frames, args.metrics, args.split).rename(columns={"first": args.first, "second": args.second})
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4g}"))


if __name__ == "__main__":
    main()
