"""split: data/plays.parquet -> data/splits/{train,val,test,cold_test}.parquet, the time split of
the protocol params.yaml `split.protocol` names (audiorec.data.split)."""
import pandas as pd

from audiorec import paths
from audiorec.config import load_params, setup_logging, split_protocol
from audiorec.data.split import split_statistics, time_split
from audiorec.io import write_json


def main() -> None:
    setup_logging()
    params = load_params()
    protocol = split_protocol(params)
    plays = pd.read_parquet(paths.PLAYS, columns=["user_id", "track_idx", "timestamp"])
    splits = time_split(plays, protocol, duplicate_plays=params["split"]["duplicate_plays"])
    paths.SPLITS.mkdir(parents=True, exist_ok=True)
    for name, frame in splits.items():
        frame.to_parquet(paths.SPLITS / f"{name}.parquet", index=False)
    write_json(split_statistics(splits, plays, protocol), paths.METRICS / "split.json")


if __name__ == "__main__":
    main()
