"""The study's tables: one per model, a row per backend, sorted by test HitRate@k."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from audiorec.metrics import column, summarise

DISPLAY_NAMES = {"hitrate": "HitRate", "mrr": "MRR", "precision": "Precision", "recall": "Recall", "ndcg": "NDCG"}


@dataclass(frozen=True)
class Run:
    backend: str
    model: str
    dim: int
    per_user: pd.DataFrame  # columns: split, user_id, metric@k...


def model_table(runs: list[Run], k: int = 50, split: str = "test") -> pd.DataFrame:
    """Rows = backends; for each metric at `k` its mean and 95% half-width; `Size` = embedding dim."""
    rows = []
    for run in runs:
        summary = summarise(run.per_user[run.per_user["split"] == split].drop(columns="split"))
        row: dict[str, object] = {"backend": run.backend}
        for metric, display in DISPLAY_NAMES.items():
            row[f"{display}@{k}"] = summary[column(metric, k)]["mean"]
            row[f"{display}@{k}_ci95"] = summary[column(metric, k)]["ci95"]
        row["Size"] = run.dim
        row["users"] = summary[column("hitrate", k)]["users"]
        rows.append(row)
    return pd.DataFrame(rows).sort_values(f"HitRate@{k}", ascending=False, kind="stable").reset_index(drop=True)


def tables_by_model(runs: list[Run], k: int = 50, split: str = "test") -> dict[str, pd.DataFrame]:
    models = dict.fromkeys(run.model for run in runs)
    return {model: model_table([r for r in runs if r.model == model], k, split) for model in models}


def to_markdown(tables: dict[str, pd.DataFrame], k: int = 50, split: str = "test") -> str:
    """Tables as Markdown, each metric as `mean ± 95% half-width`."""
    sections = [f"Test-set metrics at k={k} on the `{split}` users, mean ± 95% Student-t interval half-width.\n"]
    for model, table in tables.items():
        shown = pd.DataFrame({"Backend": table["backend"]})
        for display in DISPLAY_NAMES.values():
            name = f"{display}@{k}"
            shown[name] = [f"{m:.4f} ± {c:.4f}" for m, c in zip(table[name], table[f"{name}_ci95"])]
        shown["Size"] = table["Size"]
        sections.append(f"### {model}\n\n{shown.to_markdown(index=False)}\n")
    return "\n".join(sections)


def plot_hitrate(tables: dict[str, pd.DataFrame], path: str | Path, k: int = 50) -> None:
    """Grouped bars of HitRate@k with 95% intervals: backends within each model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = sorted({b for table in tables.values() for b in table["backend"]})
    width = 0.8 / max(len(backends), 1)
    figure, axes = plt.subplots(figsize=(2 + 1.5 * len(tables) * max(1, len(backends) / 3), 4))
    for i, backend in enumerate(backends):
        positions, heights, errors = [], [], []
        for j, table in enumerate(tables.values()):
            match = table[table["backend"] == backend]
            if len(match):
                positions.append(j + (i - (len(backends) - 1) / 2) * width)
                heights.append(match[f"HitRate@{k}"].iloc[0])
                errors.append(match[f"HitRate@{k}_ci95"].iloc[0])
        axes.bar(positions, heights, width, yerr=errors, capsize=3, label=backend)
    axes.set_xticks(range(len(tables)), list(tables))
    axes.set_ylabel(f"test HitRate@{k}")
    axes.legend(title="backend", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
