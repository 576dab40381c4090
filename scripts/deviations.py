"""The validation evidence for each way a model's default departs from the original code.

For a model, every setting of `params.yaml: study.<protocol>.<model>` that differs from the
model's own section is reverted to the original's value, one group at a time, and the model
is trained and evaluated on every backend; the table gives val NDCG@50 and HitRate@50 (the
evidence) and test HitRate@50 (reported, never chosen on) next to the defaults and the full
study setting.

    python scripts/deviations.py bert4rec shallow > deviations.md
    python scripts/deviations.py bert4rec --backends oracle musicnn   # fewer backends, less time

It works in a scratch copy of the repository that shares this clone's DVC cache, so stages
whose inputs did not change are restored, not re-run: run `make repro` first. About 2 minutes
per row and model on 2 cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from audiorec import paths
from audiorec.metrics import mean_over_seeds, summarise
from audiorec.workflow.compare import evaluate_stage
from audiorec.models import DETERMINISTIC
from audiorec.workflow.worktree import DVC, REPO, copy_worktree, pipeline_env, write_params

VAL_NDCG = "ndcg@50"

# Settings that only mean something together: one row reverts them all.
GROUPS = {
    "stopping": (
        "stop_on",
        "schedule_on",
        "patience",
        "scheduler_patience",
        "min_epochs",
        "max_epochs",
        "val_min_tracks",
    ),
    "freeze flags": ("item_freeze", "user_freeze"),
    "sequence length": ("max_seq_len", "predict_seq_len"),
}


def reverted_groups(params: dict, model: str) -> dict[str, dict]:
    """name -> the original's values, for each setting (or group) where the default differs."""
    study = params["study"][params["split"]["protocol"]].get(model) or {}
    differing = {key: value for key, value in study.items() if params[model].get(key) != value}
    rows = {}
    for name, keys in GROUPS.items():
        group = {key: study[key] for key in keys if key in differing}
        if group:
            rows[name] = {key: study[key] for key in keys if key in study}
            for key in group:
                differing.pop(key)
    rows.update({key: {key: value} for key, value in differing.items()})
    return rows


def evaluate(root: Path, params: dict, model: str, overrides: dict) -> tuple[pd.DataFrame, dict[str, float]]:
    """With `overrides` on `model`: per user (columns split, user_id, metric@k), each metric averaged over
    the backends (the table's means, intervals and paired differences come from these), and each
    backend's mean val NDCG@50."""
    changed = {**params, model: {**params[model], **overrides}}
    write_params(root, changed)  # and dvc.yaml for its grid: --backends narrows it
    # One run per backend: a trained model's first seed of params.yaml: seeds.
    seed = None if model in DETERMINISTIC else params["seeds"][0]
    run = paths.run_name(model, seed)
    targets = [evaluate_stage(str(paths.run_metrics(backend, run))) for backend in params["backends"]]
    result = subprocess.run(DVC + ["repro", *targets], cwd=root, env=pipeline_env(), capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"dvc repro failed with {overrides}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    per_backend = {backend: pd.read_parquet(root / paths.per_user(backend, run)) for backend in params["backends"]}
    by_backend = {backend: frame[frame["split"] == "val"][VAL_NDCG].mean() for backend, frame in per_backend.items()}
    return mean_over_seeds(list(per_backend.values())), by_backend


def interval(values: pd.Series) -> str:
    """`mean ± 95% Student-t half-width` over users."""
    summary = summarise(pd.DataFrame({"user_id": range(len(values)), "value": values.to_numpy()}))["value"]
    return f"{summary['mean']:.4f} ± {summary['ci95']:.4f}"


def verdict(row: pd.DataFrame, defaults: pd.DataFrame) -> str:
    """The evidence rule: a gap in val NDCG@50 counts only when it is larger than the 95% interval of
    each of the two numbers; otherwise it is no evidence (and the default follows the original)."""
    val, base = (frame[frame["split"] == "val"][VAL_NDCG] for frame in (row, defaults))
    gap = val.mean() - base.mean()
    half_widths = [
        summarise(pd.DataFrame({"user_id": range(len(v)), "v": v.to_numpy()}))["v"]["ci95"] for v in (val, base)
    ]
    if abs(gap) <= max(half_widths):
        return "no evidence"
    return "the original's is better" if gap > 0 else "the default is better"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--backends", nargs="+", help="the backends to train on (default: params.yaml's)")
    parser.add_argument(
        "--skip",
        nargs="+",
        default=[],
        metavar="ROW",
        help="rows to leave out, e.g. `stopping` or `all` (the original's settings at once): "
        "BERT4Rec's stopping takes hours on a CPU (up to 200 epochs of about 30 s)",
    )
    args = parser.parse_args()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if args.backends:
        unknown = set(args.backends) - set(params["backends"])
        if unknown:
            parser.error(
                f"--backends: {', '.join(sorted(unknown))} not in params.yaml: "
                f"backends ({', '.join(params['backends'])})"
            )
        params["backends"] = args.backends
    cache = subprocess.run(DVC + ["cache", "dir"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as scratch:
        root = copy_worktree(Path(scratch))
        subprocess.run(DVC + ["cache", "dir", "--local", cache], cwd=root, check=True)
        for model in args.models:
            study = params["study"][params["split"]["protocol"]].get(model) or {}
            rows = {"defaults": {}, **reverted_groups(params, model), "all of the original's settings": study}
            rows = {
                name: values
                for name, values in rows.items()
                if name not in args.skip and name.split()[0] not in args.skip
            }
            print(f"\n### {model} (protocol `{params['split']['protocol']}`)\n")
            print(
                "| reverted to the original | val NDCG@50 | Δ val NDCG@50 vs defaults (paired) | verdict "
                "| val HitRate@50 | test HitRate@50 | val NDCG@50 by backend |"
            )
            print("|---|---|---|---|---|---|---|")
            defaults = None
            for name, overrides in rows.items():
                found, by_backend_ndcg = evaluate(root, params, model, overrides)
                defaults = found if defaults is None else defaults
                val, test = found[found["split"] == "val"], found[found["split"] == "test"]
                base = defaults[defaults["split"] == "val"].set_index("user_id")[VAL_NDCG]
                difference = val.set_index("user_id")[VAL_NDCG] - base.reindex(val["user_id"]).to_numpy()
                label = (
                    name
                    if not overrides or name == "all of the original's settings"
                    else f"{name}: " + ", ".join(f"`{k}: {v}`" for k, v in overrides.items())
                )
                by_backend = ", ".join(f"{backend} {value:.4f}" for backend, value in by_backend_ndcg.items())
                print(
                    f"| {label} | {interval(val[VAL_NDCG])} | {'—' if found is defaults else interval(difference)} "
                    f"| {'—' if found is defaults else verdict(found, defaults)} | {interval(val['hitrate@50'])} "
                    f"| {interval(test['hitrate@50'])} | {by_backend} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
