"""split: data/plays.parquet -> data/splits/{train,val,test,cold_test}.parquet, the time split of
the protocol params.yaml `split.protocol` names (audiorec.data.split)."""

import pandas as pd

from audiorec import paths
from audiorec.params import read_params, setup_logging
from audiorec.data.split import Protocol, split_statistics, time_split
from audiorec.io import write_json


def main() -> None:
    setup_logging()
    params = read_params()
    protocol = Protocol.from_params(params["split"])
    plays = pd.read_parquet(paths.PLAYS, columns=["user_id", "track_idx", "timestamp"])
    splits = time_split(plays, protocol, duplicate_plays=params["split"]["duplicate_plays"])
    paths.SPLITS.mkdir(parents=True, exist_ok=True)
    for name, frame in splits.items():
        frame.to_parquet(paths.SPLITS / f"{name}.parquet", index=False)
    write_json(split_statistics(splits, plays, protocol), paths.METRICS / "split.json")


if __name__ == "__main__":
    main()
