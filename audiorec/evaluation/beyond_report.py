"""The "beyond accuracy" tables and the accuracy-against-popularity picture.

One table per model (and one for the models without audio), a row per backend and control, on
the test users' hot lists: how much of the train catalogue the lists cover and how evenly
(coverage, Gini), how popular and how novel the recommended tracks are, how diverse each list is
in the one reference space every run is measured in, and HitRate on the head and the tail of the
test tracks by train popularity. Per-user columns carry 95% Student-t half-widths over the users
they are defined for; tail HitRate also the Holm-corrected paired tests against the table's best
tail row (over the users who have a tail track). Catalogue-level columns are one number per run
(the mean over seeds when a row has several).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audiorec.evaluation.report import ALPHA, BASELINE_TABLE, Run, paired_columns, pvalue_cell
from audiorec.metrics import column, summarise

# (evaluate's per-user column, the table's name); the tail's also gets paired tests.
PER_USER = (
    ("popularity", "Popularity"),
    ("popularity_lift", "Popularity lift"),
    ("novelty", "Novelty"),
    ("diversity", "Diversity"),
    ("hitrate_head", "Head HitRate"),
    ("hitrate_tail", "Tail HitRate"),
)
BY_RUN = (("coverage", "Coverage"), ("gini", "Gini"))
TAIL = "hitrate_tail"


def beyond_row(run: Run, k: int, split: str = "test") -> dict[str, object]:
    """One run's row: per-user means with half-widths, catalogue values averaged over its seeds."""
    values = run.values(split)
    summary = summarise(values.reset_index())
    row: dict[str, object] = {"backend": run.backend}
    for name, display in BY_RUN:
        found = [metrics[split][column(name, k)]["value"] for metrics in run.by_run if split in metrics]
        row[f"{display}@{k}"] = float(np.mean(found)) if found else np.nan
    for name, display in PER_USER:
        if column(name, k) in summary:
            row[f"{display}@{k}"] = summary[column(name, k)]["mean"]
            row[f"{display}@{k}_ci95"] = summary[column(name, k)]["ci95"]
    row["tail users"] = summary[column(TAIL, k)]["users"] if column(TAIL, k) in summary else 0
    return row


def versus_best_tail(runs: list[Run], k: int, split: str = "test") -> pd.DataFrame:
    """Holm-corrected paired t-test / Wilcoxon p-values of each run's tail HitRate against the best
    tail row's, over the users who have a tail track (the same users for every run)."""
    name = column(TAIL, k)
    values = {run.backend: run.values(split)[name].dropna() for run in runs}
    best = max(values, key=lambda backend: values[backend].mean())
    others = [backend for backend in values if backend != best]
    pairs = [(values[best], values[other]) for other in others]
    return pd.DataFrame({"backend": others, **paired_columns(pairs, "tail_")})


def beyond_table(runs: list[Run], k: int = 50, split: str = "test") -> pd.DataFrame:
    """Rows = the runs of one table, sorted by tail HitRate@k, best first."""
    table = pd.DataFrame([beyond_row(run, k, split) for run in runs])
    if f"Tail HitRate@{k}" not in table:
        return table
    table = table.sort_values(f"Tail HitRate@{k}", ascending=False, kind="stable").reset_index(drop=True)
    return table.merge(versus_best_tail(runs, k, split), on="backend", how="left")


def beyond_tables(runs: list[Run], k: int = 50, split: str = "test") -> dict[str, pd.DataFrame]:
    """A table per model (runs and their controls together), in the runs' order."""
    models = dict.fromkeys(run.model for run in runs)
    return {model: beyond_table([run for run in runs if run.model == model], k, split) for model in models}


def _cell(table: pd.DataFrame, name: str, digits: int) -> list[str]:
    if name not in table:
        return ["—"] * len(table)
    halves = table[f"{name}_ci95"] if f"{name}_ci95" in table else [None] * len(table)
    return [
        "—" if pd.isna(mean) else f"{mean:.{digits}f}" + ("" if half is None else f" ± {half:.{digits}f}")
        for mean, half in zip(table[name], halves)
    ]


