"""extract@<backend>: audio -> data/embeddings/<backend>.npy aligned with tracks.parquet.

With extract.on_error: skip, tracks that cannot be embedded get a NaN row and are
listed, with the reason, under `skipped` in metrics/extract/<backend>.json."""
import argparse

import numpy as np
import pandas as pd

from audiorec import backends, paths
from audiorec.config import load_params, setup_logging
from audiorec.io import write_json


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True)
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    backend = backends.create(args.backend, **params.get(args.backend, {}))
    tracks = pd.read_parquet(paths.TRACKS)
    settings = params["extract"]
    embeddings, stats, skipped = backends.extract(
        backend, tracks, max_seconds=settings["max_seconds"], batch_size=settings["batch_size"], on_error=settings["on_error"]
    )
    paths.EMBEDDINGS.mkdir(parents=True, exist_ok=True)
    np.save(paths.embeddings(args.backend), embeddings)
    write_json({**stats, "skipped": skipped}, paths.extraction_stats(args.backend))


if __name__ == "__main__":
    main()
