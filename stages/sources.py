"""sources: data/sources/<backend>.json for each backend in params.yaml, the hashes of what its
extraction depends on beyond the shared code (audiorec.backends.sources); extract@<backend>
depends on that file, so it re-runs exactly when its own module, package pin or data changes."""
from audiorec import paths
from audiorec.backends.sources import fingerprint
from audiorec.config import load_params, setup_logging
from audiorec.io import write_json


def main() -> None:
    setup_logging()
    for name in load_params()["backends"]:
        write_json(fingerprint(name), paths.source(name))


if __name__ == "__main__":
    main()
