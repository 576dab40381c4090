"""Comparing the evaluation metrics of two runs, with a tolerance, as a gate.

`dvc metrics diff` shows what changed but exits 0 whatever it finds. This module
takes the same numbers (the test and cold-start metrics of every
`metrics/<backend>/<run>.json` written by the evaluate stages), names the
stage that wrote each, and says which moved by more than a tolerance.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from audiorec import paths

# Only held-out results count: val metrics drive model selection, the rest are timings and counts.
COMPARED_SPLITS = ("test", "cold")
# metrics/<folder>/<name>.json files that are not written by an evaluate stage.
OTHER_METRICS = {"extract", "train", "tables"}
# metrics/layers/<backend>/<layer>/<run>.json: a run of the layer sweep (paths.layer_folder).
LAYER_RUNS = "layers"
# Shown in the table; a change of another statistic (half-width, user count) still fails the gate but is only counted.
SHOWN_STATISTICS = ("mean",)


@dataclass(frozen=True)
class Difference:
    stage: str
    metric: str
    reference: float | None
    current: float | None

    @property
    def change(self) -> float:
        """current - reference; a metric lost since the reference, or turned NaN, is an
        infinite change; a new one is none."""
        if self.reference is None:
            return 0.0
        if self.current is None or math.isnan(self.current) != math.isnan(self.reference):
            return math.inf
        return self.current - self.reference


def evaluate_stage(metrics_path: str) -> str:
    """The dvc.yaml stage that writes `metrics/<folder>/<run>.json` (audiorec.workflow.grid):
    evaluate@<folder>-<model>, then -<seed> for a model that trains from one
    (evaluate@oracle-shallow-0, evaluate@oracle_shuffled-knn, evaluate@none-mostpop)."""
    model, seed = paths.parse_run_name(Path(metrics_path).stem)
    folder = Path(metrics_path).parts[1:-1]
    # A layer's runs are filed under layers/<backend>/<layer>/ and named <backend>.<layer> (audiorec.workflow.grid).
    label = f"{folder[1]}.{folder[2]}" if len(folder) == 3 and folder[0] == LAYER_RUNS else folder[-1]
    return "-".join([f"evaluate@{label}", model] + ([] if seed is None else [str(seed)]))


def is_evaluation_file(path: str) -> bool:
    parts = Path(path).parts
    if parts[:1] != (paths.METRICS.name,) or not path.endswith(".json"):
        return False
    if parts[1] == LAYER_RUNS:
        return len(parts) == 5  # not metrics/layers/<backend>.json, the choice of `layer: best`
    return len(parts) == 3 and parts[1] not in OTHER_METRICS


def flatten(tree: dict, prefix: str = "") -> dict[str, float]:
    """{"test": {"hitrate@50": {"mean": x}}} -> {"test.hitrate@50.mean": x}, as `dvc metrics` names them."""
    flat: dict[str, float] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def is_compared(metric: str) -> bool:
    return metric.split(".", 1)[0] in COMPARED_SPLITS


def workspace_metrics(root: Path = Path(".")) -> dict[str, dict[str, float]]:
    """Every evaluate stage's test and cold metrics in the workspace under `root`, keyed by its metrics path."""
    found = {}
    for path in sorted((root / paths.METRICS).glob("*/*.json")):
        if not is_evaluation_file(path.relative_to(root).as_posix()):
            continue
        metrics = {k: v for k, v in flatten(json.loads(path.read_text())).items() if is_compared(k)}
        if metrics:
            found[path.relative_to(root).as_posix()] = metrics
    return found


def revision_metrics(revision: str, root: Path = Path(".")) -> tuple[dict, dict]:
    """(at `revision`, in the workspace) through `dvc metrics diff --all --json`."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "metrics", "diff", revision, "--all", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"dvc metrics diff {revision} failed: {result.stderr.strip() or result.stdout.strip()}")
    old: dict[str, dict[str, float]] = {}
    new: dict[str, dict[str, float]] = {}
    for path, metrics in json.loads(result.stdout or "{}").items():
        if not is_evaluation_file(path):
            continue
        for metric, values in metrics.items():
            if not is_compared(metric):
                continue
            if values.get("old") is not None:
                old.setdefault(path, {})[metric] = values["old"]
            if values.get("new") is not None:
                new.setdefault(path, {})[metric] = values["new"]
    return old, new


def differences(reference: dict, current: dict) -> list[Difference]:
    """One entry per metric that differs at all, or exists on one side only."""
    found = []
    for path in sorted(set(reference) | set(current)):
        before, after = reference.get(path, {}), current.get(path, {})
        for metric in sorted(set(before) | set(after)):
            if not _same(before.get(metric), after.get(metric)):
                found.append(Difference(evaluate_stage(path), metric, before.get(metric), after.get(metric)))
    return found


def _same(reference: float | None, current: float | None) -> bool:
    both_nan = reference is not None and current is not None and math.isnan(reference) and math.isnan(current)
    return both_nan or reference == current


def beyond(found: list[Difference], tolerance: float) -> list[Difference]:
    return [d for d in found if abs(d.change) > tolerance]


def as_table(found: list[Difference], tolerance: float) -> str:
    """The differing means; changes of other statistics (half-widths, user counts) are counted, not listed."""
    if not found:
        return "no test or cold-start metric differs"
    shown = [d for d in found if d.metric.rsplit(".", 1)[-1] in SHOWN_STATISTICS]
    hidden = len(found) - len(shown)
    found = shown

    def show(value: float | None) -> str:
        return "missing" if value is None else f"{value:.4f}"

    table = pd.DataFrame(
        {
            "stage": [d.stage for d in found],
            "metric": [d.metric for d in found],
            "reference": [show(d.reference) for d in found],
            "current": [show(d.current) for d in found],
            "change": [
                "new" if d.reference is None else show(None if math.isinf(d.change) else d.change) for d in found
            ],
            f"beyond {tolerance}": ["yes" if abs(d.change) > tolerance else "" for d in found],
        }
    )
    note = f"\n({hidden} changes of other statistics (95% half-widths, user counts) not listed)" if hidden else ""
    return (table.to_string(index=False) if len(table) else "") + note
