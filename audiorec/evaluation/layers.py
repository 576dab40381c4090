"""The layer sweep: how each stored layer of a backend serves the recommenders, and the layer chosen on validation.

The sweep trains and evaluates each model of `layer_sweep.models` on every stored layer of a backend
(`<backend>@<layer>`, audiorec.workflow.grid). A backend's choice (`layer: best`) is the layer whose val
NDCG@50, averaged over those models, is highest: one layer per backend, as both papers read one layer per
audio model, chosen on validation and never on test. The table beside it gives every layer's val NDCG@k and
test HitRate@k with their 95% intervals, and the mean over layers, as MARBLE reports it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audiorec import paths
from audiorec.metrics import mean_over_seeds, summarise

# What the choice reads: val NDCG@50, the metric every other choice of the project is made on.
CHOICE_SPLIT = "val"
CHOICE_METRIC = "ndcg@50"
MEAN_OVER_LAYERS = "mean over layers"
LEGEND = (
    "Every stored layer of the swept backends under each swept model (`layer_sweep`): val NDCG@{k} and test "
    "HitRate@{k}, mean ± 95% interval over users; `vs chosen`: each layer's val NDCG@{k} minus the chosen layer's, "
    "user by user, with its 95% interval (one that holds 0 is no evidence either way). **Chosen**: the layer with "
    'the highest val NDCG@50 averaged over the swept models, which `layer: best` reads; "mean over layers" is the '
    "mean of the layer means."
)


def read_sweep(runs: dict[tuple[str, str], list[tuple[str, str]]]) -> dict[tuple[str, str], pd.DataFrame]:
    """Evaluate's per-user frames of a backend's sweep: (layer, model) -> each user's metrics averaged over that
    pair's runs (`runs`: the (folder, run name) of each, one per seed; audiorec.workflow.grid.sweep_run_names)."""
    return {
        pair: mean_over_seeds([pd.read_parquet(paths.per_user(folder, run)) for folder, run in sources])
        for pair, sources in runs.items()
    }


def split_summary(per_user: pd.DataFrame, split: str, metric: str) -> dict[str, float]:
    """Mean, 95% half-width and user count of `metric` over the users of `split`."""
    part = per_user[per_user["split"] == split]
    return summarise(part[["user_id", metric]])[metric]


def paired_difference(per_user: pd.DataFrame, reference: pd.DataFrame, metric: str) -> dict[str, float]:
    """Mean and 95% half-width of `per_user` minus `reference` in val `metric`, user by user: whether a layer
    differs from the chosen one beyond the noise of the validation set."""
    mine = per_user[per_user["split"] == CHOICE_SPLIT].set_index("user_id")[metric]
    theirs = reference[reference["split"] == CHOICE_SPLIT].set_index("user_id")[metric]
    common = mine.index.intersection(theirs.index)
    difference = (mine.loc[common] - theirs.loc[common]).rename(metric).reset_index()
    return summarise(difference)[metric]


def layer_scores(sweep: dict[tuple[str, str], pd.DataFrame], layers: list[str], metric: str) -> pd.Series:
    """Each layer's val `metric`, averaged over the sweep's models, in the network's order."""
    models = sorted({model for _, model in sweep})
    return pd.Series(
        [
            np.mean([split_summary(sweep[layer, model], CHOICE_SPLIT, metric)["mean"] for model in models])
            for layer in layers
        ],
        index=layers,
        name=metric,
    )


def choose_layer(scores: pd.Series) -> str:
    """The layer with the highest score; of equal ones, the first in the network's order."""
    return str(scores.index[int(np.argmax(scores.to_numpy()))])


def choice_record(sweep: dict[tuple[str, str], pd.DataFrame], layers: list[str]) -> dict:
    """What `layer: best` chose and every layer's figures it chose on: the mean over models, and each model's
    val NDCG@50 with its interval (metrics/layers/<backend>.json)."""
    scores = layer_scores(sweep, layers, CHOICE_METRIC)
    return {
        "chosen": choose_layer(scores),
        "metric": f"{CHOICE_SPLIT} {CHOICE_METRIC}",
        "mean_over_models": scores.to_dict(),
        "by_model": {
            model: {layer: split_summary(sweep[layer, model], CHOICE_SPLIT, CHOICE_METRIC) for layer in layers}
            for model in dict.fromkeys(model for _, model in sweep)
        },
    }


def sweep_table(backend: str, sweep: dict[tuple[str, str], pd.DataFrame], layers: list[str], k: int) -> pd.DataFrame:
    """`layer_table` with the backend's choice on validation marked."""
    return layer_table(backend, sweep, layers, k, choose_layer(layer_scores(sweep, layers, CHOICE_METRIC)))


