"""Compare this workspace's test and cold-start metrics with a git revision or a reference file.

    python -m stages.compare main                  # against the metrics committed on main
    python -m stages.compare --reference FILE      # against a JSON written by --write-reference
    python -m stages.compare --write-reference FILE

Prints the metrics that differ, marks those beyond params.yaml: compare.tolerance
(or --tolerance), and exits 1 when there is any, unlike `dvc metrics diff`.
"""

import argparse
import json
import sys
from pathlib import Path

from audiorec.workflow.compare import as_table, beyond, differences, revision_metrics, workspace_metrics
from audiorec.config import load_params
from audiorec.io import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("revision", nargs="?", help="a git revision: branch, tag, commit or experiment")
    source.add_argument("--reference", type=Path, help="a metrics snapshot written by --write-reference")
    source.add_argument("--write-reference", type=Path, help="write this workspace's metrics to a snapshot file")
    parser.add_argument("--tolerance", type=float, help="default: params.yaml compare.tolerance")
    args = parser.parse_args()
    if args.write_reference:
        write_json(workspace_metrics(), args.write_reference)
        return
    tolerance = load_params()["compare"]["tolerance"] if args.tolerance is None else args.tolerance
    if args.reference:
        reference, current, label = json.loads(args.reference.read_text()), workspace_metrics(), str(args.reference)
    else:
        (reference, current), label = revision_metrics(args.revision), args.revision
    found = differences(reference, current)
    print(f"test and cold-start metrics: {label} (reference) vs this workspace (current)")
    print(as_table(found, tolerance))
    failing = beyond(found, tolerance)
    if failing:
        print(f"\n{len(failing)} metrics moved by more than {tolerance}; first: {failing[0].stage} {failing[0].metric}")
        sys.exit(1)


if __name__ == "__main__":
    main()
