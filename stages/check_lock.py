"""Exit 1 when dvc.lock does not match the git-tracked code and params, or holds a stage
dvc.yaml does not define (an orphan).

Run in a clean clone (CI does, through the test suite): `python -m stages.check_lock`.
The fix for a stale lock is `dvc repro` (or `make repro`) and committing dvc.lock; for an
orphan, `python -m stages.check_lock --prune`.
"""

import argparse
import sys

from audiorec.workflow.lockcheck import prune, stale_stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prune", action="store_true", help="remove the orphan stages from dvc.lock first")
    if parser.parse_args().prune:
        for name in prune():
            print(f"removed from dvc.lock: {name}")
    stale = stale_stages()
    for stage, reasons in stale.items():
        print(f"{stage}: {'; '.join(reasons)}")
    if stale:
        print(f"\ndvc.lock is stale for {len(stale)} stages: run `dvc repro` and commit dvc.lock and metrics/")
        sys.exit(1)
    print("dvc.lock matches the committed code and params")


if __name__ == "__main__":
    main()
