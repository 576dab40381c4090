"""Check params.yaml against its schema (audiorec/settings/) in about a second, before any work.

python -m stages.params               # check; exit 1 with the key and the fix
python -m stages.params --doc         # also write docs/params.md from the schema and the values
python -m stages.params --doc --check # exit 1 if docs/params.md is not what --doc would write
"""

import argparse
import sys
from pathlib import Path

from audiorec.config import ParamsError, section_class, validate
from audiorec.params import read_params
from audiorec.settings import reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--doc", action="store_true", help=f"write {reference.PAGE} from the schema and the values")
    parser.add_argument(
        "--check", action="store_true", help=f"with --doc: fail if {reference.PAGE} is stale instead of writing it"
    )
    args = parser.parse_args()
    params = read_params(args.params)
    try:
        validate(params)
    except ParamsError as error:
        sys.exit(str(error))
    if not args.doc:
        print(f"{args.params}: every section is valid")
        return
    text = reference.page(params, section_class)
    page = Path(reference.PAGE)
    if args.check:
        if page.read_text() != text:
            sys.exit(f"{page} is stale: run `python -m stages.params --doc` and commit it")
        return
    page.write_text(text)
    print(f"wrote {page}")


if __name__ == "__main__":
    main()
