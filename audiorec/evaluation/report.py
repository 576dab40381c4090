"""The study's tables: one per model, a row per backend, sorted by test HitRate@k.

Each row also says whether it differs from the table's best row: paired t-test
and Wilcoxon signed-rank test over the users' HitRate@k, Holm-corrected across
the rows of the table. A backend with a control (audiorec.controls: shuffled
embeddings, or unordered sequences) shows the control's HitRate@k and the same
paired tests against it, Holm-corrected across the table's controls of that kind.
Interactions-only models form one `baselines` table. The same tables are built
for the hot test split and for the cold-start split.

A trained model run over several seeds (params.yaml: seeds) is one row: each metric
is the mean over seeds ± the 95% Student-t half-width over the seed means (the
journal's convention), and the paired tests read each user's metric averaged over
the seeds. A row with one run (one seed, or a deterministic model) keeps the
interval over users; the CSV also holds the per-user interval of the pooled lists.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from audiorec import paths
from audiorec.controls import KINDS, control_name
from audiorec.evaluation.beyond import catalogue_file
from audiorec.metrics import column, mean_over_seeds, summarise
from audiorec.evaluation.significance import holm, paired_pvalues

BASELINE_TABLE = "baselines"
ALPHA = 0.05
DISPLAY_NAMES = {"hitrate": "HitRate", "mrr": "MRR", "precision": "Precision", "recall": "Recall", "ndcg": "NDCG"}


@dataclass(frozen=True)
class Run:
    """One row of a table: a model on a backend, with the per-user metrics of each of its
    runs (one per seed; a single frame for a deterministic model)."""

    backend: str
    model: str
    dim: int
    per_seed: tuple[pd.DataFrame, ...]  # each: columns split, user_id, metric@k...
    by_run: tuple[dict, ...] = ()  # each seed's per-run metrics: {split: {"coverage@k": {"value": ...}, ...}}

    @property
    def seeds(self) -> int:
        return len(self.per_seed)

    def has(self, split: str) -> bool:
        return bool((self.per_seed[0]["split"] == split).any())

    def seed_values(self, split: str) -> list[pd.DataFrame]:
        """Per-user metrics of one split, indexed by user, one frame per seed."""
        return [frame[frame["split"] == split].drop(columns="split").set_index("user_id") for frame in self.per_seed]

    def values(self, split: str) -> pd.DataFrame:
        """Per-user metrics of one split, indexed by user: each user's mean over the seeds."""
        if self.seeds == 1:
            return self.seed_values(split)[0]
        averaged = mean_over_seeds([frame[frame["split"] == split] for frame in self.per_seed])
        return averaged.drop(columns="split").set_index("user_id")

    def seed_means(self, split: str) -> pd.DataFrame:
        """One row per seed: each metric's mean over the split's users."""
        return pd.DataFrame([frame.mean() for frame in self.seed_values(split)])


def read_by_run(backend: str, model: str, seeds: list[int] | None) -> tuple[dict, ...]:
    """Evaluate's per-run metrics (coverage, Gini) of each run of `model` on `backend`, as read_per_user orders them."""
    names = [paths.run_name(model)] if seeds is None else [paths.run_name(model, seed) for seed in seeds]
    return tuple(json.loads(catalogue_file(paths.per_user(backend, name)).read_text()) for name in names)


def read_per_user(backend: str, model: str, seeds: list[int] | None) -> tuple[pd.DataFrame, ...]:
    """Evaluate's per-user metrics of each run of `model` on `backend`: one frame per seed, or
    (seeds None, a deterministic model) its one run. A missing run raises FileNotFoundError."""
    names = [paths.run_name(model)] if seeds is None else [paths.run_name(model, seed) for seed in seeds]
    return tuple(pd.read_parquet(paths.per_user(backend, name)) for name in names)


def model_table(runs: list[Run], k: int = 50, split: str = "test", controls: Sequence[Run] = ()) -> pd.DataFrame:
    """Rows = backends; for each metric at `k` its mean and 95% half-width; `Size` = embedding dim;
    p-values against the best row and, where `controls` has one, against the backend's control."""
    table = pd.DataFrame([summary_row(run, k, split) for run in runs])
    table = table.sort_values(f"HitRate@{k}", ascending=False, kind="stable").reset_index(drop=True)
    table = table.merge(versus_best(runs, table["backend"].iloc[0], k, split), on="backend", how="left")
    for kind in KINDS:
        table = table.merge(versus_control(runs, controls, kind, k, split), on="backend", how="left")
    return table