def to_markdown(tables: dict[str, pd.DataFrame], k: int = 50) -> str:
    sections = []
    for model, table in tables.items():
        label = "Model" if model == BASELINE_TABLE else "Backend"
        shown = pd.DataFrame({label: table["backend"]})
        for _, display in BY_RUN:
            shown[f"{display}@{k}"] = _cell(table, f"{display}@{k}", 3)
        for name, display in PER_USER:
            shown[f"{display}@{k}"] = _cell(table, f"{display}@{k}", 2 if name == "novelty" else 4)
        if "p_t_tail_holm" in table:
            shown["tail vs best"] = [
                pvalue_cell(t, w, "best") for t, w in zip(table["p_t_tail_holm"], table["p_wilcoxon_tail_holm"])
            ]
        title = f"{model} (interactions only, no audio)" if model == BASELINE_TABLE else model
        sections.append(f"### {title}\n\n{shown.to_markdown(index=False)}\n")
    return "\n".join(sections)


def legend(k: int, diversity_space: str | None) -> str:
    space = (
        f"`Diversity`: mean cosine distance between the tracks of a list, in `{diversity_space}`'s vectors for every "
        "run; "
        if diversity_space
        else ""
    )
    return (
        f"Test users' lists cut at {k}. `Coverage`: share of the train catalogue in at least one list; `Gini`: how "
        "unevenly the lists' slots spread over the catalogue (0 even, 1 one track); `Popularity`: mean share of train "
        "users who played a recommended track; `Popularity lift`: that over the mean popularity of the user's own "
        f"train tracks; `Novelty`: mean self-information, -log2 popularity; {space}`Head` / `Tail HitRate`: HitRate "
        "on the test tracks among the most / least played train tracks (`evaluate.popularity_buckets`), over the "
        "users who have one; `tail vs best`: Holm-corrected paired t-test / Wilcoxon p-values against the table's best "
        f"tail row. Per-user columns: mean ± 95% Student-t half-width over users; * marks p < {ALPHA}.\n"
    )


def plot_accuracy_popularity(
    runs: list[Run], controls: list[Run], baselines: list[Run], path: str | Path, k: int = 50, split: str = "test"
) -> None:
    """One point per run: test HitRate@k against the mean popularity of its recommended tracks;
    marker by model, colour by backend, controls hollow, the models without audio in black."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = dict(zip(dict.fromkeys(run.model for run in runs + controls), "osD^v<>px*"))
    colours = {backend: f"C{i % 10}" for i, backend in enumerate(dict.fromkeys(run.backend for run in runs))}
    figure, axes = plt.subplots(figsize=(6.5, 4.5))

    def point(run: Run) -> tuple[float, float]:
        summary = summarise(run.values(split).reset_index())
        return summary[column("popularity", k)]["mean"], summary[column("hitrate", k)]["mean"]

    for run in runs:
        x, y = point(run)
        axes.scatter(x, y, marker=markers[run.model], color=colours[run.backend], s=40)
    for run in controls:
        x, y = point(run)
        axes.scatter(x, y, marker=markers[run.model], facecolors="none", edgecolors="grey", s=40)
        axes.annotate(run.backend, (x, y), fontsize="x-small", color="grey", xytext=(3, -8), textcoords="offset points")
    for run in baselines:
        x, y = point(run)
        axes.scatter(x, y, marker="X", color="black", s=45)
        axes.annotate(run.backend, (x, y), fontsize="small", xytext=(4, 3), textcoords="offset points")
    for model, marker in markers.items():
        axes.scatter([], [], marker=marker, color="grey", label=model)
    for backend, colour in colours.items():
        axes.scatter([], [], marker="s", color=colour, label=backend)
    axes.scatter([], [], marker="o", facecolors="none", edgecolors="grey", label="control (hollow)")
    axes.set_xscale("log")
    axes.set_xlabel(f"mean popularity of the top {k} (share of train users, log scale)")
    axes.set_ylabel(f"{split} HitRate@{k}")
    axes.legend(fontsize="x-small", ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def section(tables: dict[str, pd.DataFrame], k: int, diversity_space: str | None) -> str:
    """The report's beyond-accuracy section: its heading, the legend and a table per model."""
    heading = f"## Beyond accuracy: what the test users' lists hold (k={k})\n"
    return "\n".join([heading, legend(k, diversity_space), to_markdown(tables, k)])
