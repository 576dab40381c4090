"""The committed run's table for docs/deviations.md: per model and backend, val NDCG@50 with its 95%
interval (the evidence every default is chosen on), test HitRate@50 with its interval and cold
HitRate@10 (reported only), read from `metrics/<backend>/<run>.json` after `make repro`.

    python scripts/demo_table.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audiorec import paths  # noqa: E402
from audiorec.workflow import grid  # noqa: E402
from audiorec.params import read_params  # noqa: E402


def cell(summary: dict, digits: int) -> str:
    return f"{summary['mean']:.{digits}f} ± {summary['ci95']:.{digits}f}"


def main() -> None:
    params = read_params(REPO / "params.yaml")
    print("| model | backend | val NDCG@50 (± 95%) | test HitRate@50 | cold HitRate@10 |")
    print("|---|---|---|---|---|")
    for run in grid.runs(params):
        if run.layer is not None and run.backend not in params["backends"]:
            continue  # the layer sweep has its own table (metrics/tables/layers.csv)
        metrics = json.loads((REPO / paths.run_metrics(run.folder, run.run_name)).read_text())
        cold = metrics.get("cold", {}).get("hitrate@10")
        cold_cell = "—" if cold is None else f"{cold['mean']:.3f}"
        print(
            f"| {run.model} | {run.folder} | {cell(metrics['val']['ndcg@50'], 4)} "
            f"| {cell(metrics['test']['hitrate@50'], 3)} | {cold_cell} |"
        )


if __name__ == "__main__":
    main()
