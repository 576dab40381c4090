"""Exit 1 when dvc.lock does not match the git-tracked code, params and metrics.

Run in a clean clone (CI does, through the test suite): `python -m stages.check_lock`.
The fix for a stale lock is `dvc repro` (or `make repro`) and committing dvc.lock.
"""
import sys

from audiorec.workflow.lockcheck import stale_stages


def main() -> None:
    stale = stale_stages()
    for stage, reasons in stale.items():
        print(f"{stage}: {'; '.join(reasons)}")
    if stale:
        print(f"\ndvc.lock is stale for {len(stale)} stages: run `dvc repro` and commit dvc.lock and metrics/")
        sys.exit(1)
    print("dvc.lock matches the committed code and params")


if __name__ == "__main__":
    main()
