"""split: data/plays.parquet -> data/splits/{train,val,test,cold_test}.parquet, the time split of
the protocol params.yaml `split.protocol` names (audiorec.data.split); metrics/split.json: each
split's size and the train split's popularity skew (audiorec.data.popularity)."""

import pandas as pd

from audiorec import paths
from audiorec.params import read_params, setup_logging
from audiorec.data.popularity import skew
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
    statistics = split_statistics(splits, plays, protocol) | {"train_popularity": skew(splits["train"])}
    write_json(statistics, paths.METRICS / "split.json")


if __name__ == "__main__":
    main()
