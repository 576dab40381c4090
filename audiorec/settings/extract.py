"""params.yaml `extract`: how every backend's extraction runs."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import PositiveFloat, PositiveInt, Section


class ExtractSettings(Section):
    """How the extract stage turns each track's audio into a vector, whatever the backend."""

    max_seconds: PositiveFloat
    """Each clip is cropped to its first this many seconds (Music4All's clips are 30 s)."""
    batch_size: PositiveInt
    """Tracks per forward pass of an audio model."""
    on_error: Literal["fail", "skip"]
    """A file that cannot be decoded: `fail` stops and names it; `skip` gives it a NaN row and lists it in
    `metrics/extract/<backend>.json`."""
    device: Literal["auto", "cuda", "cpu"]
    """`auto` (CUDA when torch sees a GPU; under torchrun the rank's own GPU), `cuda` or `cpu`."""
    dtype: Literal["float32", "float16", "bfloat16"]
    """`float32`, or `float16` / `bfloat16` on CUDA only."""
    workers: PositiveInt
    """Threads decoding audio ahead of the model."""
    shard_batches: PositiveInt
    """Batches per shard: the unit written to `data/resume/` and spread over torchrun ranks (docs/scale.md)."""
    resume: bool
    """A killed extraction continues from its finished shards."""
    layer_dtype: Literal["float32", "float16"]
    """The files of the stored layers (`data/layers/<backend>/`, a backend's `layers`): `float16` halves them
    (MERT-330M's 25 layers for Music4All's 56,512 tracks: 5.8 GB in float32). The main matrix stays float32."""
