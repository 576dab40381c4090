"""choose_layer@<backend>: with `<backend>.layer: best`, the stored layer with the highest val NDCG@50 in the
layer sweep becomes the backend's matrix, data/embeddings/<backend>.npy, which the main grid's runs read.
metrics/layers/<backend>.json says which layer, and every layer's figures it was chosen on."""

import argparse

import numpy as np

from audiorec import paths
from audiorec.evaluation.layers import (
    CHOICE_METRIC,
    CHOICE_SPLIT,
    choose_layer,
    layer_scores,
    read_sweep,
    split_summary,
)
from audiorec.io import write_json
from audiorec.params import read_params, setup_logging
from audiorec.workflow import grid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True)
    args = parser.parse_args()
    setup_logging()
    params = read_params()
    layers = grid.stored_layers(params, args.backend)
    sweep = read_sweep(args.backend, grid.sweep_run_names(params, args.backend))
    scores = layer_scores(sweep, layers, CHOICE_METRIC)
    chosen = choose_layer(scores)
    paths.EMBEDDINGS.mkdir(parents=True, exist_ok=True)
    # The main matrix stays float32 whatever extract.layer_dtype stored.
    np.save(paths.embeddings(args.backend), np.load(paths.embeddings(f"{args.backend}@{chosen}")).astype(np.float32))
    by_model = {
        model: {
            layer: split_summary(frame, CHOICE_SPLIT, CHOICE_METRIC)
            for (layer, name), frame in sweep.items()
            if name == model
        }
        for model in params["layer_sweep"]["models"]
    }
    write_json(
        {
            "chosen": chosen,
            "metric": f"{CHOICE_SPLIT} {CHOICE_METRIC}",
            "mean_over_models": scores.to_dict(),
            "by_model": by_model,
        },
        paths.layer_choice(args.backend),
    )


if __name__ == "__main__":
    main()
