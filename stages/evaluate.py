"""evaluate@<backend>-<model>: per-user metrics and their means with 95% intervals.

Splits: val, test and, for models that ranked them, the cold tracks of cold_test ("cold").
"""
import argparse

import pandas as pd

from audiorec import paths
from audiorec.config import load_params, setup_logging
from audiorec.io import write_json
from audiorec.metrics import per_user_metrics, summarise

TRUTH = {"val": "val.parquet", "test": "test.parquet", "cold": "cold_test.parquet"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    setup_logging()
    ks = load_params()["evaluate"]["ks"]
    predictions = pd.read_parquet(paths.predictions(args.backend, args.model))
    per_user, summary = [], {}
    for split, name in TRUTH.items():
        ranked = predictions[predictions["split"] == split]
        if split == "cold" and ranked.empty:
            continue
        truth = pd.read_parquet(paths.SPLITS / name, columns=["user_id", "track_idx"])
        values = per_user_metrics(truth, ranked, ks)
        summary[split] = summarise(values)
        per_user.append(values.assign(split=split))
    out = paths.per_user(args.backend, args.model)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(per_user, ignore_index=True).to_parquet(out, index=False)
    write_json(summary, paths.run_metrics(args.backend, args.model))


if __name__ == "__main__":
    main()
