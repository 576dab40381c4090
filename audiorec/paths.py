"""Where each stage reads and writes, relative to the repository root (as in dvc.yaml).

The `model` of the per-run paths is a run name (run_name): the model, and for a trained
model its seed.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path("data")
RAW = DATA / "raw"
TRACKS = DATA / "tracks.parquet"
PLAYS = DATA / "plays.parquet"
SPLITS = DATA / "splits"
EMBEDDINGS = DATA / "embeddings"
# The stored layers of a backend, one matrix per layer (params.yaml: <backend>.layers).
LAYERS = DATA / "layers"
# One folder per precomputed backend, holding its file(s) (docs/backends.md).
PRECOMPUTED = DATA / "precomputed"
# The hashes of the repository files each stage runs, one file per unit (stages/code.py).
CODE = DATA / "code"
PREDICTIONS = DATA / "predictions"
EVAL = DATA / "eval"
METRICS = Path("metrics")
TABLES = METRICS / "tables"
# The report's tables as Markdown: the README's results block is a copy (scripts/readme_results.py).
RESULTS = METRICS / "results.md"
# Wall times: they change on every run, so neither git nor DVC tracks them (.gitignore).
TIMINGS = Path("timings")
# The backend slot of models that use no audio (params.yaml: baselines).
NO_BACKEND = "none"
# Between a trained model's name and its seed in run names: shallow.seed0 (run_name).
SEED_MARK = ".seed"
# The file of ELSA's model folder that holds its item factors.
ELSA_ITEM_FACTORS = "item_factors.npy"


# Between a backend and one of its layers in the grid's names: musicnn@max_pool.
LAYER_MARK = "@"


def embeddings(backend: str) -> Path:
    """The matrix a run reads: a backend's (its main layer), or for `<backend>@<layer>` that stored layer's."""
    name, mark, layer = backend.partition(LAYER_MARK)
    return LAYERS / name / f"{layer}.npy" if mark else EMBEDDINGS / f"{backend}.npy"


def folder(backend: str) -> str:
    """Where a run on `backend` files its outputs: the backend, or for `<backend>@<layer>` its layer folder."""
    name, mark, layer = backend.partition(LAYER_MARK)
    return layer_folder(name, layer) if mark else backend


def stored_layers(backend: str) -> Path:
    return LAYERS / backend


def layer_folder(backend: str, layer: str) -> str:
    """Where the runs on one stored layer file their outputs (predictions, evaluations, metrics): every layer
    of a backend under one folder, which the choice of `layer: best` depends on."""
    return f"layers/{backend}/{layer}"


def layer_choice(backend: str) -> Path:
    """The layer `layer: best` chose for `backend`, with the validation figures it chose on."""
    return METRICS / "layers" / f"{backend}.json"


def precomputed(backend: str) -> Path:
    return PRECOMPUTED / backend


def extraction_stats(backend: str) -> Path:
    """Dim, track counts and skipped tracks of one extraction: the same on every run of the same inputs."""
    return METRICS / "extract" / f"{backend}.json"


def extraction_timing(backend: str) -> Path:
    """Wall time and tracks/s of one extraction, the part that varies run to run."""
    return TIMINGS / "extract" / f"{backend}.json"


def extraction_resume(backend: str) -> Path:
    """Finished shards of a running extraction: outside DVC's outputs (DVC deletes those
    before re-running a stage), so a killed `extract@<backend>` resumes from them."""
    return DATA / "resume" / "extract" / backend


def run_name(model: str, seed: int | None = None) -> str:
    """How one run of `model` is named in paths: a trained model's runs differ by their
    training seed (params.yaml: seeds), a deterministic model has one run."""
    return model if seed is None else f"{model}{SEED_MARK}{seed}"


def parse_run_name(name: str) -> tuple[str, int | None]:
    """(model, seed) of a run name; seed None for a deterministic model's run."""
    model, mark, seed = name.partition(SEED_MARK)
    return (model, int(seed)) if mark and seed.isdigit() else (name, None)


def predictions(backend: str, model: str) -> Path:
    return PREDICTIONS / backend / f"{model}.parquet"


def per_user(backend: str, model: str) -> Path:
    return EVAL / backend / f"{model}.parquet"


def run_metrics(backend: str, model: str) -> Path:
    return METRICS / backend / f"{model}.json"


def model_dir(backend: str, model: str) -> Path:
    return DATA / "models" / backend / model


def elsa_item_factors(seed: int) -> Path:
    """ELSA's item factors, one row per track (train@none-elsa-<seed>'s output): the
    collaborative view that the models reading ELSA's factors (bimodal) read, seed by seed."""
    return model_dir(NO_BACKEND, run_name("elsa", seed)) / ELSA_ITEM_FACTORS


def resume_dir(backend: str, model: str) -> Path:
    """Where a model that can resume keeps its last epoch's state: not a DVC output, so it
    survives a killed `dvc repro` (DVC deletes a stage's outputs before running it)."""
    return DATA / "resume" / backend / model


def training_log(backend: str, model: str) -> Path:
    """The dvclive folder of one train stage (metrics.json, plots/metrics/)."""
    return METRICS / "train" / backend / model
