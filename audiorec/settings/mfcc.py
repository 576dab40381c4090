"""params.yaml `mfcc`: the MFCC-statistics backend (audiorec.backends.mfcc)."""

from __future__ import annotations

from audiorec.settings.base import PositiveInt, Section


class MFCCSettings(Section):
    """MFCC statistics, the hand-crafted timbre baseline: mean and deviation of the coefficients and their deltas."""

    n_mfcc: PositiveInt
    """MFCCs per frame; 4 statistics × 26 = 104 dims, the size of Music4All-Onion's MFCC vector."""
    sample_rate: PositiveInt
    """The rate the audio is resampled to."""
