"""synthesize: the built-in dataset (audio, hidden styles and a listening log in Music4All's
layout) -> data/raw/. Its log is placed around the split protocol's test date, so either
protocol runs on it. With dataset.source: music4all, data/raw/ only names the copy in use,
so switching protocols re-reads nothing."""

import shutil

from audiorec import paths
from audiorec.params import read_params, setup_logging
from audiorec.data.split import Protocol
from audiorec.data.synthetic import SyntheticConfig, generate
from audiorec.io import write_json


def main() -> None:
    setup_logging()
    params = read_params()
    dataset = params["dataset"]
    shutil.rmtree(paths.RAW, ignore_errors=True)
    paths.RAW.mkdir(parents=True)
    if dataset["source"] == "synthetic":
        config = SyntheticConfig(**params["synthetic"][dataset["size"]], seed=dataset["seed"])
        generate(paths.RAW, config, test_date=Protocol.from_params(params["split"]).test_date)
    else:
        write_json(
            {"audio_dir": dataset["audio_dir"], "listening_log": dataset["listening_log"]}, paths.RAW / "source.json"
        )


if __name__ == "__main__":
    main()
