"""split: data/plays.parquet -> data/splits/{train,val,test,cold_test}.parquet (Music4All-Onion time split)."""
import pandas as pd

from audiorec import paths
from audiorec.config import load_params, setup_logging
from audiorec.data.split import split_statistics, time_split
from audiorec.io import write_json


def main() -> None:
    setup_logging()
    params = load_params()["split"]
    plays = pd.read_parquet(paths.PLAYS, columns=["user_id", "track_idx", "timestamp"])
    splits = time_split(
        plays,
        start_date=params["start_date"],
        test_date=params["test_date"],
        val_fraction=params["val_fraction"],
        seed=params["seed"],
        cold_start=params["cold_start"],
    )
    paths.SPLITS.mkdir(parents=True, exist_ok=True)
    for name, frame in splits.items():
        frame.to_parquet(paths.SPLITS / f"{name}.parquet", index=False)
    write_json(split_statistics(splits, plays, params["start_date"]), paths.METRICS / "split.json")


if __name__ == "__main__":
    main()