def summary_row(run: Run, k: int, split: str) -> dict[str, object]:
    """Each metric's mean and 95% half-width: over users for a single run; over the seed
    means for several seeds, with the pooled per-user interval beside it."""
    per_user = summarise(run.values(split).reset_index())
    if run.seeds > 1:
        over_seeds = summarise(run.seed_means(split).assign(user_id=range(run.seeds)))
        pooled = summarise(pd.concat(run.seed_values(split)).reset_index())
    row: dict[str, object] = {"backend": run.backend}
    for metric, display in DISPLAY_NAMES.items():
        name = column(metric, k)
        summary = over_seeds if run.seeds > 1 else per_user
        row[f"{display}@{k}"] = summary[name]["mean"]
        row[f"{display}@{k}_ci95"] = summary[name]["ci95"]
        if run.seeds > 1:
            row[f"{display}@{k}_ci95_pooled_users"] = pooled[name]["ci95"]
    row["Size"] = run.dim
    row["users"] = per_user[column("hitrate", k)]["users"]
    if run.seeds > 1:
        row["seeds"] = run.seeds
    return row


def paired_columns(pairs: list[tuple[pd.Series, pd.Series]], prefix: str) -> dict[str, list[float]]:
    """Holm-corrected paired t-test and Wilcoxon p-values, one per (reference, other) pair of per-user values."""
    raw = [paired_pvalues(reference, other.reindex(reference.index)) for reference, other in pairs]
    return {f"p_t_{prefix}holm": holm([p[0] for p in raw]), f"p_wilcoxon_{prefix}holm": holm([p[1] for p in raw])}


def versus_best(runs: list[Run], best: str, k: int = 50, split: str = "test") -> pd.DataFrame:
    """Holm-corrected paired p-values of every run's per-user HitRate@k against the `best` run's."""
    name = column("hitrate", k)
    values = {run.backend: run.values(split)[name] for run in runs}
    others = [backend for backend in values if backend != best]
    return pd.DataFrame({"backend": others, **paired_columns([(values[best], values[other]) for other in others], "")})


def versus_control(
    runs: list[Run], controls: Sequence[Run], kind: str = "shuffled", k: int = 50, split: str = "test"
) -> pd.DataFrame:
    """For each run with a control of `kind`: the control's HitRate@k and Holm-corrected paired p-values."""
    name = column("hitrate", k)
    by_name = {control.backend: control for control in controls}
    matched = [
        (run, by_name[control_name(run.backend, kind)]) for run in runs if control_name(run.backend, kind) in by_name
    ]
    return pd.DataFrame(
        {
            "backend": [run.backend for run, _ in matched],
            f"{kind}_HitRate@{k}": [summary_row(control, k, split)[f"HitRate@{k}"] for _, control in matched],
            f"{kind}_HitRate@{k}_ci95": [summary_row(control, k, split)[f"HitRate@{k}_ci95"] for _, control in matched],
            **paired_columns(
                [(run.values(split)[name], control.values(split)[name]) for run, control in matched], f"{kind}_"
            ),
        }
    )


def tables_by_model(
    runs: list[Run], k: int = 50, split: str = "test", controls: Sequence[Run] = ()
) -> dict[str, pd.DataFrame]:
    models = dict.fromkeys(run.model for run in runs)
    return {
        model: model_table([r for r in runs if r.model == model], k, split, [c for c in controls if c.model == model])
        for model in models
    }


def pvalue_cell(t_p: float, wilcoxon_p: float, missing: str) -> str:
    if pd.isna(t_p):
        return missing
    return " / ".join(f"{p:.3f}{'*' if p < ALPHA else ''}" for p in (t_p, wilcoxon_p))


def _mean_cells(means: pd.Series, halves: pd.Series) -> list[str]:
    return ["—" if pd.isna(m) else f"{m:.4f} ± {c:.4f}" for m, c in zip(means, halves)]


def to_markdown(tables: dict[str, pd.DataFrame], k: int = 50) -> str:
    """Tables as Markdown, each metric as `mean ± 95% half-width`."""
    sections = []
    for model, table in tables.items():
        label = "Model" if model == BASELINE_TABLE else "Backend"
        shown = pd.DataFrame({label: table["backend"]})
        for display in DISPLAY_NAMES.values():
            name = f"{display}@{k}"
            shown[name] = _mean_cells(table[name], table[f"{name}_ci95"])
        shown["Size"] = [str(size) if size else "—" for size in table["Size"]]
        if "seeds" in table:
            shown["Seeds"] = [str(int(n)) if pd.notna(n) else "1" for n in table["seeds"]]
        shown["vs best"] = [pvalue_cell(t, w, "best") for t, w in zip(table["p_t_holm"], table["p_wilcoxon_holm"])]
        for kind in KINDS:
            if f"{kind}_HitRate@{k}" in table and table[f"{kind}_HitRate@{k}"].notna().any():
                shown[f"{kind} HitRate@{k}"] = _mean_cells(
                    table[f"{kind}_HitRate@{k}"], table[f"{kind}_HitRate@{k}_ci95"]
                )
                shown[f"vs {kind}"] = [
                    pvalue_cell(t, w, "—") for t, w in zip(table[f"p_t_{kind}_holm"], table[f"p_wilcoxon_{kind}_holm"])
                ]
        title = f"{model} (interactions only, no audio)" if model == BASELINE_TABLE else model
        sections.append(f"### {title}\n\n{shown.to_markdown(index=False)}\n")
    return "\n".join(sections)


