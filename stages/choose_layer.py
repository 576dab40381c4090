"""choose_layer@<backend>: with `<backend>.layer: best`, the stored layer with the highest val NDCG@50 in the
layer sweep becomes the backend's matrix, data/embeddings/<backend>.npy, which the main grid's runs read.
metrics/layers/<backend>.json says which layer, and every layer's figures it was chosen on."""

import argparse

import numpy as np

from audiorec import paths
from audiorec.evaluation.layers import choice_record, read_sweep
from audiorec.io import write_json
from audiorec.params import read_params, setup_logging
from audiorec.workflow import grid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True)
    args = parser.parse_args()
    setup_logging()
    params = read_params()
    sweep = read_sweep(grid.sweep_run_names(params, args.backend))
    record = choice_record(sweep, grid.stored_layers(params, args.backend))
    paths.EMBEDDINGS.mkdir(parents=True, exist_ok=True)
    # The main matrix stays float32 whatever extract.layer_dtype stored.
    chosen = np.load(paths.embeddings(f"{args.backend}{paths.LAYER_MARK}{record['chosen']}"))
    np.save(paths.embeddings(args.backend), chosen.astype(np.float32))
    write_json(record, paths.layer_choice(args.backend))


if __name__ == "__main__":
    main()
