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

from audiorec.workflow.worktree import DVC, REPO, copy_worktree, pipeline_env, use_tiny_settings

REFERENCE = REPO / "tests/reference/tiny_metrics.json"


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = copy_worktree(Path(scratch))
        use_tiny_settings(root)
        env = {**pipeline_env(), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # as make test runs it (tests/conftest.py)
        subprocess.run(DVC + ["repro"], cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            [sys.executable, "-m", "stages.compare", "--write-reference", str(REFERENCE)], cwd=root, env=env, check=True
        )
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
