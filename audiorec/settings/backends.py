"""Which class checks each built-in backend's params.yaml section, and the layers a section stores.

Here, not in audiorec.backends, so that the grid (audiorec.workflow.grid) reads a backend's stored
layers without importing the backends' extraction code.
"""

from __future__ import annotations

from audiorec.registry import load
from audiorec.settings.base import check
from audiorec.settings.layers import LayeredSettings

# The class of each built-in backend's params.yaml section ("module:Class", audiorec/settings/);
# `none` reads no section.
SETTINGS: dict[str, str] = {
    "random": "audiorec.settings.random:RandomSettings",
    "mfcc": "audiorec.settings.mfcc:MFCCSettings",
    "musicnn": "audiorec.settings.musicnn:MusicnnSettings",
    "musicnn_mtt": "audiorec.settings.musicnn:MusicnnSettings",
    "vgg_msd": "audiorec.settings.musicnn:MusicnnSettings",
    "vgg_mtt": "audiorec.settings.musicnn:MusicnnSettings",
    "oracle": "audiorec.settings.oracle:OracleSettings",
    "mert": "audiorec.settings.mert:MertSettings",
    "music2vec": "audiorec.settings.music2vec:Music2VecSettings",
    "encodecmae": "audiorec.settings.encodecmae:EncodecMAESettings",
    "musicfm": "audiorec.settings.musicfm:MusicFMSettings",
    "jukebox": "audiorec.settings.jukebox:JukeboxSettings",
    "mule": "audiorec.settings.mule:MuleSettings",
    "muq": "audiorec.settings.muq:MuQSettings",
    "muq_mulan": "audiorec.settings.muq_mulan:MuQMuLanSettings",
}


def layered(name: str, section: object) -> LayeredSettings | None:
    """`name`'s section, checked, when it is a built-in backend whose network has layers to store; else None."""
    if name not in SETTINGS or not isinstance(section, dict):
        return None
    checked = check(load(SETTINGS[name]), section, name)
    return checked if isinstance(checked, LayeredSettings) else None
