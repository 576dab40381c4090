"""dataset: the synthetic data in data/raw/ or a Music4All copy -> data/tracks.parquet (the
catalogue: the log's tracks that have audio), data/plays.parquet, metrics/dataset.json."""

from audiorec import paths
from audiorec.params import read_params, setup_logging
from audiorec.data.music4all import read_dataset
from audiorec.data.synthetic import AUDIO_DIR, LOG_NAME
from audiorec.io import write_json


def main() -> None:
    setup_logging()
    dataset = read_params()["dataset"]
    if dataset["source"] == "synthetic":
        audio_dir, listening_log = paths.RAW / AUDIO_DIR, paths.RAW / LOG_NAME
    else:
        audio_dir, listening_log = dataset["audio_dir"], dataset["listening_log"]
    tracks, plays, stats = read_dataset(
        audio_dir, listening_log, chunk_mb=dataset["chunk_mb"], on_bad_row=dataset["on_bad_row"]
    )
    paths.TRACKS.parent.mkdir(parents=True, exist_ok=True)
    tracks.to_parquet(paths.TRACKS, index=False)
    plays.to_parquet(paths.PLAYS, index=False)
    write_json(stats, paths.METRICS / "dataset.json")


if __name__ == "__main__":
    main()
