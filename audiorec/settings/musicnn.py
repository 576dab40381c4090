"""params.yaml `musicnn` (and `musicnn_mtt`, `vgg_msd`, `vgg_mtt`): the MusiCNN backend (audiorec.backends.musicnn)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import model_validator

from audiorec.settings.layers import ALL, BEST, LayeredSettings, in_network_order

# The layers `musicnn.models.define_model` returns after the logits, in its order, per architecture
# (audiorec.backends.musicnn builds its graph from these).
MusicnnLayer = Literal["timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool", "penultimate"]
VggLayer = Literal["pool1", "pool2", "pool3", "pool4", "pool5"]


def layers_of(model: str) -> tuple[str, ...]:
    """The layers of a checkpoint's network: the VGG's for `*_vgg`, musicnn's otherwise."""
    return get_args(VggLayer) if model.endswith("_vgg") else get_args(MusicnnLayer)


class MusicnnSettings(LayeredSettings):
    """MusiCNN or its VGG baseline through a checkpoint shipped in the `musicnn` package, averaged over 3 s
    patches."""

    model: Literal["MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"]
    """The checkpoint shipped in the `musicnn` package: the musicnn or the VGG architecture (`*_musicnn`,
    `*_vgg`), trained on the Million Song Dataset's tags (`MSD_*`) or MagnaTagATune's (`MTT_*`)."""
    layer: Literal[MusicnnLayer, VggLayer, "best"]
    """The layer of the main tables, averaged over 3 s patches. musicnn: its front-end's `timbral` and `temporal`
    maps and its mid-end's `cnn1`-`cnn3` (averaged over time), or the per-patch vectors `mean_pool`, `max_pool`,
    `penultimate` (the study's). VGG: its pooling blocks `pool1`-`pool5` (averaged over time and frequency).
    `best`: the stored layer with the highest val NDCG@50 in the layer sweep (`layer_sweep`)."""
    layers: list[Literal[MusicnnLayer, VggLayer]] | Literal["all"]
    """The layers the same extraction also stores, one matrix each in `data/layers/<backend>/`, for a layer
    sweep: `all`, a list, or `[]` (none)."""

    def stored_layers(self) -> list[str]:
        return in_network_order(self.layers, layers_of(self.model))

    def main_layer(self) -> str | None:
        return None if self.layer == BEST else self.layer

    @model_validator(mode="after")
    def _layers_of_the_architecture(self) -> "MusicnnSettings":
        layers = layers_of(self.model)
        named = [self.layer] if self.layer != BEST else []
        for layer in named + ([] if self.layers == ALL else list(self.layers)):
            if layer not in layers:
                raise ValueError(f"layer {layer!r} is not a layer of {self.model}; choose one of {', '.join(layers)}")
        return self
