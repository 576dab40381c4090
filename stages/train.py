"""train@<run>: fit a recommender on a backend's frozen embeddings, rank tracks for val and test users.

A run (audiorec.workflow.grid) is a model on a backend's matrix, data/embeddings/<backend>.npy:
`none` for the models without audio (a zero-width matrix). --seed is the training seed of a
model that trains from one (params.yaml: seeds); its outputs carry it in their run name
(audiorec.paths.run_name: shallow.seed0). A model that reads ELSA's item factors gets those of
ELSA's run of the same seed (train@none-elsa-<seed>'s output).
With --shuffle-seed, the backend's shuffled control (its rows permuted by that seed); with
--unordered, BERT4Rec trained on sequences in random order. Which tracks each split ranks is
audiorec.evaluation.ranking's protocol.
"""

import argparse
import logging

import numpy as np
import pandas as pd
from dvclive import Live

from audiorec import models, paths
from audiorec.params import read_params, setup_logging
from audiorec.controls import control_name, shuffle_rows
from audiorec.io import load_embeddings, usable_tracks
from audiorec.evaluation.ranking import rank_splits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--backend",
        required=True,
        help=f"the matrix it reads; {paths.NO_BACKEND} for the models in params.yaml: baselines",
    )
    parser.add_argument("--model", required=True)
    parser.add_argument(
        "--shuffle-seed", type=int, help="the backend's control: its rows permuted across tracks by this seed"
    )
    parser.add_argument("--unordered", action="store_true", help="the order control: training sequences shuffled")
    parser.add_argument(
        "--seed", type=int, help="the training seed; required by every model but the deterministic ones"
    )
    args = parser.parse_args()
    if (args.seed is None) != (args.model in models.DETERMINISTIC):
        parser.error(
            f"--seed is {'required' if args.seed is None else 'not taken'} for {args.model} "
            f"(deterministic models: {', '.join(models.DETERMINISTIC)})"
        )
    setup_logging()
    params = read_params()
    tracks = pd.read_parquet(paths.TRACKS)
    item_embeddings = load_embeddings(paths.embeddings(args.backend), tracks)
    args.backend = paths.folder(args.backend)  # a stored layer's runs are filed under its layer folder
    if args.shuffle_seed is not None:  # masked rows keep their place, so the control leaves out the same tracks
        item_embeddings = shuffle_rows(item_embeddings, args.shuffle_seed)
        args.backend = control_name(args.backend)
    settings = models.settings(params, args.model)  # checked by the code stage already
    inputs: dict = {} if args.seed is None else {"seed": args.seed}
    if args.model in models.ELSA_MODELS:  # the ELSA run of the same seed
        inputs["collaborative_factors"] = np.load(paths.elsa_item_factors(args.seed))
    if args.unordered:
        if "shuffle_positions" not in type(settings).model_fields:
            parser.error(f"--unordered needs a sequential model; {args.model} has no shuffle_positions param")
        settings = settings.replace(shuffle_positions=True)
        args.backend = control_name(args.backend, "unordered")
    train = pd.read_parquet(paths.SPLITS / "train.parquet")
    truths = {
        split: pd.read_parquet(paths.SPLITS / name, columns=["user_id", "track_idx", "timestamp"])
        for split, name in (("val", "val.parquet"), ("test", "test.parquet"), ("cold", "cold_test.parquet"))
    }
    # Tracks the extraction skipped are neither learned from nor ranked; they stay in the
    # test truth, so a backend that fails on tracks pays for it. Models get zeros in their rows.
    item_embeddings, usable = usable_tracks(item_embeddings)
    if usable is not None:
        logging.getLogger(__name__).warning("%d tracks have no embedding; they are left out", len(tracks) - len(usable))
        train = train[train["track_idx"].isin(usable)]
    val = truths["val"][truths["val"]["track_idx"].isin(train["track_idx"])]
    run = paths.run_name(args.model, args.seed)
    # Defaults would rewrite the root dvc.yaml and try to commit an experiment mid-repro.
    with Live(str(paths.training_log(args.backend, run)), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        if "resume" in type(settings).model_fields:  # models that can continue a killed run keep their state here
            inputs["checkpoint_dir"] = str(paths.resume_dir(args.backend, run))
        cold_items = np.unique(truths["cold"]["track_idx"].to_numpy())
        recommender = models.create(args.model, settings, **inputs).fit(
            item_embeddings, train, val=val, live=live, cold_items=cold_items
        )
    recommender.save(paths.model_dir(args.backend, run))
    predictions = rank_splits(recommender, train, truths, params["train"]["top_k"], usable)
    out = paths.predictions(args.backend, run)
    out.parent.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(out, index=False)


if __name__ == "__main__":
    main()
