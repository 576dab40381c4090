"""Write tests/reference/tiny_metrics.json: the test and cold metrics of a from-scratch
`dvc repro` on the tiny dataset, in a scratch copy of this worktree.

CI reproduces the same run and fails when a metric moves by more than
params.yaml: compare.reference_tolerance. Refresh it (`make tiny-reference`)
when a change to the results is intended, and commit it with that change.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from audiorec.workflow.worktree import REPO, reproduce_tiny, tiny_env

REFERENCE = REPO / "tests/reference/tiny_metrics.json"


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        result = reproduce_tiny(root)
        if result.returncode:
            sys.exit(f"the tiny dvc repro failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        subprocess.run(
            [sys.executable, "-m", "stages.compare", "--write-reference", str(REFERENCE)],
            cwd=root,
            env=tiny_env(),
            check=True,
        )
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
