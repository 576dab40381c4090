"""params.yaml's top-level lists: which runs the grid holds (audiorec.workflow.grid), and which
settings the models run with."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from audiorec.settings.base import NonNegativeInt, Section


class LayerSweepSettings(Section):
    """Which backends' stored layers each get the models' runs (docs/backends.md "Layers")."""

    backends: list[str]
    """Backends of `backends` whose stored layers (`<backend>.layers`) are swept; one extraction serves them all."""
    models: list[str]
    """Models of `models` run on each stored layer, once per seed; `layer: best` is the layer with the highest
    val NDCG@50 averaged over them."""


class GridSettings(Section):
    """The keys that decide the stages of dvc.yaml, set with `python -m stages.graph -S` (docs/pipeline.md)."""

    backends: list[str]
    """The backends of the grid: built-in names, plugins and precomputed files side by side
    ([Backends](backends.md)); `none`, the models without audio's zero-width matrix, is added by itself and
    cannot be listed."""
    models: list[str]
    """Recommenders on each backend's embeddings; whether a model trains from a seed, and whether it reads
    ELSA's item factors (`bimodal`, which then needs `elsa` in `baselines`), is declared in
    `audiorec.models.KINDS` ([Add a model](add-a-model.md))."""
    baselines: list[str]
    """Models without audio (backend `none`), the reference points; `bert4rec` here runs on a learned item table
    (the study's "random" BERT4Rec)."""
    leave_out: list[str]
    """`<backend>-<model>` pairs of the grid not to run (every seed of them), e.g. `mfcc-bert4rec`: the grid
    is `backends` × `models` less these. A pair the grid does not hold leaves nothing out. The default leaves
    out BERT4Rec on `random` and `mfcc` to keep `make repro` within 10 minutes; `-S 'leave_out=[]'` runs the
    whole grid ([Pipeline](pipeline.md#the-grid-and-the-generated-dvcyaml))."""
    seeds: Annotated[list[NonNegativeInt], Field(min_length=1)]
    """Each run of a model that trains from a seed, once per seed; `[0, 1, 2]` is the journal's three runs
    ([DVC workflows](workflows.md#seeds-repeated-runs)). A model without randomness runs once."""
    layer_sweep: LayerSweepSettings
    """Every stored layer of some backends under some models: the layer table (`metrics/tables/layers.csv`) and
    the choice of `layer: best`."""
    model_settings: Literal["demo", "study"]
    """`demo`: the model sections of this page; `study`: each model as `split.protocol`'s original code ran it,
    from the `study` section."""