CONTROL_LEGENDS = {
    "shuffled": "the backend's shuffled-embedding control and the same tests against it",
    "unordered": "the same model trained on sequences whose order was shuffled, and the same tests against it",
}


def legend(k: int, control_kinds: Sequence[str] = (), seeds: int = 1) -> str:
    """What the columns mean; `control_kinds` are the controls the tables show, `seeds` the
    most seeds any row ran."""
    controls = "".join(f"`{kind}` / `vs {kind}`: {CONTROL_LEGENDS[kind]}; " for kind in KINDS if kind in control_kinds)
    if seeds > 1:
        return (
            f"Each metric: a row with several seeds (`Seeds`) shows the mean over its seeds ± 95% Student-t interval "
            f"half-width over the seed means; a row with one run (one seed, or a deterministic model), the mean ± 95% "
            f"half-width over users. `vs best`: Holm-corrected p-values of the paired t-test / Wilcoxon test of "
            f"each row's per-user HitRate@{k}, averaged over its seeds, against the table's best row; "
            f"{controls}* marks p < {ALPHA}.\n"
        )
    return (
        f"Each metric: mean ± 95% Student-t interval half-width over users. `vs best`: Holm-corrected p-values "
        f"of the paired t-test / Wilcoxon test of each row's per-user HitRate@{k} against the table's best row; "
        f"{controls}* marks p < {ALPHA}.\n"
    )


def plot_hitrate(tables: dict[str, pd.DataFrame], path: str | Path, k: int = 50, split: str = "test") -> None:
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
    axes.set_ylabel(f"{split} HitRate@{k}")
    axes.legend(title="backend", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_seed_spread(runs: list[Run], path: str | Path, k: int = 50, split: str = "test") -> None:
    """Each seed's HitRate@k as a dot, backends side by side within each model, a bar at
    their mean: how far one seed's result is from another's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(run.model for run in runs))
    rows = list(dict.fromkeys(run.backend for run in runs))
    width = 0.8 / max(len(rows), 1)
    figure, axes = plt.subplots(figsize=(2 + 1.5 * len(models) * max(1, len(rows) / 3), 4))
    labelled: set[str] = set()
    for run in runs:
        i, j = rows.index(run.backend), models.index(run.model)
        values = run.seed_means(split)[column("hitrate", k)].to_numpy()
        position = j + (i - (len(rows) - 1) / 2) * width
        label = None if run.backend in labelled else run.backend
        labelled.add(run.backend)
        axes.scatter([position] * len(values), values, s=14, color=f"C{i % 10}", label=label)
        axes.hlines(values.mean(), position - width / 3, position + width / 3, color=f"C{i % 10}")
    axes.set_xticks(range(len(models)), models)
    axes.set_ylabel(f"{split} HitRate@{k}, one dot per seed")
    axes.legend(title="backend", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


@dataclass(frozen=True)
class Report:
    hot: dict[str, pd.DataFrame]  # model -> table on the test users' hot tracks
    cold: dict[str, pd.DataFrame]  # model -> table on the cold split (empty without cold start)
    markdown: str


def build_report(
    runs: list[Run], baselines: list[Run], controls: list[Run], k: int, cold_k: int, setting: str = ""
) -> Report:
    """Hot tables for every run; cold tables for the runs that ranked cold tracks, naming the
    models that cannot. `setting` (the split protocol and model settings) opens the report."""
    hot = tables_by_model(runs + baselines, k=k, controls=controls)
    kinds = [kind for kind in KINDS if any(control.backend.endswith(control_name("", kind)) for control in controls)]
    seeds = max(run.seeds for run in runs + baselines)
    sections = [f"{setting}\n"] if setting else []
    sections += [f"## Test users, tracks seen in train (k={k})\n", legend(k, kinds, seeds), to_markdown(hot, k=k)]
    cold_runs = [run for run in runs if run.has("cold")]
    cold = tables_by_model(cold_runs, k=cold_k, split="cold", controls=controls) if cold_runs else {}
    if cold:
        not_applicable = dict.fromkeys(
            run.backend if run.model == BASELINE_TABLE else run.model for run in runs + baselines if not run.has("cold")
        )
        sections += [
            f"## Cold start: test users' tracks absent from train, ranked among the cold tracks only (k={cold_k})\n",
            legend(cold_k, kinds, seeds),
            to_markdown(cold, k=cold_k),
            f"Not applicable (no interactions to score a cold track from): {', '.join(not_applicable)}.\n",
        ]
    return Report(hot, cold, "\n".join(sections))
