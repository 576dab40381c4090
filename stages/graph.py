"""Write dvc.yaml from dvc.template.yaml and params.yaml's grid (audiorec.workflow.graph).

    python -m stages.graph                      # after editing backends, models, baselines, seeds or controls
    python -m stages.graph -S 'backends=[random,mfcc,musicnn,oracle,mert]'   # set params, then write
    python -m stages.graph --check              # exit 1 if dvc.yaml is not current (CI)

-S takes DVC's syntax (`dvc exp run -S`): a dotted key, `=`, a YAML value; it edits params.yaml.
"""

import argparse
import sys
from pathlib import Path

from audiorec.config import ParamsError, validate
from audiorec.params import read_params
from audiorec.workflow import graph

PARAMS = Path("params.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-S", "--set-param", action="append", default=[], dest="set_params", metavar="KEY=VALUE")
    parser.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml does not match params.yaml")
    args = parser.parse_args()
    if args.set_params:
        try:
            graph.set_params(PARAMS, args.set_params)
        except ValueError as error:
            sys.exit(str(error))
    params = read_params(PARAMS)
    if args.check:
        if not graph.is_current(params):
            sys.exit(graph.stale_message())
        print("dvc.yaml matches dvc.template.yaml and params.yaml")
        return
    try:
        validate(params)
    except ParamsError as error:
        sys.exit(str(error))
    graph.DVC_YAML.write_text(graph.render(params))
    print(f"wrote dvc.yaml: {len(graph.items(params)['evaluations'])} runs")


if __name__ == "__main__":
    main()
