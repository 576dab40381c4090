"""What a backend that can keep several layers shares (musicnn's four checkpoints, the Hugging Face
encoders, MuQ, MusicFM, Jukebox): which layers one extraction stores for a layer sweep, and which one the
main tables read.

A layer is named by a string: musicnn's tensor names (`max_pool`), a `hidden_states` index for the
encoders (`12`), a layer number of Jukebox's prior (`36`). The grid addresses one as `<backend>@<layer>`
(audiorec.workflow.grid).
"""

from __future__ import annotations

from typing import Annotated, Literal, Sequence

from pydantic import Field, model_validator

from audiorec.settings.base import Section

# `layer: best`: the stored layer with the highest val NDCG@50 in the layer sweep (docs/backends.md).
BEST = "best"
ALL = "all"


class LayeredSettings(Section):
    """A backend section whose network has several layers worth reading."""

    def stored_layers(self) -> list[str]:
        """The layers one extraction stores in data/layers/<backend>/, in the network's order."""
        raise NotImplementedError

    def main_layer(self) -> str | None:
        """The layer data/embeddings/<backend>.npy holds, named as stored; None for `best`."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _best_needs_stored_layers(self) -> "LayeredSettings":
        if self.main_layer() is None and not self.stored_layers():
            raise ValueError("layer: best chooses among the stored layers; list them under `layers` (or `all`)")
        return self


def in_network_order(chosen: Sequence[str] | str, network: tuple[str, ...]) -> list[str]:
    """`chosen` layer names (or `all`) in the network's order, each once."""
    return list(network) if chosen == ALL else [layer for layer in network if layer in chosen]


class NumberedLayersSettings(LayeredSettings):
    """A network whose layers are numbered: `layer` (or `best`) and the stored `layers` are numbers."""

    layer: int | Literal["best"]
    layers: list[int]

    def stored_layers(self) -> list[str]:
        return [str(number) for number in sorted(set(self.layers))]

    def main_layer(self) -> str | None:
        return None if self.layer == BEST else str(self.layer)


class HiddenStatesSettings(NumberedLayersSettings):
    """An encoder's `hidden_states` (the Hugging Face encoders, MuQ's and MusicFM's conformers): entry 0 the input
    embeddings (the convolutional features), then one per transformer layer."""

    layer: int | Literal["best"]
    """The `hidden_states` index of the main tables: 0 the CNN features, -1 the last layer; `best`: the stored
    layer with the highest val NDCG@50 in the layer sweep (`layer_sweep`)."""
    layers: list[Annotated[int, Field(ge=0)]]
    """The `hidden_states` indices the same extraction also stores, one matrix each in `data/layers/<backend>/`,
    for a layer sweep (MERT-330M: 0 to 24; MuQ-large and MusicFM: 0 to 12), or `[]` (none)."""
