"""Audio backends, registered by name.

A name in params.yaml `backends` is one of three kinds (docs/backends.md):
- built in: a module here and a line in REGISTRY (classes are imported on first use, see
  audiorec.registry); add a backend by adding its module here;
- a plugin: a class another installed package declares (audiorec.backends.plugins);
- precomputed: vectors read from a file, named by a section with `format`
  (audiorec.backends.precomputed).
"""

from __future__ import annotations

from audiorec import registry
from audiorec.backends import plugins
from audiorec.backends.base import AudioBackend, Backend, BackendUnavailable, ExtractionError
from audiorec.backends.engine import extract
from audiorec.settings.backends import SETTINGS
from audiorec.settings.base import check

REGISTRY: dict[str, str] = {
    "random": "audiorec.backends.random:RandomBackend",
    "mfcc": "audiorec.backends.mfcc:MFCCBackend",
    "musicnn": "audiorec.backends.musicnn:MusicnnBackend",
    # The musicnn package's other three checkpoints: the same class, each with its own section.
    "musicnn_mtt": "audiorec.backends.musicnn:MusicnnBackend",
    "vgg_msd": "audiorec.backends.musicnn:MusicnnBackend",
    "vgg_mtt": "audiorec.backends.musicnn:MusicnnBackend",
    "oracle": "audiorec.backends.oracle:OracleBackend",
    "none": "audiorec.backends.none:NoAudioBackend",  # the models without audio (params.yaml: baselines)
    "mert": "audiorec.backends.mert:MertBackend",
    "music2vec": "audiorec.backends.music2vec:Music2VecBackend",
    "encodecmae": "audiorec.backends.encodecmae:EncodecMAEBackend",
    "musicfm": "audiorec.backends.musicfm:MusicFMBackend",
    "jukebox": "audiorec.backends.jukebox:JukeboxBackend",
    "mule": "audiorec.backends.mule:MuleBackend",
    "muq": "audiorec.backends.muq:MuQBackend",
    "muq_mulan": "audiorec.backends.muq_mulan:MuQMuLanBackend",
}

BUILT_IN, PLUGIN, PRECOMPUTED = "built-in", "plugin", "precomputed"


def kind(name: str, section: dict | None = None) -> str | None:
    """Which kind of backend `name` is, given its params.yaml section (None: none of them)."""
    if name in REGISTRY:
        return BUILT_IN
    if name in plugins.discovered():
        return PLUGIN
    if isinstance(section, dict) and "format" in section:
        return PRECOMPUTED
    return None


def unknown(name: str) -> str:
    """What a name that is no backend could have been."""
    installed = sorted(plugins.discovered())
    return (
        f"registered: {', '.join(sorted(REGISTRY))}"
        + (f"; installed plugins: {', '.join(installed)}" if installed else "")
        + f"; or vectors from a file: a section `{name}:` with format, file and dim (docs/backends.md)"
    )


def create(name: str, **params) -> Backend:
    """Build a backend from its `params.yaml` section; a built-in one's section is checked by its
    settings class first (every key present, each value allowed), and the constructor has no
    defaults of its own: params.yaml holds the values."""
    found = kind(name, params)
    if found == PLUGIN:
        return plugins.create(name, **params)
    if found == PRECOMPUTED:
        from audiorec.backends.precomputed import PrecomputedBackend

        return PrecomputedBackend(name, **params)
    if found is None:
        raise KeyError(f"unknown backend {name!r} (params.yaml: backends); {unknown(name)}")
    if name in SETTINGS:
        params = check(registry.load(SETTINGS[name]), params, name).model_dump()
    return registry.create(REGISTRY, name, "backend", **params)


__all__ = [
    "REGISTRY",
    "SETTINGS",
    "AudioBackend",
    "Backend",
    "BackendUnavailable",
    "ExtractionError",
    "create",
    "extract",
    "kind",
]
