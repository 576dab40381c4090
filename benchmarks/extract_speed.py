"""Batched vs one-track-at-a-time extraction with a base-size HuBERT (random weights).

A randomly initialised `HubertConfig()` (the base architecture, about 94M parameters)
is saved to a temp folder and loaded through the `mert` backend's real path (the
generic transformers backend), then the same tracks are extracted twice in this run:
`extract.batch_size` 1 and `--batch-size` (32), each after one warm-up pass. Audio:
the first `--tracks` clips of the `small` dataset (`data/raw/audios`, after
`dvc pull` or `dvc repro dataset`), or synthetic 3 s clips of that dataset's
generator when it is absent. Usage:
python benchmarks/extract_speed.py [--tracks 96] [--batch-size 32] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd
import soundfile as sf
import yaml

from audiorec import backends
from audiorec.data.synthetic import SyntheticConfig, sample_styles, synthesise
from audiorec.params import read_params

SMALL_AUDIO = Path("data/raw/audios")


def small_dataset() -> dict:
    """params.yaml `synthetic.small`: the default dataset's generator settings (the styles' draw reads them)."""
    return read_params()["synthetic"]["small"]


def audio_paths(n_tracks: int, scratch: Path) -> list[str]:
    if SMALL_AUDIO.is_dir():
        found = sorted(str(p) for p in SMALL_AUDIO.glob("*.mp3"))[:n_tracks]
        if len(found) == n_tracks:
            return found
    styles = sample_styles(
        np.random.default_rng(0), SyntheticConfig(**{**small_dataset(), "n_tracks": n_tracks, "clip_seconds": 3})
    )
    paths = []
    for style in styles.to_dict("records"):
        path = scratch / f"{style['track_id']}.mp3"
        sf.write(path, synthesise(style, 3, 22050), 22050, format="MP3")
        paths.append(str(path))
    return paths


def timed(backend, tracks: pd.DataFrame, batch_size: int, device: str) -> tuple[float, np.ndarray]:
    backends.extract(backend, tracks.head(batch_size), batch_size=batch_size, device=device)  # warm-up
    started = time.perf_counter()
    embeddings, _, _ = backends.extract(backend, tracks, batch_size=batch_size, device=device, workers=2)
    return time.perf_counter() - started, embeddings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracks", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    with tempfile.TemporaryDirectory() as scratch:
        torch.manual_seed(0)
        model = HubertModel(HubertConfig())
        n_params = sum(p.numel() for p in model.parameters())
        model.save_pretrained(scratch)
        Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(scratch)
        # params.yaml's mert section (layer, pooling, ...) on the random model, at its 16 kHz.
        with open("params.yaml") as handle:
            section = yaml.safe_load(handle)["mert"]
        backend = backends.create("mert", **{**section, "model": scratch, "sample_rate": 16000})
        paths = audio_paths(args.tracks, Path(scratch))
        tracks = pd.DataFrame({"track_id": [Path(p).stem for p in paths], "audio_path": paths})
        single_seconds, single = timed(backend, tracks, 1, args.device)
        batched_seconds, batched = timed(backend, tracks, args.batch_size, args.device)

    device = (
        torch.cuda.get_device_name() if backend.device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    )
    source = "small dataset" if str(SMALL_AUDIO) in paths[0] else "synthetic"
    print(f"model          : random HuBERT base, {n_params / 1e6:.1f}M parameters, {device}")
    print(f"tracks         : {len(tracks)} x {sf.info(paths[0]).duration:.1f} s MP3 ({source})")
    print(f"one at a time  : {len(tracks) / single_seconds:.2f} tracks/s ({single_seconds:.1f} s)")
    print(f"batch of {args.batch_size:<6}: {len(tracks) / batched_seconds:.2f} tracks/s ({batched_seconds:.1f} s)")
    print(f"speed-up       : {single_seconds / batched_seconds:.2f}x")
    print(f"max |batched - single| : {np.abs(batched - single).max():.2e}")


if __name__ == "__main__":
    main()
