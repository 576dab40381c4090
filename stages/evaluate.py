"""evaluate@<backend>-<model>-<seed>: per-user metrics and their means with 95% intervals.

--model and --seed name the run whose predictions are read (a deterministic model: no --seed).

Splits: val, test and, for models that ranked them, the cold tracks of cold_test ("cold").
Accuracy (audiorec.metrics: rs_metrics' definitions, vectorised) and beyond accuracy (audiorec.evaluation.beyond:
popularity, novelty, diversity in `evaluate.diversity_space`'s vectors, accuracy per popularity
bucket, catalogue coverage and concentration).
"""

import argparse

import numpy as np
import pandas as pd

from audiorec import paths
from audiorec.evaluation.beyond import Catalogue, catalogue_file, split_metrics
from audiorec.io import write_json
from audiorec.metrics import per_user_metrics, summarise
from audiorec.params import read_params, setup_logging

TRUTH = {"val": "val.parquet", "test": "test.parquet", "cold": "cold_test.parquet"}


def catalogue(settings: dict) -> Catalogue:
    train = pd.read_parquet(paths.SPLITS / "train.parquet", columns=["user_id", "track_idx", "count"])
    space = settings["diversity_space"]
    # A masked track (extract.on_error: skip) has a NaN row: a zero vector, at distance 1 from every track.
    vectors = np.nan_to_num(np.load(paths.embeddings(space))) if space else None
    n_tracks = len(vectors) if vectors is not None else len(pd.read_parquet(paths.TRACKS, columns=["track_id"]))
    buckets = settings["popularity_buckets"]
    return Catalogue.of(train, n_tracks, buckets["head"], buckets["tail"], vectors)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--seed", type=int, help="the trained run's seed")
    args = parser.parse_args()
    run = paths.run_name(args.model, args.seed)
    setup_logging()
    settings = read_params()["evaluate"]
    ks = settings["ks"]
    predictions = pd.read_parquet(paths.predictions(args.backend, run))
    tracks = catalogue(settings)
    per_user, summary, catalogue_values = [], {}, {}
    for split, name in TRUTH.items():
        ranked = predictions[predictions["split"] == split]
        if split == "cold" and ranked.empty:
            continue
        truth = pd.read_parquet(paths.SPLITS / name, columns=["user_id", "track_idx"])
        values = per_user_metrics(truth, ranked, ks)
        beyond, by_run = split_metrics(tracks, split, truth, ranked, ks, values["user_id"].to_numpy())
        values = values.merge(beyond, on="user_id", validate="one_to_one")
        summary[split] = summarise(values) | by_run
        catalogue_values[split] = by_run
        per_user.append(values.assign(split=split))
    out = paths.per_user(args.backend, run)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(per_user, ignore_index=True).to_parquet(out, index=False)
    write_json(catalogue_values, catalogue_file(out))
    write_json(summary, paths.run_metrics(args.backend, run))


if __name__ == "__main__":
    main()
