"""dataset: synthetic or Music4All files -> data/tracks.parquet, data/plays.parquet."""
import shutil

from audiorec import paths
from audiorec.config import load_params, setup_logging
from audiorec.data.music4all import read_plays, read_tracks
from audiorec.data.synthetic import AUDIO_DIR, LOG_NAME, SyntheticConfig, generate
from audiorec.io import write_json


def main() -> None:
    setup_logging()
    params = load_params()
    dataset = params["dataset"]
    shutil.rmtree(paths.RAW, ignore_errors=True)
    paths.RAW.mkdir(parents=True)
    if dataset["source"] == "synthetic":
        generate(paths.RAW, SyntheticConfig(**params["synthetic"][dataset["size"]], seed=dataset["seed"]))
        audio_dir, listening_log = paths.RAW / AUDIO_DIR, paths.RAW / LOG_NAME
    else:
        audio_dir, listening_log = dataset["audio_dir"], dataset["listening_log"]
        write_json({"audio_dir": str(audio_dir), "listening_log": str(listening_log)}, paths.RAW / "source.json")
    tracks = read_tracks(audio_dir)
    plays, stats = read_plays(listening_log, tracks, chunk_mb=dataset["chunk_mb"], on_bad_row=dataset["on_bad_row"])
    tracks.to_parquet(paths.TRACKS, index=False)
    plays.to_parquet(paths.PLAYS, index=False)
    write_json(stats, paths.METRICS / "dataset.json")


if __name__ == "__main__":
    main()
