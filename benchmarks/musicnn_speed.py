"""musicnn: this repo's build-once batched path vs `musicnn.extractor.extractor` per file.

Both read the same MP3 clips from disk and produce the `penultimate` mean;
the ratio is measured in the same run. The tests check that the two agree
where the library is correct (tests/test_musicnn.py). Usage:
python benchmarks/musicnn_speed.py [--tracks 20] [--seconds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import soundfile as sf

from audiorec import backends
from audiorec.data.synthetic import SyntheticConfig, sample_styles, synthesise
from audiorec.params import read_params


def small_dataset() -> dict:
    """params.yaml `synthetic.small`: the default dataset's generator settings (the styles' draw reads them)."""
    return read_params()["synthetic"]["small"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracks", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3)
    args = parser.parse_args()
    styles = sample_styles(
        np.random.default_rng(0),
        SyntheticConfig(**{**small_dataset(), "n_tracks": args.tracks, "clip_seconds": args.seconds}),
    )
    with tempfile.TemporaryDirectory() as scratch:
        paths = []
        for style in styles.to_dict("records"):
            path = Path(scratch) / f"{style['track_id']}.mp3"
            sf.write(path, synthesise(style, args.seconds, 22050), 22050, format="MP3")
            paths.append(str(path))

        from musicnn.extractor import extractor

        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the library prints per call
            library = [
                extractor(p, model="MSD_musicnn", extract_features=True)[2]["penultimate"].mean(axis=0) for p in paths
            ]
        library_seconds = time.perf_counter() - started

        started = time.perf_counter()
        backend = backends.create("musicnn", model="MSD_musicnn", layer="penultimate", layers=[])
        fast, _, _ = backends.extract(backend, pd.DataFrame({"track_id": styles["track_id"], "audio_path": paths}))
        fast_seconds = time.perf_counter() - started

    # The library's float16 spectrogram overflows on loud clips and then gives every such
    # track the same vector (see audiorec/backends/musicnn.py), so compare diversity, not values.
    distinct_library = len(np.unique(np.round(np.stack(library), 4), axis=0))
    distinct_fast = len(np.unique(np.round(fast, 4), axis=0))
    print(f"tracks: {args.tracks} x {args.seconds:.0f} s MP3")
    print(
        f"musicnn.extractor per file : {library_seconds / args.tracks:.3f} s/track "
        f"({args.tracks / library_seconds:.2f} tracks/s)"
    )
    print(
        f"audiorec musicnn backend   : {fast_seconds / args.tracks:.3f} s/track "
        f"({args.tracks / fast_seconds:.2f} tracks/s, graph build included)"
    )
    print(f"speed-up                   : {library_seconds / fast_seconds:.1f}x (target >= 3x)")
    print(
        f"distinct track vectors     : library {distinct_library}/{args.tracks}, audiorec {distinct_fast}/{args.tracks}"
    )


if __name__ == "__main__":
    main()
