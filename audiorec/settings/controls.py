"""params.yaml `controls`: the control runs of the grid (docs/evaluation.md "Controls").

That each name is in `backends` or `models` is checked by audiorec.config, which sees those lists.
"""

from __future__ import annotations

from audiorec.settings.base import NonNegativeInt, Section


class ControlsSettings(Section):
    """The shuffled-embedding and unordered-sequence controls: which backends and models run them."""

    shuffle: list[str]
    """Backends (each in `backends`) whose rows are also permuted across tracks for the shuffled-embedding
    control (docs/evaluation.md)."""
    models: list[str]
    """The models (each in `models`) that run the shuffled control, each once per seed if it trains from one;
    `bimodal` here needs `elsa` in `baselines`."""
    unordered: list[str]
    """Backends (each in `backends`) on which BERT4Rec also trains on each user's tracks in random order (needs
    `bert4rec` in `models`)."""
    seed: NonNegativeInt
    """The permutation's seed, the same for every training seed."""
