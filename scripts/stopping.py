"""BERT4Rec's stopping rule, chosen on validation: how noisy the val metric is from one epoch to
the next, and which epoch each stopping rule would have kept.

BERT4Rec is trained once per backend for `--epochs` epochs without stopping (its learning-rate
schedule as params.yaml sets it), logging val NDCG@50, val HitRate@50 and the original's val loss
every epoch. Stopping does not change what is trained before the stop, so each rule's outcome can
be read off the same curves: the epoch it stops after, and the epoch whose weights it keeps (the
best by its own metric among the epochs trained). The table gives, for each rule, the epochs
trained and the val NDCG@50 / HitRate@50 of the epoch kept, per backend and on average.

    python scripts/stopping.py                                  # oracle, musicnn and the learned table
    python scripts/stopping.py --backends oracle --epochs 40 --plot stopping.png
    python scripts/stopping.py --from-pipeline --backends oracle musicnn none --plot docs/img/bert4rec_stopping.png

It works in a scratch copy of the repository that shares this clone's DVC cache: run `make repro`
first. The noise estimate: the standard deviation of the epoch-to-epoch change of val NDCG@50 over
the epochs trained at the initial learning rate (the first two left out), divided by sqrt(2), i.e.
the scatter of one epoch's value around the curve.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from audiorec import paths
from audiorec.workflow.worktree import DVC, REPO, copy_worktree, pipeline_env, write_params

CURVES = {"ndcg": "val/ndcg@50", "hitrate": "val/hitrate@50", "loss": "val/loss", "lr": "lr"}


@dataclass(frozen=True)
class Rule:
    """Early stopping as audiorec.models.training.EarlyStopping applies it."""

    name: str
    monitor: str  # "ndcg" (maximised) or "loss" (minimised)
    patience: int
    min_gain: float
    min_epochs: int

    def outcome(self, curve: np.ndarray) -> tuple[int, int]:
        """(epochs trained, epoch kept), 1-based, on the monitored metric's per-epoch `curve`."""
        sign = -1.0 if self.monitor == "loss" else 1.0
        best = reference = -np.inf
        kept, stale = 0, 0
        for epoch, value in enumerate(sign * curve, start=1):
            if value > reference + self.min_gain:
                reference, stale = value, 0
            else:
                stale += 1
            if value > best:
                best, kept = value, epoch
            if stale >= self.patience and epoch >= self.min_epochs:
                return epoch, kept
        return len(curve), kept


def read_curve(run_dir: Path, metric: str) -> np.ndarray:
    """One logged metric per epoch from a dvclive run folder."""
    table = pd.read_csv(run_dir / "plots" / "metrics" / f"{metric}.tsv", sep="\t")
    return table.sort_values("step")[metric.split("/")[-1]].to_numpy(dtype=np.float64)


def epoch_noise(curve: np.ndarray, lr: np.ndarray) -> float:
    """The scatter of one epoch's value around the curve while it is trained at the initial learning rate
    (after the first two epochs): sd of the first differences / sqrt 2. Later epochs, at a learning
    rate the scheduler has cut, are flat because the weights barely move, not because the metric is
    precise, and would understate the noise ten times."""
    steady = curve[(lr == lr[0]) & (np.arange(len(curve)) >= 2)]
    return float(np.diff(steady).std(ddof=1) / np.sqrt(2))


