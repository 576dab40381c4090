"""report: per-model tables (CSV, Markdown) and HitRate charts from the per-user metrics,
for the hot test split and, when the split has cold tracks, for the cold-start split.
A trained model's row gathers its runs over params.yaml: seeds; with more than one seed,
seeds.png shows each seed's result."""
import numpy as np

from audiorec import paths
from audiorec.params import read_params, setup_logging
from audiorec.controls import control_name
from audiorec.models import DETERMINISTIC
from audiorec.evaluation.report import BASELINE_TABLE, Run, build_report, plot_hitrate, plot_seed_spread, read_per_user


def audio_runs(backends: list[str], models: list[str], seeds: list[int], name=lambda backend: backend) -> list[Run]:
    """A row per (model, backend): a trained model's runs over `seeds`, a deterministic model's one run."""
    return [
        Run(
            backend=name(backend),
            model=model,
            dim=np.load(paths.embeddings(backend), mmap_mode="r").shape[1],
            per_seed=read_per_user(name(backend), model, None if model in DETERMINISTIC else seeds),
        )
        for model in models
        for backend in backends
    ]


def main() -> None:
    setup_logging()
    params = read_params()
    k, cold_k, seeds = params["report"]["k"], params["report"]["cold_k"], params["seeds"]
    controls_params = params["controls"]
    runs = audio_runs(params["backends"], params["models"], seeds)
    controls = audio_runs(controls_params["shuffle"], controls_params["models"], seeds, control_name)
    controls += audio_runs(controls_params["unordered"], ["bert4rec"], seeds, lambda backend: control_name(backend, "unordered"))
    # Models without audio share one table, a row per model.
    baselines = [
        Run(backend=model, model=BASELINE_TABLE, dim=0,
            per_seed=read_per_user(paths.NO_BACKEND, model, None if model in DETERMINISTIC else seeds))
        for model in params["baselines"]
    ]
    setting = f"Split protocol `{params['split']['protocol']}`, model settings `{params['model_settings']}`."
    report = build_report(runs, baselines, controls, k, cold_k, setting)
    paths.TABLES.mkdir(parents=True, exist_ok=True)
    for prefix, tables in (("", report.hot), ("cold_", report.cold)):
        for model, table in tables.items():
            table.round(6).to_csv(paths.TABLES / f"{prefix}{model}.csv", index=False)
    paths.RESULTS.write_text(report.markdown)
    plot_hitrate(report.hot, paths.TABLES / "hitrate.png", k=k)
    if report.cold:
        plot_hitrate(report.cold, paths.TABLES / "hitrate_cold.png", k=cold_k, split="cold")
    seeded = [run for run in runs + baselines if run.seeds > 1]
    if seeded:
        plot_seed_spread(seeded, paths.TABLES / "seeds.png", k=k)
    print(report.markdown)


if __name__ == "__main__":
    main()
