"""code: check params.yaml and dvc.yaml, then write data/code/<unit>.json for every stage.

Each file holds the md5 of every repository file its stage runs (its import closure,
audiorec.workflow.closure) and, for an extraction, what the backend reads beyond the
repository (a plugin's package, a precomputed backend's files). A stage depends on its file,
so it re-runs exactly when code it runs changes. This stage depends on all the code and all of
params.yaml: it runs whenever either changes, in about a second, and its files change only
for the stages whose code changed.
"""

import shutil
from pathlib import Path

from audiorec import paths
from audiorec.backends.sources import fingerprint, hashes
from audiorec.config import ParamsError, validate
from audiorec.io import write_json
from audiorec.params import read_params, setup_logging
from audiorec.workflow import graph


def main() -> None:
    setup_logging()
    params = read_params()
    try:
        validate(params)
    except ParamsError as error:
        raise SystemExit(str(error))
    if not graph.is_current(params):
        raise SystemExit(graph.stale_message())
    shutil.rmtree(paths.CODE, ignore_errors=True)
    for unit, files in graph.code_files(params).items():
        manifest = {"files": hashes([Path(name) for name in files])}
        if unit.startswith("extract-"):
            manifest["backend"] = fingerprint(unit.removeprefix("extract-"))
        write_json(manifest, graph.code_unit_path(unit))


if __name__ == "__main__":
    main()
