"""Storing every layer against reading one: musicnn's extraction with `layers: all` vs `layers: []`.

Both extract the same clips through the real engine (`backends.extract`) in this run, alternating, after one
warm-up each; the ratio of their median wall times is the cost of storing every layer (target: at most 1.2).
Audio: `--tracks` synthetic clips of the default dataset's generator, `--seconds` long. Also prints what the
stored layers of a MERT-330M-size model weigh at Music4All's size, in each `extract.layer_dtype`. Usage:
python benchmarks/layer_extract_speed.py [--tracks 96] [--seconds 3] [--repeats 3] [--checkpoint MSD_musicnn]
"""

from __future__ import annotations

import argparse
import os
import statistics
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
from audiorec.settings.musicnn import layers_of

# MERT-v1-330M: 25 hidden states of 1,024 floats; Music4All-Onion's catalogue.
MERT_STATES, MERT_WIDTH, MUSIC4ALL_TRACKS = 25, 1024, 56_512


def clips(n_tracks: int, seconds: float, folder: Path) -> pd.DataFrame:
    """`n_tracks` WAV clips of the default dataset's generator, as a tracks table."""
    config = SyntheticConfig(**{**read_params()["synthetic"]["small"], "n_tracks": n_tracks, "clip_seconds": seconds})
    styles = sample_styles(np.random.default_rng(0), config)
    paths = []
    for style in styles.to_dict("records"):
        path = folder / f"{style['track_id']}.wav"
        sf.write(path, synthesise(style, seconds, 16000), 16000)
        paths.append(str(path))
    return pd.DataFrame({"track_id": styles["track_id"], "audio_path": paths})


def timed(backend: backends.Backend, tracks: pd.DataFrame) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    embeddings, _, _ = backends.extract(backend, tracks, batch_size=32, device="cpu")
    return time.perf_counter() - started, embeddings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracks", type=int, default=96)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--checkpoint", default="MSD_musicnn", choices=["MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"]
    )
    args = parser.parse_args()
    main_layer = layers_of(args.checkpoint)[-1]
    one = backends.create("musicnn", model=args.checkpoint, layer=main_layer, layers=[])
    every = backends.create("musicnn", model=args.checkpoint, layer=main_layer, layers="all")
    with tempfile.TemporaryDirectory() as scratch:
        tracks = clips(args.tracks, args.seconds, Path(scratch))
        seconds: dict[str, list[float]] = {"one layer": [], "every layer": []}
        for repeat in range(args.repeats + 1):  # the first pass of each warms up and is not counted
            for name, backend in (("one layer", one), ("every layer", every)):
                wall, embeddings = timed(backend, tracks)
                if repeat:
                    seconds[name].append(wall)
    medians = {name: statistics.median(walls) for name, walls in seconds.items()}
    print(f"{args.checkpoint}, {args.tracks} tracks x {args.seconds:g} s, median of {args.repeats} runs each")
    for name, median in medians.items():
        print(f"  {name:12s}: {median:6.2f} s ({args.tracks / median:5.1f} tracks/s)")
    print(f"  stored layers: {', '.join(f'{layer} {dim}' for layer, dim in every.layer_dims.items())}")
    print(f"  ratio every / one: {medians['every layer'] / medians['one layer']:.2f} (target <= 1.2)")
    print(f"  every layer's matrix: {embeddings.shape[1]} floats per track")
    for dtype, size in (("float32", 4), ("float16", 2)):
        gigabytes = MERT_STATES * MERT_WIDTH * MUSIC4ALL_TRACKS * size / 1e9
        print(f"MERT-330M-size stored layers for {MUSIC4ALL_TRACKS:,} tracks in {dtype}: {gigabytes:.1f} GB on disk")
    print(
        "  the extract stage holds every layer side by side in float32 while it runs: "
        f"{MERT_STATES * MERT_WIDTH * MUSIC4ALL_TRACKS * 4 / 1e9:.1f} GB of memory at that size"
    )


if __name__ == "__main__":
    main()