def layer_table(
    backend: str, sweep: dict[tuple[str, str], pd.DataFrame], layers: list[str], k: int, chosen: str
) -> pd.DataFrame:
    """A row per model and layer: val NDCG@k and test HitRate@k with 95% half-widths; `chosen` marks the
    backend's choice (`layer: best`), `best_for_model` the layer this model alone would choose on val. After
    each model's layers, the mean over layers (the mean of the layer means: no interval)."""
    val_metric, test_metric = f"ndcg@{k}", f"hitrate@{k}"
    rows = []
    for model in dict.fromkeys(model for _, model in sweep):
        val = {layer: split_summary(sweep[layer, model], CHOICE_SPLIT, val_metric) for layer in layers}
        versus = {layer: paired_difference(sweep[layer, model], sweep[chosen, model], val_metric) for layer in layers}
        test = {layer: split_summary(sweep[layer, model], "test", test_metric) for layer in layers}
        best_for_model = max(layers, key=lambda layer: val[layer]["mean"])
        for layer in layers:
            rows.append(
                {
                    "backend": backend,
                    "model": model,
                    "layer": layer,
                    f"val NDCG@{k}": val[layer]["mean"],
                    f"val NDCG@{k} ±": val[layer]["ci95"],
                    f"val NDCG@{k} vs chosen": versus[layer]["mean"],
                    f"val NDCG@{k} vs chosen ±": versus[layer]["ci95"],
                    f"test HitRate@{k}": test[layer]["mean"],
                    f"test HitRate@{k} ±": test[layer]["ci95"],
                    "chosen": layer == chosen,
                    "best_for_model": layer == best_for_model,
                }
            )
        rows.append(
            {
                "backend": backend,
                "model": model,
                "layer": MEAN_OVER_LAYERS,
                f"val NDCG@{k}": float(np.mean([val[layer]["mean"] for layer in layers])),
                f"val NDCG@{k} ±": float("nan"),
                f"val NDCG@{k} vs chosen": float("nan"),
                f"val NDCG@{k} vs chosen ±": float("nan"),
                f"test HitRate@{k}": float(np.mean([test[layer]["mean"] for layer in layers])),
                f"test HitRate@{k} ±": float("nan"),
                "chosen": False,
                "best_for_model": False,
            }
        )
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, k: int) -> str:
    """The layer table as Markdown: mean ± half-width, the backend's choice in bold."""
    lines = [
        f"| backend | model | layer | val NDCG@{k} | vs chosen, paired | test HitRate@{k} |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.to_dict("records"):
        layer = f"**{row['layer']}** (chosen)" if row["chosen"] else row["layer"]
        cells = []
        for name in (f"val NDCG@{k}", f"val NDCG@{k} vs chosen", f"test HitRate@{k}"):
            value, half = row[name], row[f"{name} ±"]
            if row["chosen"] and name.endswith("vs chosen"):
                cells.append("—")
            elif np.isnan(value):
                cells.append("")
            else:
                sign = "+" if name.endswith("vs chosen") else ""
                cells.append(f"{value:{sign}.4f}" + ("" if np.isnan(half) else f" ± {half:.4f}"))
        lines.append(f"| {row['backend']} | {row['model']} | {layer} | {' | '.join(cells)} |")
    return "\n".join(lines)


def section(table: pd.DataFrame, k: int) -> str:
    """The "Layers" section of metrics/results.md: the legend, then the table."""
    return f"\n### Layers\n\n{LEGEND.format(k=k)}\n\n{to_markdown(table, k)}\n"


def plot_layers(table: pd.DataFrame, path: str | Path, k: int) -> None:
    """One panel per backend and metric: each model's curve over the layers with its 95% interval, the chosen
    layer marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers_only = table[table["layer"] != MEAN_OVER_LAYERS]
    backends = list(dict.fromkeys(layers_only["backend"]))
    metrics = (f"val NDCG@{k}", f"test HitRate@{k}")
    figure, axes = plt.subplots(len(backends), 2, figsize=(11, 3.6 * len(backends)), squeeze=False)
    for row, backend in enumerate(backends):
        part = layers_only[layers_only["backend"] == backend]
        order = list(dict.fromkeys(part["layer"]))
        for column, metric in enumerate(metrics):
            axis = axes[row][column]
            for model, curve in part.groupby("model", sort=False):
                x = [order.index(layer) for layer in curve["layer"]]
                axis.errorbar(x, curve[metric], yerr=curve[f"{metric} ±"], marker="o", capsize=3, label=model)
            chosen = part.loc[part["chosen"], "layer"]
            if len(chosen):
                axis.axvline(order.index(chosen.iloc[0]), color="grey", linestyle="--", label="chosen on val")
            axis.set_xticks(range(len(order)), order, rotation=30, ha="right")
            axis.set_title(f"{backend}: {metric}")
            axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
