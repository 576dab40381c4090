"""report: per-model tables (CSV, Markdown) and HitRate charts from the per-user metrics,
for the hot test split and, when the split has cold tracks, for the cold-start split.
A trained model's row gathers its runs over params.yaml: seeds; with more than one seed,
seeds.png shows each seed's result."""

import numpy as np
import pandas as pd

from audiorec import paths
from audiorec.params import read_params, setup_logging
from audiorec.evaluation import beyond_report, layers
from audiorec.evaluation.report import (
    BASELINE_TABLE,
    Run,
    build_report,
    plot_hitrate,
    plot_seed_spread,
    read_by_run,
    read_per_user,
)
from audiorec.workflow import grid


def rows(runs: list[grid.Run]) -> list[Run]:
    """A table row per (folder, model), in the run list's order: a trained model's runs over
    its seeds, a deterministic model's one run."""
    seeds: dict[tuple[str, str, str, str], list[int | None]] = {}
    for run in runs:
        seeds.setdefault((run.backend, run.folder, run.label, run.model), []).append(run.seed)
    return [
        Run(
            backend=label,
            model=model,
            dim=np.load(paths.embeddings(backend), mmap_mode="r").shape[1],
            per_seed=read_per_user(folder, model, None if run_seeds == [None] else run_seeds),
            by_run=read_by_run(folder, model, None if run_seeds == [None] else run_seeds),
        )
        for (backend, folder, label, model), run_seeds in seeds.items()
    ]


def main() -> None:
    setup_logging()
    params = read_params()
    k, cold_k = params["report"]["k"], params["report"]["cold_k"]
    # The rows are the runs dvc.yaml trained and evaluated (audiorec.workflow.grid).
    runs = grid.runs(params)
    # The main tables hold the backends params.yaml lists; the layer sweep's runs have their own table.
    listed = set(params["backends"])
    audio = rows([run for run in runs if run.control is None and run.backend in listed])
    controls = rows([run for run in runs if run.control is not None])
    # Models without audio share one table, a row per model.
    baselines = [
        Run(backend=row.model, model=BASELINE_TABLE, dim=0, per_seed=row.per_seed, by_run=row.by_run)
        for row in rows([run for run in runs if run.backend == paths.NO_BACKEND])
    ]
    setting = f"Split protocol `{params['split']['protocol']}`, model settings `{params['model_settings']}`."
    report = build_report(audio, baselines, controls, k, cold_k, setting)
    paths.TABLES.mkdir(parents=True, exist_ok=True)
    for prefix, tables in (("", report.hot), ("cold_", report.cold)):
        for model, table in tables.items():
            table.round(6).to_csv(paths.TABLES / f"{prefix}{model}.csv", index=False)
    beyond = beyond_report.beyond_tables(audio + controls + baselines, k=k)
    for model, table in beyond.items():
        table.round(6).to_csv(paths.TABLES / f"beyond_{model}.csv", index=False)
    markdown = "\n".join([report.markdown, beyond_report.section(beyond, k, params["evaluate"]["diversity_space"])])
    layer_tables = [
        layers.sweep_table(backend, layers.read_sweep(grid.sweep_run_names(params, backend)), stored, k)
        for backend in grid.swept_backends(params)
        if (stored := grid.stored_layers(params, backend))
    ]
    if layer_tables:
        table = pd.concat(layer_tables, ignore_index=True)
        table.round(6).to_csv(paths.TABLES / "layers.csv", index=False)
        layers.plot_layers(table, paths.TABLES / "layers.png", k=k)
        markdown += layers.section(table, k)
    paths.RESULTS.write_text(markdown)
    beyond_report.plot_accuracy_popularity(audio, controls, baselines, paths.TABLES / "accuracy_popularity.png", k=k)
    plot_hitrate(report.hot, paths.TABLES / "hitrate.png", k=k)
    if report.cold:
        plot_hitrate(report.cold, paths.TABLES / "hitrate_cold.png", k=cold_k, split="cold")
    seeded = [run for run in audio + baselines if run.seeds > 1]
    if seeded:
        plot_seed_spread(seeded, paths.TABLES / "seeds.png", k=k)
    print(markdown)


if __name__ == "__main__":
    main()
