"""train@<backend>-<model>: fit a recommender on frozen embeddings, rank tracks for val and test users.

Without --backend (train_baseline@<model>), an interactions-only model from
params.yaml: baselines; it gets a zero-width embedding matrix aligned with tracks.parquet.
With --shuffled (train_control@<backend>-<model>), the backend's shuffled control.
Models that represent tracks by audio also rank the cold tracks for the cold_test users.
"""
import argparse
import logging

import numpy as np
import pandas as pd
from dvclive import Live

from audiorec import models, paths
from audiorec.config import load_params, setup_logging
from audiorec.controls import control_name, shuffle_rows
from audiorec.io import load_embeddings, usable_tracks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", help="omit for the models in params.yaml: baselines")
    parser.add_argument("--model", required=True)
    parser.add_argument("--shuffled", action="store_true", help="the backend's control: its rows permuted across tracks")
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    tracks = pd.read_parquet(paths.TRACKS)
    if args.backend is None:
        if args.model not in models.BASELINES:
            parser.error(f"--backend is required for {args.model}; only {', '.join(models.BASELINES)} run without audio")
        args.backend = paths.NO_BACKEND
        item_embeddings = np.zeros((len(tracks), 0), dtype=np.float32)
    else:
        item_embeddings = load_embeddings(paths.embeddings(args.backend), tracks)
    if args.shuffled:
        item_embeddings = shuffle_rows(item_embeddings, params["controls"]["seed"])
        args.backend = control_name(args.backend)
    train = pd.read_parquet(paths.SPLITS / "train.parquet")
    val = pd.read_parquet(paths.SPLITS / "val.parquet", columns=["user_id", "track_idx"])
    # Tracks the extraction skipped are neither learned from nor recommended; they stay in the
    # test truth, so a backend that fails on tracks pays for it. Models get zeros in their rows.
    item_embeddings, candidates = usable_tracks(item_embeddings)
    if candidates is not None:
        logging.getLogger(__name__).warning("%d tracks have no embedding; they are left out", len(tracks) - len(candidates))
        train, val = (frame[frame["track_idx"].isin(candidates)] for frame in (train, val))
    # Defaults would rewrite the root dvc.yaml and try to commit an experiment mid-repro.
    with Live(str(paths.training_log(args.backend, args.model)), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        settings = params[args.model]
        if "resume" in settings:  # models that can continue a killed run keep their state here
            settings = {**settings, "checkpoint_dir": str(paths.resume_dir(args.backend, args.model))}
        recommender = models.create(args.model, **settings).fit(item_embeddings, train, val=val, live=live)
    recommender.save(paths.model_dir(args.backend, args.model))
    top_k = params["train"]["top_k"]
    predictions = []
    for split in ("val", "test"):
        users = pd.read_parquet(paths.SPLITS / f"{split}.parquet", columns=["user_id"])["user_id"].unique()
        predictions.append(recommender.recommend(sorted(users), top_k, candidates).assign(split=split))
    cold = pd.read_parquet(paths.SPLITS / "cold_test.parquet", columns=["user_id", "track_idx"])
    if recommender.ranks_cold_tracks and len(cold):
        # The cold-start protocol ranks only the tracks that are new in the test period.
        cold_tracks = np.unique(cold["track_idx"])
        cold_tracks = cold_tracks if candidates is None else np.intersect1d(cold_tracks, candidates)
        ranked = recommender.recommend(sorted(cold["user_id"].unique()), top_k, candidates=cold_tracks)
        predictions.append(ranked.assign(split="cold"))
    out = paths.predictions(args.backend, args.model)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(predictions, ignore_index=True)[["split", "user_id", "track_idx"]].to_parquet(out, index=False)


if __name__ == "__main__":
    main()
