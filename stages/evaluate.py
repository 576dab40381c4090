"""evaluate@<backend>-<model>-<seed>: per-user metrics and their means with 95% intervals.

--model and --seed name the run whose predictions are read (a deterministic model: no --seed).

Splits: val, test and, for models that ranked them, the cold tracks of cold_test ("cold").
"""

import argparse

import pandas as pd

from audiorec import paths
from audiorec.params import read_params, setup_logging
from audiorec.io import write_json
from audiorec.metrics import per_user_metrics, summarise

TRUTH = {"val": "val.parquet", "test": "test.parquet", "cold": "cold_test.parquet"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--seed", type=int, help="the trained run's seed")
    args = parser.parse_args()
    run = paths.run_name(args.model, args.seed)
    setup_logging()
    ks = read_params()["evaluate"]["ks"]
    predictions = pd.read_parquet(paths.predictions(args.backend, run))
    per_user, summary = [], {}
    for split, name in TRUTH.items():
        ranked = predictions[predictions["split"] == split]
        if split == "cold" and ranked.empty:
            continue
        truth = pd.read_parquet(paths.SPLITS / name, columns=["user_id", "track_idx"])
        values = per_user_metrics(truth, ranked, ks)
        summary[split] = summarise(values)
        per_user.append(values.assign(split=split))
    out = paths.per_user(args.backend, run)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(per_user, ignore_index=True).to_parquet(out, index=False)
    write_json(summary, paths.run_metrics(args.backend, run))


if __name__ == "__main__":
    main()
