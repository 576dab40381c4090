"""report: per-model tables (CSV, Markdown) and HitRate charts from the per-user metrics,
for the hot test split and, when the split has cold tracks, for the cold-start split."""
import numpy as np
import pandas as pd

from audiorec import paths
from audiorec.config import load_params, setup_logging
from audiorec.controls import control_name
from audiorec.report import BASELINE_TABLE, Run, build_report, plot_hitrate


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
    runs = audio_runs(params["backends"], params["models"] + params["elsa_models"])
    shuffled_models = params["controls"]["models"] + params["controls"]["elsa_models"]
    controls = audio_runs(params["controls"]["shuffle"], shuffled_models, control_name)
    controls += audio_runs(params["controls"]["unordered"], ["bert4rec"], lambda backend: control_name(backend, "unordered"))
    # Interactions-only models share one table, a row per model.
    baselines = [
        Run(backend=model, model=BASELINE_TABLE, dim=0, per_user=pd.read_parquet(paths.per_user(paths.NO_BACKEND, model)))
        for model in params["baselines"]
    ]
    setting = f"Split protocol `{params['split']['protocol']}`, model settings `{params['model_settings']}`."
    report = build_report(runs, baselines, controls, k, cold_k, setting)
    paths.TABLES.mkdir(parents=True, exist_ok=True)
    for prefix, tables in (("", report.hot), ("cold_", report.cold)):
        for model, table in tables.items():
            table.round(6).to_csv(paths.TABLES / f"{prefix}{model}.csv", index=False)
    (paths.TABLES / "results.md").write_text(report.markdown)
    plot_hitrate(report.hot, paths.TABLES / "hitrate.png", k=k)
    if report.cold:
        plot_hitrate(report.cold, paths.TABLES / "hitrate_cold.png", k=cold_k, split="cold")
    print(report.markdown)


if __name__ == "__main__":
    main()