def train_curves(root: Path, params: dict, backends: list[str], epochs: int) -> dict[str, dict[str, np.ndarray]]:
    """Train BERT4Rec on each backend for `epochs` epochs without stopping; its logged val curves."""
    settings = {**params["bert4rec"], "stop_on": "loss", "patience": epochs, "max_epochs": epochs, "min_gain": 0.0}
    write_params(root, {**params, "bert4rec": settings})
    seed = params["seeds"][0]
    targets = [f"train@{backend}-bert4rec-{seed}" for backend in backends]
    result = subprocess.run(DVC + ["repro", *targets], cwd=root, env=pipeline_env(), capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"dvc repro failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return logged_curves(root, params, backends, CURVES)


def logged_curves(
    root: Path, params: dict, backends: list[str], metrics: dict[str, str]
) -> dict[str, dict[str, np.ndarray]]:
    """Each backend's BERT4Rec run (first seed) in the tree at `root`: its dvclive curve of each metric."""
    run = paths.run_name("bert4rec", params["seeds"][0])
    return {
        backend: {name: read_curve(root / paths.METRICS / "train" / backend / run, m) for name, m in metrics.items()}
        for backend in backends
    }


def params_rule(params: dict) -> Rule:
    """The stopping rule params.yaml's bert4rec section sets."""
    demo = params["bert4rec"]
    return Rule("params.yaml's rule", "ndcg", demo["patience"], demo["min_gain"], demo["min_epochs"])


def draw_pipeline_curves(params: dict, backends: list[str], plot_path: Path | None) -> None:
    """No training: the curves `make repro` logged, where params.yaml's rule stops and which epoch it keeps."""
    # The val loss is logged only when it is monitored, so these curves have none.
    curves = logged_curves(REPO, params, backends, {name: CURVES[name] for name in ("ndcg", "hitrate", "lr")})
    chosen = params_rule(params)
    for backend, curve in curves.items():
        stop, kept = chosen.outcome(curve["ndcg"])
        print(
            f"{backend}: {len(curve['ndcg'])} epochs logged, stop {stop}, kept {kept}, "
            f"val NDCG@50 {curve['ndcg'][kept - 1]:.4f}"
        )
    if plot_path:
        plot(curves, [chosen], plot_path)
        print(f"wrote {plot_path}")


def rules(params: dict, noise: float) -> list[Rule]:
    """The rule this repository ran before, the original's, and candidates around the measured noise."""
    demo, study = params["bert4rec"], params["study"][params["split"]["protocol"]]["bert4rec"]
    candidates = [
        Rule(f"val NDCG@50, patience {patience}, min gain {gain:.4f}", "ndcg", patience, gain, demo["min_epochs"])
        for patience in (4, 8)
        for gain in (0.0, noise, 2 * noise)
    ]
    return [
        params_rule(params),
        Rule("the original's: val loss, patience 16", "loss", study["patience"], 0.0, study["min_epochs"]),
        *candidates,
    ]


def table(curves: dict[str, dict[str, np.ndarray]], rules: list[Rule]) -> pd.DataFrame:
    rows = []
    for rule in rules:
        row: dict[str, object] = {"rule": rule.name}
        trained, ndcg, hitrate = [], [], []
        for backend, curve in curves.items():
            stop, kept = rule.outcome(curve[rule.monitor])
            trained.append(stop)
            ndcg.append(curve["ndcg"][kept - 1])
            hitrate.append(curve["hitrate"][kept - 1])
            row[f"{backend}: stop / kept / val NDCG@50"] = f"{stop} / {kept} / {ndcg[-1]:.4f}"
        row["epochs trained (sum)"] = sum(trained)
        row["val NDCG@50 (mean)"] = round(float(np.mean(ndcg)), 4)
        row["val HitRate@50 (mean)"] = round(float(np.mean(hitrate)), 4)
        rows.append(row)
    return pd.DataFrame(rows)


def plot(curves: dict[str, dict[str, np.ndarray]], rules_drawn: list[Rule], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2), squeeze=False)
    for axis, (backend, curve) in zip(axes[0], curves.items()):
        epochs = np.arange(1, len(curve["ndcg"]) + 1)
        axis.plot(epochs, curve["ndcg"], color="C0", label="val NDCG@50")
        for rule, colour in zip(rules_drawn, ("C2", "C3")):
            if rule.monitor not in curve:  # the val loss is logged only when it is monitored
                continue
            stop, kept = rule.outcome(curve[rule.monitor])
            axis.axvline(stop, color=colour, linestyle="--", linewidth=1, label=f"{rule.name}: stop")
            axis.plot([kept], [curve["ndcg"][kept - 1]], "o", color=colour)
        axis.set_title(backend)
        axis.set_xlabel("epoch")
    axes[0][0].set_ylabel("val NDCG@50")
    axes[0][0].legend(fontsize="x-small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["oracle", "musicnn", paths.NO_BACKEND])
    parser.add_argument("--epochs", type=int, default=40, help="epochs trained without stopping")
    parser.add_argument("--plot", type=Path, help="write the val curves with params.yaml's and the original's stops")
    parser.add_argument(
        "--from-pipeline",
        action="store_true",
        help="no training: draw the val curves `make repro` logged (metrics/train/, dvclive) with params.yaml's stop",
    )
    args = parser.parse_args()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if args.from_pipeline:
        draw_pipeline_curves(params, args.backends, args.plot)
        return
    cache = subprocess.run(DVC + ["cache", "dir"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as scratch:
        root = copy_worktree(Path(scratch))
        subprocess.run(DVC + ["cache", "dir", "--local", cache], cwd=root, check=True)
        curves = train_curves(root, params, args.backends, args.epochs)
    noises = {backend: epoch_noise(curve["ndcg"], curve["lr"]) for backend, curve in curves.items()}
    noise = float(np.median(list(noises.values())))
    print("epoch-to-epoch noise of val NDCG@50 (sd): " + ", ".join(f"{b} {n:.4f}" for b, n in noises.items()))
    print(f"median: {noise:.4f}\n")
    for backend, curve in curves.items():
        print(f"{backend} val NDCG@50 by epoch: " + " ".join(f"{value:.4f}" for value in curve["ndcg"]))
    print()
    all_rules = rules(params, noise)
    print(table(curves, all_rules).to_markdown(index=False))
    if args.plot:
        plot(curves, all_rules[:2], args.plot)
        print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
