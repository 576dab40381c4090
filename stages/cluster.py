"""Run the outdated stages of the pipeline on a Ray cluster, then restore them here.

    ray start --head --num-cpus=4             # this machine; a real cluster: docs/cluster.md
    python -m stages.cluster --git-remote ../audiorec.git   # every outdated stage
    python -m stages.cluster 'train@musicnn-shallow-0' --dry-run

Each stage runs on a worker in a clone of the current commit (pushed to the git remote) and
pushes its outputs and run-cache to the DVC remote; the final `dvc repro --pull` here restores
every stage from the run-cache. Commit dvc.lock afterwards, as after any repro.
"""

import argparse
import logging
import sys
from pathlib import Path

from audiorec.workflow.cluster import ClusterError, GridReport, plan_lines, run_grid


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help="stages to bring up to date with their upstream ones (default: all)")
    parser.add_argument(
        "--address",
        default="auto",
        help="Ray cluster: auto (the one `ray start` began here), HOST:PORT, or local (start one in this process)",
    )
    parser.add_argument("--git-remote", help="URL or remote name the workers clone from (default: origin)")
    parser.add_argument(
        "--dvc-remote", help="DVC remote every worker and this machine reach (default: the core.remote of .dvc/config)"
    )
    parser.add_argument(
        "--retries", type=int, default=3, help="re-runs of a stage whose worker or node was lost (default 3)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the stages that would be submitted, with their resources on a cluster with GPUs, and submit nothing",
    )
    parser.add_argument(
        "--allow-local-runs", action="store_true", help="exit 0 even when the final repro here had to run stages"
    )
    return parser.parse_args(argv)


def summarize(report: GridReport, allow_local_runs: bool) -> int:
    for name, outcome in report.failed.items():
        print(f"FAILED {name} at {outcome.failed_step} on {outcome.host}; the end of its log:\n{outcome.log_tail}\n")
    if report.skipped:
        print(f"skipped, downstream of a failure: {', '.join(report.skipped)}")
    print(
        f"cluster: {len(report.succeeded)} stages done, {len(report.failed)} failed, {len(report.skipped)} skipped; "
        f"here: {len(report.coordinator_restored)} restored from the run-cache, {len(report.coordinator_ran)} run"
    )
    if report.coordinator_ran:
        print(f"the final `dvc repro --pull` here ran {', '.join(report.coordinator_ran)} instead of restoring them")
    if report.failed:
        print(
            "fix the failure, commit, and run again: "
            "the finished stages are restored from the run-cache, not recomputed"
        )
        return 1
    if report.coordinator_ran and not allow_local_runs:
        return 1
    print("commit dvc.lock (and any metrics/ changes) to record the run")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Progress lines read best bare: the time, then the counts and the stage.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    root = Path(".").resolve()
    try:
        if args.dry_run:
            lines = plan_lines(root, args.targets)
            print("\n".join(lines) if lines else "every stage is up to date")
            return 0
        address = None if args.address == "local" else args.address
        report = run_grid(root, address, args.git_remote, args.dvc_remote, args.targets, args.retries)
    except ClusterError as error:
        print(f"cluster: {error}", file=sys.stderr)
        return 2
    return summarize(report, args.allow_local_runs)


if __name__ == "__main__":
    sys.exit(main())
