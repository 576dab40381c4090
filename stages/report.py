"""report: per-model tables (CSV, Markdown) and HitRate charts from the per-user metrics,
for the hot test split and, when the split has cold tracks, for the cold-start split."""
import numpy as np
import pandas as pd

from audiorec import paths
from audiorec.config import load_params, setup_logging
from audiorec.controls import control_name
from audiorec.report import BASELINE_TABLE, Run, legend, plot_hitrate, tables_by_model, to_markdown


def audio_runs(backends: list[str], models: list[str], name=lambda backend: backend) -> list[Run]:
    return [
        Run(
            backend=name(backend),
            model=model,
            dim=np.load(paths.embeddings(backend), mmap_mode="r").shape[1],
            per_user=pd.read_parquet(paths.per_user(name(backend), model)),
        )
        for model in models
        for backend in backends
    ]


def main() -> None:
    setup_logging()
    params = load_params()
    k, cold_k = params["report"]["k"], params["report"]["cold_k"]
    runs = audio_runs(params["backends"], params["models"])
    controls = audio_runs(params["controls"]["shuffle"], params["models"], control_name)
    # Interactions-only models share one table, a row per model.
    baselines = [
        Run(backend=model, model=BASELINE_TABLE, dim=0, per_user=pd.read_parquet(paths.per_user(paths.NO_BACKEND, model)))
        for model in params["baselines"]
    ]
    hot = tables_by_model(runs + baselines, k=k, controls=controls)
    sections = [f"## Test users, tracks seen in train (k={k})\n", legend(k), to_markdown(hot, k=k)]
    ranks_cold = {id(run): (run.per_user["split"] == "cold").any() for run in runs + baselines}
    cold_runs = [run for run in runs if ranks_cold[id(run)]]
    cold = tables_by_model(cold_runs, k=cold_k, split="cold", controls=controls) if cold_runs else {}
    if cold:
        not_applicable = dict.fromkeys(
            run.backend if run.model == BASELINE_TABLE else run.model for run in runs + baselines if not ranks_cold[id(run)]
        )
        sections += [
            f"## Cold start: test users' tracks absent from train, ranked among the cold tracks only (k={cold_k})\n",
            legend(cold_k),
            to_markdown(cold, k=cold_k),
            f"Not applicable (no interactions to score a cold track from): {', '.join(not_applicable)}.\n",
        ]
    paths.TABLES.mkdir(parents=True, exist_ok=True)
    for prefix, tables in (("", hot), ("cold_", cold)):
        for model, table in tables.items():
            table.round(6).to_csv(paths.TABLES / f"{prefix}{model}.csv", index=False)
    (paths.TABLES / "results.md").write_text("\n".join(sections))
    plot_hitrate(hot, paths.TABLES / "hitrate.png", k=k)
    if cold:
        plot_hitrate(cold, paths.TABLES / "hitrate_cold.png", k=cold_k, split="cold")
    print("\n".join(sections))


if __name__ == "__main__":
    main()
