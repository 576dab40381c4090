"""The study's run list: every (backend, model, seed, control) params.yaml asks for, one place.

params.yaml says it in lists (`backends`, `models`, `baselines`, `seeds`, `controls`); which
runs they make follows from what each model is (audiorec.models.KINDS: whether it trains from
a seed, whether it reads ELSA's item factors). dvc.yaml's train and evaluate stages are one item
per run of this list (audiorec.workflow.graph), and so are the report's rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from audiorec import paths
from audiorec.controls import control_name
from audiorec.models import KINDS
from audiorec.settings.backends import layered


@dataclass(frozen=True)
class Run:
    """One trained and evaluated run. `backend` is the embedding matrix it reads
    (data/embeddings/<backend>.npy; `none` for the models without audio); a control reads
    its backend's matrix and is filed under the control's name (oracle_shuffled)."""

    backend: str
    model: str
    seed: int | None = None
    control: str | None = None  # None | "shuffled" | "unordered" (audiorec.controls.KINDS)
    shuffle_seed: int | None = None  # the shuffled control's permutation (params.yaml: controls.seed)

    @property
    def folder(self) -> str:
        """Where its outputs are filed: the backend (a stored layer's folder for `<backend>@<layer>`), or its
        control's name."""
        base = paths.folder(self.backend)
        return control_name(base, self.control) if self.control else base

    @property
    def label(self) -> str:
        """Its name in tables: the backend as params.yaml names it, or its control's name."""
        return control_name(self.backend, self.control) if self.control else self.backend

    @property
    def layer(self) -> str | None:
        """The stored layer it reads (`<backend>@<layer>`), or None for a backend's main matrix."""
        return self.backend.partition(paths.LAYER_MARK)[2] or None

    @property
    def run_name(self) -> str:
        return paths.run_name(self.model, self.seed)

    @property
    def name(self) -> str:
        """The stage item: train@<name>, evaluate@<name> (oracle-shallow-0, none-mostpop)."""
        # DVC reads `@` in a stage name as the start of the item key: a layer goes by `<backend>.<layer>`.
        label = self.label.replace(paths.LAYER_MARK, ".")
        return "-".join([label, self.model] + ([] if self.seed is None else [str(self.seed)]))

    @property
    def reads_elsa(self) -> bool:
        return KINDS[self.model].reads_elsa

    @property
    def train_args(self) -> str:
        """What `python -m stages.train` takes beyond --backend and --model."""
        args = [] if self.seed is None else [f"--seed {self.seed}"]
        if self.control == "shuffled":
            args.append(f"--shuffle-seed {self.shuffle_seed}")
        elif self.control == "unordered":
            args.append("--unordered")
        return "".join(f" {arg}" for arg in args)

    @property
    def seed_args(self) -> str:
        return "" if self.seed is None else f" --seed {self.seed}"


def seeds_of(model: str, seeds: list[int]) -> list[int | None]:
    """A model without randomness runs once whatever `seeds` says."""
    return list(seeds) if KINDS[model].seeded else [None]


def model_runs(backends: list[str], models: list[str], seeds: list[int], **control) -> list[Run]:
    return [
        Run(backend, model, seed, **control)
        for model in models
        for backend in backends
        for seed in seeds_of(model, seeds)
    ]


def runs(params: dict) -> list[Run]:
    """Every run params.yaml asks for, in the report's order: the audio models on each backend,
    the models without audio, then the controls."""
    seeds, controls = params["seeds"], params["controls"]
    left_out = set(params["leave_out"])
    audio_runs = model_runs(params["backends"], params["models"], seeds)
    every = [
        *[run for run in audio_runs if f"{run.backend}-{run.model}" not in left_out],
        *model_runs([paths.NO_BACKEND], params["baselines"], seeds),
        *model_runs(controls["shuffle"], controls["models"], seeds, control="shuffled", shuffle_seed=controls["seed"]),
        *model_runs(controls["unordered"], ["bert4rec"], seeds, control="unordered"),
        *sweep_runs(params),
    ]
    return list(dict.fromkeys(every))  # a layer both listed in backends and swept runs once


def sweep_runs(params: dict) -> list[Run]:
    """The layer sweep: each stored layer of `layer_sweep.backends` under each of `layer_sweep.models`, but for a
    backend's main layer (its `layer`), whose runs the main grid has already (the same matrix, model and seed)."""
    return [run for run in layer_runs(params) if main_run(params, run) is None]


def layer_runs(params: dict) -> list[Run]:
    """Each stored layer of the swept backends under each swept model, once per seed."""
    return [
        run
        for backend in swept_backends(params)
        for run in model_runs(
            [f"{backend}{paths.LAYER_MARK}{layer}" for layer in stored_layers(params, backend)],
            [model for model in params["layer_sweep"]["models"] if model in params["models"]],
            params["seeds"],
        )
    ]


def main_run(params: dict, run: Run) -> Run | None:
    """The main grid's run that reads what the sweep's `run` would: its backend's main layer under the same model
    and seed, unless leave_out drops that pair (then the sweep runs it)."""
    backend, _, layer = run.backend.partition(paths.LAYER_MARK)
    section = layered(backend, params.get(backend))
    if section is None or section.main_layer() != layer or f"{backend}-{run.model}" in params["leave_out"]:
        return None
    return Run(backend, run.model, run.seed)


def swept_backends(params: dict) -> list[str]:
    """`layer_sweep.backends` that the grid holds (as leave_out, a name the grid does not hold does nothing)."""
    return [backend for backend in params["layer_sweep"]["backends"] if backend in params["backends"]]


def stored_layers(params: dict, backend: str) -> list[str]:
    """The layers one extraction of `backend` stores (`<backend>.layers`); none for a backend without layers."""
    section = layered(backend, params.get(backend))
    return section.stored_layers() if section is not None else []


def choosing_backends(params: dict) -> list[str]:
    """The backends whose main matrix is the layer the sweep chose on validation (`layer: best`)."""
    return [
        backend
        for backend in extracted_backends(params)
        if (section := layered(backend, params.get(backend))) is not None and section.main_layer() is None
    ]


def extracted_backends(params: dict) -> list[str]:
    """Each backend params.yaml lists, once: `<backend>@<layer>` is a layer of `<backend>`'s extraction."""
    return list(dict.fromkeys(name.partition(paths.LAYER_MARK)[0] for name in params["backends"]))


def embedding_backends(params: dict) -> list[str]:
    """The backends extracted: params.yaml's, and `none` (a zero-width matrix) when a model runs without audio."""
    return extracted_backends(params) + ([paths.NO_BACKEND] if params["baselines"] else [])


def sweep_run_names(params: dict, backend: str) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """The sweep's runs of `backend`: (layer, model) -> the (folder, run name) of each, one per seed, in the
    network's order; the main layer's are the main grid's runs."""
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for run in layer_runs(params):
        name, _, layer = run.backend.partition(paths.LAYER_MARK)
        if name == backend:
            source = main_run(params, run) or run
            found.setdefault((layer, run.model), []).append((source.folder, source.run_name))
    return found
