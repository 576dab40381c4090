"""report: per-model tables (CSV, Markdown) and a HitRate chart from the per-user metrics."""
import numpy as np
import pandas as pd

from audiorec import paths
from audiorec.config import load_params, setup_logging
from audiorec.report import BASELINE_TABLE, Run, plot_hitrate, tables_by_model, to_markdown


def main() -> None:
    setup_logging()
    params = load_params()
    k = params["report"]["k"]
    runs = [
        Run(
            backend=backend,
            model=model,
            dim=np.load(paths.embeddings(backend), mmap_mode="r").shape[1],
            per_user=pd.read_parquet(paths.per_user(backend, model)),
        )
        for model in params["models"]
        for backend in params["backends"]
    ]
    # Interactions-only models share one table, a row per model.
    runs += [
        Run(backend=model, model=BASELINE_TABLE, dim=0, per_user=pd.read_parquet(paths.per_user(paths.NO_BACKEND, model)))
        for model in params["baselines"]
    ]
    tables = tables_by_model(runs, k=k)
    paths.TABLES.mkdir(parents=True, exist_ok=True)
    for model, table in tables.items():
        table.round(6).to_csv(paths.TABLES / f"{model}.csv", index=False)
    (paths.TABLES / "results.md").write_text(to_markdown(tables, k=k))
    plot_hitrate(tables, paths.TABLES / "hitrate.png", k=k)
    print(to_markdown(tables, k=k))


if __name__ == "__main__":
    main()
