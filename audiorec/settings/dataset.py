"""params.yaml `dataset`: where the listening log and the audio come from."""

from __future__ import annotations

from typing import Literal

from audiorec.settings.base import NonNegativeInt, PositiveFloat, Section


class DatasetSettings(Section):
    """The dataset the study runs on: the built-in synthetic one or a Music4All copy."""

    source: Literal["synthetic", "music4all"]
    """`synthetic`: the built-in dataset; `music4all`: a Music4All copy at `audio_dir` and `listening_log`
    (docs/data.md)."""
    size: str
    """The synthetic size, a section of `synthetic`: `small` (the default study) or `tiny` (the tests and CI)."""
    seed: NonNegativeInt
    """The synthetic generator's seed: the same seed gives a byte-identical log and identical audio."""
    audio_dir: str
    """With `source: music4all`: the folder of `<track_id>.mp3` files."""
    listening_log: str
    """With `source: music4all`: Music4All-Onion's tab-separated log (`user_id`, `track_id`, `timestamp`)."""
    chunk_mb: PositiveFloat
    """The log is read in blocks of this many MB, so a 250M-row log fits in memory."""
    on_bad_row: Literal["fail", "skip"]
    """A malformed log line: `fail` stops and names it; `skip` drops it and counts it per reason in
    `metrics/dataset.json`."""
