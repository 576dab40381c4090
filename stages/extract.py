"""extract@<backend>: audio -> data/embeddings/<backend>.npy aligned with tracks.parquet; for a backend that
stores layers (its `layers`), each stored layer to data/layers/<backend>/<layer>.npy from the same forward passes.

With extract.on_error: skip, tracks that cannot be embedded get a NaN row and are
listed, with the reason, under `skipped` in metrics/extract/<backend>.json. The wall
time goes to timings/extract/<backend>.json, which neither git nor DVC tracks: it changes on
every run, and a repro on unchanged inputs must leave both clean.

Runs as one process (`dvc repro`) or under torchrun, one process per GPU
(`torchrun --nproc_per_node 4 -m stages.extract --backend mert`): rank 0 writes the outputs.
Finished shards wait in data/resume/extract/<backend>/ until the outputs are written,
so a killed run continues where it stopped."""

import argparse
import shutil

import numpy as np
import pandas as pd

from audiorec import backends, paths
from audiorec.backends.layers import write_layers
from audiorec.params import read_params, setup_logging
from audiorec.io import write_json


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True)
    args = parser.parse_args()
    setup_logging()
    params = read_params()
    backend_params = params.get(args.backend, {})
    backend = backends.create(args.backend, **backend_params)
    tracks = pd.read_parquet(paths.TRACKS)
    settings = params["extract"]
    resume = paths.extraction_resume(args.backend)
    result = backends.extract(
        backend,
        tracks,
        max_seconds=settings["max_seconds"],
        batch_size=settings["batch_size"],
        on_error=settings["on_error"],
        device=settings["device"],
        dtype=settings["dtype"],
        workers=settings["workers"],
        shard_batches=settings["shard_batches"],
        resume_root=resume if settings["resume"] else None,
        identity=backend_params,
    )
    if result is None:  # another torchrun rank: rank 0 gathered the shards and writes the outputs
        return
    embeddings, stats, skipped = result
    if backend.layer_dims:
        stats["layers"] = write_layers(args.backend, backend, embeddings, backend_params, settings["layer_dtype"])
    else:
        paths.EMBEDDINGS.mkdir(parents=True, exist_ok=True)
        np.save(paths.embeddings(args.backend), embeddings)
    timing = stats.pop("timing")
    write_json({**stats, "skipped": skipped}, paths.extraction_stats(args.backend))
    write_json(timing, paths.extraction_timing(args.backend))
    shutil.rmtree(resume, ignore_errors=True)  # the outputs hold everything now


if __name__ == "__main__":
    main()
