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
        """Where its outputs are filed: the backend, or its control's name."""
        return control_name(self.backend, self.control) if self.control else self.backend

    @property
    def run_name(self) -> str:
        return paths.run_name(self.model, self.seed)

    @property
    def name(self) -> str:
        """The stage item: train@<name>, evaluate@<name> (oracle-shallow-0, none-mostpop)."""
        return "-".join([self.folder, self.model] + ([] if self.seed is None else [str(self.seed)]))

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
    return [
        *[run for run in audio_runs if f"{run.backend}-{run.model}" not in left_out],
        *model_runs([paths.NO_BACKEND], params["baselines"], seeds),
        *model_runs(controls["shuffle"], controls["models"], seeds, control="shuffled", shuffle_seed=controls["seed"]),
        *model_runs(controls["unordered"], ["bert4rec"], seeds, control="unordered"),
    ]


def embedding_backends(params: dict) -> list[str]:
    """The backends extracted: params.yaml's, and `none` (a zero-width matrix) when a model runs without audio."""
    return list(params["backends"]) + ([paths.NO_BACKEND] if params["baselines"] else [])
