"""The study's tables: one per model, a row per backend, sorted by test HitRate@k.

Each row also says whether it differs from the table's best row: paired t-test
and Wilcoxon signed-rank test over the users' HitRate@k, Holm-corrected across
the rows of the table. Interactions-only models form one `baselines` table.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from audiorec.metrics import column, summarise
from audiorec.significance import holm, paired_pvalues

BASELINE_TABLE = "baselines"
ALPHA = 0.05
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
    table = pd.DataFrame(rows).sort_values(f"HitRate@{k}", ascending=False, kind="stable").reset_index(drop=True)
    return table.merge(versus_best(runs, table["backend"].iloc[0], k, split), on="backend", how="left")


def versus_best(runs: list[Run], best: str, k: int = 50, split: str = "test") -> pd.DataFrame:
    """Holm-corrected paired p-values of every run's per-user HitRate@k against the `best` run's."""
    name = column("hitrate", k)
    values = {run.backend: run.per_user[run.per_user["split"] == split].set_index("user_id")[name] for run in runs}
    others = [backend for backend in values if backend != best]
    raw = [paired_pvalues(values[best], values[other].reindex(values[best].index)) for other in others]
    t_p, wilcoxon_p = (holm([pair[i] for pair in raw]) if raw else [] for i in (0, 1))
    return pd.DataFrame({"backend": others, "p_t_holm": t_p, "p_wilcoxon_holm": wilcoxon_p})


def tables_by_model(runs: list[Run], k: int = 50, split: str = "test") -> dict[str, pd.DataFrame]:
    models = dict.fromkeys(run.model for run in runs)
    return {model: model_table([r for r in runs if r.model == model], k, split) for model in models}


def _versus_best_cell(t_p: float, wilcoxon_p: float) -> str:
    if pd.isna(t_p):
        return "best"
    return " / ".join(f"{p:.3f}{'*' if p < ALPHA else ''}" for p in (t_p, wilcoxon_p))


def to_markdown(tables: dict[str, pd.DataFrame], k: int = 50, split: str = "test") -> str:
    """Tables as Markdown, each metric as `mean ± 95% half-width`."""
    sections = [
        f"Test-set metrics at k={k} on the `{split}` users, mean ± 95% Student-t interval half-width. "
        f"`vs best`: Holm-corrected p-values of the paired t-test / Wilcoxon test of each row's per-user "
        f"HitRate@{k} against the table's best row; * marks p < {ALPHA}.\n"
    ]
    for model, table in tables.items():
        label = "Model" if model == BASELINE_TABLE else "Backend"
        shown = pd.DataFrame({label: table["backend"]})
        for display in DISPLAY_NAMES.values():
            name = f"{display}@{k}"
            shown[name] = [f"{m:.4f} ± {c:.4f}" for m, c in zip(table[name], table[f"{name}_ci95"])]
        shown["Size"] = [str(size) if size else "—" for size in table["Size"]]
        shown["vs best"] = [_versus_best_cell(t, w) for t, w in zip(table["p_t_holm"], table["p_wilcoxon_holm"])]
        title = f"{model} (interactions only, no audio)" if model == BASELINE_TABLE else model
        sections.append(f"### {title}\n\n{shown.to_markdown(index=False)}\n")
    return "\n".join(sections)


def plot_hitrate(tables: dict[str, pd.DataFrame], path: str | Path, k: int = 50) -> None:
    """Grouped bars of HitRate@k with 95% intervals: backends within each model; the
    interactions-only baselines as horizontal reference lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    baselines = tables.get(BASELINE_TABLE)
    tables = {model: table for model, table in tables.items() if model != BASELINE_TABLE}

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
    if baselines is not None:
        for style, (name, value) in zip(("--", ":", "-."), zip(baselines["backend"], baselines[f"HitRate@{k}"])):
            axes.axhline(value, color="grey", linestyle=style, linewidth=1, label=f"{name} (no audio)")
    axes.set_xticks(range(len(tables)), list(tables))
    axes.set_ylabel(f"test HitRate@{k}")
    axes.legend(title="backend", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
