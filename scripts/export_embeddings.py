"""Write a backend's matrix (data/embeddings/<backend>.npy) with its track ids as a precomputed file.

    python scripts/export_embeddings.py musicnn tsv data/precomputed/musicnn_tsv/vectors.tsv --shuffle 0

Formats: tsv / csv (column `id`, then one column per dimension), npy (the matrix, plus its
ids in `--ids`, column `id`), parquet (columns `id` and `vector`); docs/backends.md says how
to declare the file as a backend. Masked rows (tracks the extraction skipped) are left out,
so the file reads back to the same masked rows. `--shuffle SEED` writes the rows in a seeded
random order: reading it back must align every row to its track all the same.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from audiorec import paths
from audiorec.backends.precomputed import FORMATS, write
from audiorec.io import load_embeddings, masked_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend")
    parser.add_argument("format", choices=FORMATS)
    parser.add_argument("out", type=Path)
    parser.add_argument("--ids", type=Path, help="npy only: where to write the track ids (default: <out>.ids.csv)")
    parser.add_argument(
        "--shuffle", type=int, metavar="SEED", help="write the rows in a random order drawn with this seed"
    )
    args = parser.parse_args()
    tracks = pd.read_parquet(paths.TRACKS)
    matrix = load_embeddings(paths.embeddings(args.backend), tracks)
    rows = np.flatnonzero(~masked_rows(matrix))
    if args.shuffle is not None:
        rows = np.random.default_rng(args.shuffle).permutation(rows)
    ids_path = args.ids or args.out.with_suffix(".ids.csv")
    write(
        tracks["track_id"].to_numpy()[rows],
        matrix[rows],
        args.format,
        args.out,
        ids_path if args.format == "npy" else None,
    )


if __name__ == "__main__":
    main()
