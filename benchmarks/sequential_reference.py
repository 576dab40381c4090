"""A library reference for audiorec's BERT4Rec: RecTools' ID-only BERT4Rec and SASRec on audiorec's own split.

Outside the DVC pipeline. It trains RecTools' `BERT4RecModel` and `SASRecModel` (items by a learned ID
table only) on `train.parquet`, ranks the val and test users exactly as audiorec does, and prints their
HitRate@50 and NDCG@50 (mean ± 95% Student-t half-width over users, audiorec.metrics) next to audiorec's
own BERT4Rec on a learned item table (the `bert4rec` baseline, backend `none`, read from
`metrics/none/bert4rec.seed0.json`). The question it answers: does audiorec's sequential model do as
well as a maintained implementation of the same model on the same data, or is it broken?

Usage (one command, with the MAIN venv; it runs the fits in the reference venv itself):

    .venv/bin/python benchmarks/sequential_reference.py [--max-epochs 30] [--eval-every 1] \\
        [--models bert4rec sasrec] [--threads 1] [--data-dir data/splits] [--out data/reference/sequential.md]

The reference venv (RecTools needs pytorch-lightning and pins numpy<2 / pandas<3, so it cannot share
audiorec's venv; torch first, from the CPU wheel on disk, so nothing pulls a CUDA build):

    python3.11 -m venv .venv-reference
    .venv-reference/bin/pip install torch==2.13.0
    .venv-reference/bin/pip install -r benchmarks/reference-requirements.txt

How it runs. The main venv reads the split and writes the library's inputs to a scratch folder
(`--scratch`, default `<out folder>/sequential_runs/`): the train interactions in RecTools' columns, the
val and test users to rank, the candidate tracks, and the settings. For each model it then runs this
same file with `--fit MODEL` under `--reference-python`, which trains for `--max-epochs` epochs and,
after every `--eval-every` epochs, writes the ranked lists of all val and test users
(`MODEL/epoch_NNN.parquet`: split, user_id, track_idx list) and its timings (`MODEL/fit.json`). Back in
the main venv, each epoch's val lists are scored; the epoch with the best val NDCG@50 (ties: the
earliest) is chosen, and only that epoch's test lists are scored. Test never picks anything.

Why RecTools. It is maintained (MTS's recommender library; 0.19.0, of 2026, here), its BERT4Rec and
SASRec are the same transformer family as audiorec's model (bidirectional masked-item training with a
full softmax over the item table; SASRec the causal next-item variant), MTS benchmarks them on public
data sets (the 0.11 release notes; the RecSys'25 eSASRec paper compares transformer variants built
from these models), and its fit / recommend API takes a user-item log with timestamps and ranks
among a given item whitelist with the user's seen items filtered, which is audiorec's protocol.
It installs beside torch 2.13.0 (its torch extra asks for torch<3 and pytorch-lightning<=2.5.2).

Epochs on validation, by training on. `fit_partial` continues the same Lightning trainer, the same
Adam state and the same model; each call trains `--eval-every` more epochs, so the lists of epoch N
come from a model trained N epochs in one run, and no refit per epoch count is needed. The random
state (torch, numpy, random) is saved before each ranking and restored after, so evaluating does not
change what is trained. audiorec's baseline was also chosen on val NDCG@50 (its early stopping keeps
the best epoch), so both sides pick epochs the same way; audiorec's also lowers its learning rate on
a val plateau, RecTools keeps it constant.

Settings. Where audiorec's `bert4rec:` section (params.yaml, through `audiorec.params.model_params`,
so `model_settings: study` is honoured) has a RecTools counterpart it is mapped; the rest are
RecTools' defaults:

| audiorec `bert4rec:` (demo) | RecTools BERT4RecModel | RecTools SASRecModel |
| --- | --- | --- |
| max_seq_len 300 | session_max_len min(300, longest train history + 1) | the same |
| n_layers 2, n_heads 2 | n_blocks 2, n_heads 2 | n_blocks 2, n_heads 2 |
| learned_dim 128 (hidden_dim 0) | n_factors 128 | n_factors 128 |
| intermediate_dim 256 | ff_factors_multiplier 2 (256 / 128) | unmapped: its feed-forward is n_factors wide |
| dropout 0.0 | dropout_rate 0.0 | dropout_rate 0.0 |
| mlm_probability 0.2 | mask_prob 0.2 | unmapped: next-item targets |
| lr 0.001, batch_size 32 | lr 0.001, batch_size 32 | lr 0.001, batch_size 32 |
| loss softmax, vocabulary train | loss softmax: the train tracks + PAD, MASK | loss softmax: the train tracks + PAD |
| positions from_start (the original's) | learnable positions counted from the end | the same |
| predict_seq_len 0: last 299 + mask | recommend: last session_max_len − 1 + MASK | recommend: last session_max_len |
| max_epochs, min_epochs, patience | best val NDCG@50 in 1..--max-epochs | the same |
| scheduler_patience 2 (on plateau) | none: constant lr | none: constant lr |
| mask_at_least_one false: a sequence with nothing masked adds no loss | the same | — |
| force_last_item_masking_prob 0.0 | none (0) | — |
| special_tokens table: mask, padding are item-table rows | PAD and MASK are ID-table rows | PAD is an ID-table row |
| normalize_items false: the raw inner product | default: distance dot | default: distance dot |
| batching by_length | default: shuffled, every sequence padded to 200 | the same |
| BertModel: post-LN, N(0, 0.02) init | default: pre-LN GELU, Xavier-normal init | default: SASRec block, causal |
| Adam betas (0.9, 0.999) | default: Adam betas (0.9, 0.98) | the same |
| a masked position is the mask token | default: 80/10/10 mask / random track / kept | — |
| every train user is trained on | default train_min_user_interactions 2 | the same |
| the learned item table | ID-only: item_net_block_types (IdEmbeddingsItemNet,) | the same |

RecTools does not train on one-track users (they still get lists): 4 of 1,000 on the split at hand
when this was written, and no track was lost; the notes under the table say how many were trained on.

The protocol, as audiorec's (audiorec.data.split, audiorec.evaluation.ranking, audiorec.models):
a user's input is their train tracks in order of first play (`timestamp`; ties by track index, as
`audiorec.models.bert4rec.user_sequences`, which RecTools' stable sort by datetime keeps because the
interactions are handed over in that order; the fit checks it); every interaction weighs 1 (play
counts are not used, as audiorec's BERT4Rec ignores them); the candidates are the tracks of train
(`hot_candidates`); a user's own train tracks are never ranked (RecTools' `filter_viewed`, as
audiorec's `top_k_unseen`); lists of params.yaml `train.top_k` (100); val users are the users of
`val.parquet` scored against it, test users those of `test.parquet` (different users, all in train);
HitRate@50 and NDCG@50 by `audiorec.metrics.per_user_metrics` / `summarise`. The lists are checked
before scoring: unique tracks, candidates only, none of the user's train tracks, `top_k` long.

Output: a Markdown table (printed, and written to `--out`) and a JSON beside it (same name, `.json`)
with the rows, each epoch's val scores, the chosen epochs, the settings, the versions and the
protocol notes. "fit s" is the training time up to the chosen epoch (ranking excluded); the JSON has
every epoch's. audiorec's fit time is not recorded by the pipeline, so its cell is empty.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
K = 50  # the cutoff of the reported metrics (audiorec.models.base.VAL_K)
MODELS = ("bert4rec", "sasrec")
LABELS = {"bert4rec": "RecTools BERT4Rec", "sasrec": "RecTools SASRec"}
BASELINE_LABEL = "audiorec BERT4Rec (learned item table)"
SPLITS = ("val", "test")
TRUTH_FILES = {"val": "val.parquet", "test": "test.parquet"}


# --------------------------------------------------------------------------------------------
# The protocol glue: pure pandas, importable in both venvs.


def library_interactions(train: pd.DataFrame) -> pd.DataFrame:
    """audiorec's train pairs in RecTools' columns, every weight 1, in the order audiorec's
    sequences take: by user, first-play time, then track index. RecTools sorts by datetime with a
    stable sort, so ties keep this order."""
    ordered = train.sort_values(["user_id", "timestamp", "track_idx"], kind="stable")
    return pd.DataFrame(
        {
            "user_id": ordered["user_id"].astype(str).to_numpy(),
            "item_id": ordered["track_idx"].to_numpy(dtype=np.int64),
            "weight": np.ones(len(ordered), dtype=np.float32),
            "datetime": ordered["timestamp"].to_numpy(),
        }
    )


def expected_sequences(train: pd.DataFrame) -> dict[str, list[int]]:
    """Each user's train tracks in order of first play, ties by track index: what audiorec's
    BERT4Rec reads (audiorec.models.bert4rec.user_sequences), as lists."""
    ordered = train.sort_values(["user_id", "timestamp", "track_idx"], kind="stable")
    return {str(user): [int(item) for item in group] for user, group in ordered.groupby("user_id")["track_idx"]}


def candidate_tracks(train: pd.DataFrame) -> np.ndarray:
    """The tracks of train, sorted: audiorec.evaluation.ranking.hot_candidates."""
    return np.sort(pd.unique(train["track_idx"].to_numpy())).astype(np.int64)


def evaluation_targets(train: pd.DataFrame, truths: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """`split, user_id`: each split's truth users with train tracks, sorted, as rank_splits lists them."""
    known = set(train["user_id"].astype(str))
    frames = []
    for split, truth in truths.items():
        users = np.sort(truth["user_id"].astype(str).unique())
        users = [user for user in users if user in known]
        frames.append(pd.DataFrame({"split": split, "user_id": users}))
    return pd.concat(frames, ignore_index=True)


def lists_from_recommendations(reco: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """RecTools' `user_id, item_id, rank` rows as `split, user_id, track_idx` (ranked list) per target."""
    ordered = reco.sort_values(["user_id", "rank"], kind="stable")
    ranked = {str(user): items.to_numpy(dtype=np.int64) for user, items in ordered.groupby("user_id")["item_id"]}
    empty = np.array([], dtype=np.int64)
    return pd.DataFrame(
        {
            "split": targets["split"].to_numpy(),
            "user_id": targets["user_id"].to_numpy(),
            "track_idx": [ranked.get(user, empty) for user in targets["user_id"]],
        }
    )


def check_lists(lists: pd.DataFrame, train: pd.DataFrame, candidates: np.ndarray, top_k: int) -> None:
    """Raise unless every list holds unique candidate tracks, none of its user's train tracks, and
    `top_k` of them (or every unseen candidate, when there are fewer)."""
    seen = {str(user): set(items.tolist()) for user, items in train.groupby("user_id")["track_idx"]}
    allowed = set(np.asarray(candidates).tolist())
    for user, items in zip(lists["user_id"], lists["track_idx"]):
        items = [int(item) for item in items]
        own = seen.get(str(user), set())
        if len(set(items)) != len(items):
            raise ValueError(f"user {user}: a track is listed twice")
        if not allowed.issuperset(items):
            raise ValueError(f"user {user}: {sorted(set(items) - allowed)[:5]} are not train tracks (candidates)")
        if own.intersection(items):
            raise ValueError(f"user {user}: their own train tracks {sorted(own.intersection(items))[:5]} are listed")
        expected = min(top_k, len(allowed - own))
        if len(items) != expected:
            raise ValueError(f"user {user}: {len(items)} tracks listed, expected {expected}")


def pick_epoch(curve: Sequence[dict], metric: str = f"ndcg@{K}") -> int:
    """The epoch with the best val `metric` (ties: the earliest); `curve` has `epoch` and `val` (means)."""
    if not curve:
        raise ValueError("no epoch was evaluated")
    best = max(curve, key=lambda point: (point["val"][metric], -point["epoch"]))
    return int(best["epoch"])


def cell(summary: dict | None) -> str:
    if summary is None:
        return "—"
    return f"{summary['mean']:.4f} ± {summary['ci95']:.4f}"


def within_or_better(ours: dict, library: dict) -> bool:
    """audiorec's mean at least the library's mean minus the library's 95% half-width."""
    return ours["mean"] >= library["mean"] - library["ci95"]


def paired_difference(ours: pd.Series, library: pd.Series) -> dict:
    """audiorec minus the library on the users both scored (per-user values indexed by user id):
    `summarise`'s mean and 95% Student-t half-width of the paired differences. Two models ranked
    for the same users differ less from user to user than either's own spread, so this interval
    is the one that says whether they differ."""
    from audiorec.metrics import summarise

    common = ours.index.intersection(library.index)
    differences = (ours.loc[common] - library.loc[common]).to_numpy(dtype=float)
    return summarise(pd.DataFrame({"user_id": common, "difference": differences}))["difference"]


def paired_lines(ours: pd.DataFrame, rows: Sequence[dict]) -> list[str]:
    """One line per library model: audiorec minus it, per user, on val NDCG@50 and test HitRate@50."""
    lines = []
    for row in rows:
        cells = []
        for split, metric, title in (COLUMNS[0], COLUMNS[2]):
            mine = ours[ours["split"] == split].set_index("user_id")[metric]
            theirs = row["per_user"][split].set_index("user_id")[metric]
            difference = paired_difference(mine, theirs)
            cells.append(f"{title} {difference['mean']:+.4f} ± {difference['ci95']:.4f} ({difference['users']} users)")
        lines.append(f"- audiorec minus {row['label']}, paired on the same users: " + "; ".join(cells))
    return lines


COLUMNS = [
    ("val", f"ndcg@{K}", f"val NDCG@{K}"),
    ("val", f"hitrate@{K}", f"val HitRate@{K}"),
    ("test", f"hitrate@{K}", f"test HitRate@{K}"),
    ("test", f"ndcg@{K}", f"test NDCG@{K}"),
]


def markdown_table(rows: Sequence[dict]) -> str:
    """Rows have `label`, `val`/`test` (metric -> summary), `users` (val / test) and `fit_seconds`."""
    header = ["model", *(title for _, _, title in COLUMNS), "users (val / test)", "fit s"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        cells = [row["label"]]
        cells += [cell(row.get(split, {}).get(metric)) for split, metric, _ in COLUMNS]
        cells.append(f"{row['users'].get('val', '—')} / {row['users'].get('test', '—')}")
        seconds = row.get("fit_seconds")
        cells.append("—" if seconds is None else f"{seconds:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(ours: dict, libraries: dict[str, dict]) -> tuple[str, bool]:
    """The closing line: is audiorec's test HitRate@50 within each library model's interval or above it?"""
    metric = f"hitrate@{K}"
    if not libraries:
        return "No library model was run: no verdict.", False
    parts, every = [], True
    for label, summary in libraries.items():
        ok = within_or_better(ours[metric], summary[metric])
        every &= ok
        floor = summary[metric]["mean"] - summary[metric]["ci95"]
        parts.append(
            f"{label} {cell(summary[metric])}: {'yes' if ok else 'NO'} "
            f"({ours[metric]['mean']:.4f} {'>=' if ok else '<'} {floor:.4f})"
        )
    line = (
        f"Verdict: audiorec's test HitRate@{K} ({ours[metric]['mean']:.4f}) is within the library's interval "
        f"or better: {'YES' if every else 'NO'} — " + "; ".join(parts) + "."
    )
    return line, every


def library_settings(bert4rec: dict, model: str) -> dict:
    """RecTools keyword arguments (plain values) from audiorec's `bert4rec` settings, for `model`."""
    width = int(bert4rec.get("hidden_dim") or bert4rec["learned_dim"])
    common = {
        "session_max_len": int(bert4rec["max_seq_len"]),
        "n_blocks": int(bert4rec["n_layers"]),
        "n_heads": int(bert4rec["n_heads"]),
        "n_factors": width,
        "dropout_rate": float(bert4rec["dropout"]),
        "lr": float(bert4rec["lr"]),
        "batch_size": int(bert4rec["batch_size"]),
        "loss": "softmax",
    }
    if model == "sasrec":
        return common
    if model != "bert4rec":
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    intermediate = int(bert4rec["intermediate_dim"])
    if intermediate % width:
        raise ValueError(f"intermediate_dim {intermediate} is not a multiple of the width {width}: RecTools cannot")
    return common | {
        "mask_prob": float(bert4rec["mlm_probability"]),
        "transformer_layers_kwargs": {"ff_factors_multiplier": intermediate // width},
    }


def users_mismatch(baseline_users: dict, targets: pd.DataFrame) -> str | None:
    """None when audiorec's metrics counted the users this split evaluates, else what differs: the
    metrics file is then from another split (params.yaml changed since the last `dvc repro`)."""
    counts = targets["split"].value_counts()
    differ = {
        split: (baseline_users.get(split), int(counts.get(split, 0)))
        for split in SPLITS
        if baseline_users.get(split) != int(counts.get(split, 0))
    }
    if not differ:
        return None
    text = ", ".join(f"{split} {ours} vs {here}" for split, (ours, here) in differ.items())
    return f"audiorec's metrics counted other users than this split has ({text}): not the same split"


def thread_env(threads: int) -> dict[str, str]:
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
    return {name: str(threads) for name in names}


# --------------------------------------------------------------------------------------------
# The library side: runs in the reference venv (`--fit MODEL`).


def _trainer(max_epochs: int):
    """A quiet, deterministic CPU trainer without checkpoints or loggers (RecTools' `get_trainer_func`)."""
    from pytorch_lightning import Trainer

    return Trainer(
        max_epochs=max_epochs,
        min_epochs=max_epochs,
        deterministic=True,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def build_model(model: str, settings: dict, seed: int, eval_every: int):
    from rectools.models import BERT4RecModel, SASRecModel
    from rectools.models.nn.item_net import IdEmbeddingsItemNet

    cls = {"bert4rec": BERT4RecModel, "sasrec": SASRecModel}[model]
    return cls(
        **settings,
        epochs=eval_every,
        deterministic=True,
        item_net_block_types=(IdEmbeddingsItemNet,),
        get_trainer_func=_trainer,
        get_trainer_func_kwargs={"max_epochs": eval_every},
        recommend_torch_device="cpu",
    )


class _KeptRandomState:
    """Saves torch's, numpy's and random's generators on entry and restores them on exit."""

    def __enter__(self):
        import random

        import torch

        self.states = (torch.get_rng_state(), np.random.get_state(), random.getstate())
        return self

    def __exit__(self, *exc) -> None:
        import random

        import torch

        torch.set_rng_state(self.states[0])
        np.random.set_state(self.states[1])
        random.setstate(self.states[2])


def check_library_sequences(dataset, train_frame: pd.DataFrame) -> None:
    """RecTools' own sequences of the dataset (its SequenceDataset, the input of training and of
    recommend) must be audiorec's: each user's tracks in order of first play, ties by track index."""
    from rectools.models.nn.transformers.data_preparator import SequenceDataset

    raw = dataset.get_raw_interactions()
    sequences = SequenceDataset.from_interactions(raw, sort_users=True)
    users = sorted(raw["user_id"].unique())
    expected = expected_sequences(
        train_frame.rename(columns={"item_id": "track_idx", "datetime": "timestamp"})[
            ["user_id", "track_idx", "timestamp"]
        ]
    )
    for user, session in zip(users, sequences.sessions):
        if [int(item) for item in session] != expected[str(user)]:
            raise AssertionError(f"RecTools orders user {user}'s tracks differently from audiorec")


def fit(model: str, scratch: Path) -> None:
    import logging
    import warnings

    import torch

    config = json.loads((scratch / "inputs" / "config.json").read_text())
    torch.set_num_threads(config["threads"])
    from pytorch_lightning import seed_everything
    from rectools.dataset import Dataset

    import rectools

    # Lightning's banners (accelerators, "max_epochs reached") at every fit_partial, and warnings
    # that say nothing about this use: a val loop it is not given, workers, deprecations.
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for message in (
        "does not have many workers",
        "target users were considered cold",
        "You defined a `validation_step`",
        "`isinstance\\(treespec, LeafSpec\\)` is deprecated",
        "Pydantic serializer warnings",
        "unique with argument that is not",
    ):
        warnings.filterwarnings("ignore", message=f".*{message}")

    interactions = pd.read_parquet(scratch / "inputs" / "interactions.parquet")
    targets = pd.read_parquet(scratch / "inputs" / "targets.parquet")
    candidates = np.load(scratch / "inputs" / "candidates.npy")
    dataset = Dataset.construct(interactions)
    check_library_sequences(dataset, interactions)
    out = scratch / model
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    seed_everything(config["seed"], workers=True)
    settings = config["settings"][model]
    recommender = build_model(model, settings, config["seed"], config["eval_every"])
    users = pd.unique(targets["user_id"])
    epochs, epoch = [], 0
    while epoch < config["max_epochs"]:
        step = min(config["eval_every"], config["max_epochs"] - epoch)
        started = time.perf_counter()
        recommender.fit_partial(dataset, min_epochs=step, max_epochs=step)
        train_seconds = time.perf_counter() - started
        epoch += step
        loss = recommender.fit_trainer.callback_metrics.get("train_loss")
        started = time.perf_counter()
        with _KeptRandomState(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reco = recommender.recommend(
                users, dataset, k=config["top_k"], filter_viewed=True, items_to_recommend=candidates
            )
        lists = lists_from_recommendations(reco, targets)
        lists.to_parquet(out / f"epoch_{epoch:03d}.parquet", index=False)
        rank_seconds = time.perf_counter() - started
        record = {
            "epoch": epoch,
            "epochs_trained": step,
            "train_seconds": train_seconds,
            "rank_seconds": rank_seconds,
            "train_loss": None if loss is None else float(loss),
        }
        epochs.append(record)
        print(
            f"{model}: epoch {epoch}: {train_seconds:.1f} s training ({train_seconds / step:.1f} s/epoch), "
            f"{rank_seconds:.1f} s ranking, loss {record['train_loss']}",
            flush=True,
        )
    trained_users = recommender.data_preparator.train_dataset.user_id_map.size
    known_items = len(recommender.data_preparator.get_known_item_ids())
    summary = {
        "model": model,
        "class": type(recommender).__name__,
        "settings": settings,
        "epochs": epochs,
        "trained_users": int(trained_users),
        "users": int(interactions["user_id"].nunique()),
        "known_items": int(known_items),
        "candidates": int(len(candidates)),
        "versions": {"rectools": rectools.__version__, "torch": torch.__version__, **_lightning_version()},
        "threads": config["threads"],
    }
    (out / "fit.json").write_text(json.dumps(summary, indent=2))


def _lightning_version() -> dict:
    import pytorch_lightning

    return {"pytorch_lightning": pytorch_lightning.__version__}


# --------------------------------------------------------------------------------------------
# The orchestration: runs in the main venv (audiorec's params, ranking and metrics).


def read_split(data_dir: Path) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    train = pd.read_parquet(data_dir / "train.parquet", columns=["user_id", "track_idx", "timestamp"])
    truths = {
        split: pd.read_parquet(data_dir / name, columns=["user_id", "track_idx"]) for split, name in TRUTH_FILES.items()
    }
    return train, truths


def prepare_inputs(
    scratch: Path, train: pd.DataFrame, truths: dict[str, pd.DataFrame], config: dict
) -> tuple[pd.DataFrame, np.ndarray]:
    from audiorec.evaluation.ranking import hot_candidates

    candidates = np.asarray(hot_candidates(train), dtype=np.int64)
    if not np.array_equal(candidates, candidate_tracks(train)):  # the glue must say what audiorec says
        raise AssertionError("candidate_tracks disagrees with audiorec's hot_candidates")
    targets = evaluation_targets(train, truths)
    inputs = scratch / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    library_interactions(train).to_parquet(inputs / "interactions.parquet", index=False)
    targets.to_parquet(inputs / "targets.parquet", index=False)
    np.save(inputs / "candidates.npy", candidates)
    (inputs / "config.json").write_text(json.dumps(config, indent=2))
    return targets, candidates


def run_fit(python: Path, model: str, scratch: Path, threads: int) -> None:
    command = [str(python), str(Path(__file__).resolve()), "--fit", model, "--scratch", str(scratch)]
    env = os.environ | thread_env(threads) | {"PYTHONHASHSEED": "0"}
    subprocess.run(command, check=True, env=env, cwd=REPO)


def score_model(
    model: str, scratch: Path, train: pd.DataFrame, truths: dict[str, pd.DataFrame], candidates: np.ndarray, top_k: int
) -> dict:
    """Val at every evaluated epoch, the chosen epoch, and test at that epoch only."""
    from audiorec.metrics import per_user_metrics, summarise

    run = json.loads((scratch / model / "fit.json").read_text())
    curve = []
    for record in run["epochs"]:
        lists = pd.read_parquet(scratch / model / f"epoch_{record['epoch']:03d}.parquet")
        val = lists[lists["split"] == "val"]
        check_lists(val, train, candidates, top_k)
        summary = summarise(per_user_metrics(truths["val"], val, [K], metrics=("hitrate", "ndcg")))
        curve.append({"epoch": record["epoch"], "val": {name: value["mean"] for name, value in summary.items()}})
        record["val_summary"] = summary
    chosen = pick_epoch(curve)
    at = next(record for record in run["epochs"] if record["epoch"] == chosen)
    lists = pd.read_parquet(scratch / model / f"epoch_{chosen:03d}.parquet")
    test = lists[lists["split"] == "test"]
    check_lists(test, train, candidates, top_k)
    test_per_user = per_user_metrics(truths["test"], test, [K], metrics=("hitrate", "ndcg"))
    test_summary = summarise(test_per_user)
    val_per_user = per_user_metrics(truths["val"], lists[lists["split"] == "val"], [K], metrics=("hitrate", "ndcg"))
    fit_seconds = sum(record["train_seconds"] for record in run["epochs"] if record["epoch"] <= chosen)
    return {
        "label": f"{LABELS[model]} (epochs chosen on val: {chosen})",
        "model": model,
        "epoch": chosen,
        "val": at["val_summary"],
        "test": test_summary,
        "users": {"val": at["val_summary"][f"ndcg@{K}"]["users"], "test": test_summary[f"ndcg@{K}"]["users"]},
        "fit_seconds": fit_seconds,
        "per_user": {"val": val_per_user, "test": test_per_user},  # at the chosen epoch; not written to the JSON
        "curve": curve,
        "run": {key: value for key, value in run.items() if key != "epochs"}
        | {"epochs": [{k: v for k, v in r.items() if k != "val_summary"} for r in run["epochs"]]},
    }


def baseline_row(metrics_path: Path, train_log: Path | None) -> dict:
    metrics = json.loads(metrics_path.read_text())
    label = BASELINE_LABEL
    if train_log is not None and train_log.exists():
        log = json.loads(train_log.read_text())
        if "best_epoch" in log:
            label += f" (epoch chosen on val: {log['best_epoch']} of {int(log.get('step', 0)) + 1})"
    keep = (f"hitrate@{K}", f"ndcg@{K}")
    return {
        "label": label,
        "model": "audiorec-bert4rec",
        "val": {name: metrics["val"][name] for name in keep},
        "test": {name: metrics["test"][name] for name in keep},
        "users": {split: metrics[split][f"hitrate@{K}"]["users"] for split in SPLITS},
        "fit_seconds": None,
        "source": str(metrics_path),
    }


def per_epoch_lines(rows: Sequence[dict]) -> list[str]:
    lines = []
    for row in rows:
        if "run" not in row:
            continue
        epochs = row["run"]["epochs"]
        trained = sum(record["epochs_trained"] for record in epochs)
        train_s = sum(record["train_seconds"] for record in epochs)
        rank_s = sum(record["rank_seconds"] for record in epochs) / len(epochs)
        lines.append(
            f"- {LABELS[row['model']]}: {trained} epochs trained, {train_s / trained:.1f} s per epoch of training, "
            f"{rank_s:.1f} s per ranking of the val and test users; trained on {row['run']['trained_users']} of "
            f"{row['run']['users']} train users, {row['run']['known_items']} of {row['run']['candidates']} "
            f"candidate tracks known; val NDCG@{K} by epoch: "
            + ", ".join(f"{point['epoch']}: {point['val'][f'ndcg@{K}']:.4f}" for point in row["curve"])
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data/splits"))
    parser.add_argument("--out", type=Path, default=Path("data/reference/sequential.md"))
    parser.add_argument("--scratch", type=Path, help="lists and fit logs (default: <out folder>/sequential_runs)")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--eval-every", type=int, default=1)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads of the fits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reuse-fits",
        action="store_true",
        help="score the library's lists already in --scratch (same split and settings) instead of fitting again: "
        "to compare them with a new audiorec run",
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--baseline", type=Path, default=Path("metrics/none/bert4rec.seed0.json"))
    parser.add_argument(
        "--baseline-per-user",
        type=Path,
        default=Path("data/eval/none/bert4rec.seed0.parquet"),
        help="audiorec's per-user metrics of that run (the evaluate stage's), for the paired comparison",
    )
    parser.add_argument("--reference-python", type=Path, default=REPO / ".venv-reference" / "bin" / "python")
    parser.add_argument("--fit", choices=MODELS, help=argparse.SUPPRESS)  # internal: the reference venv's side
    args = parser.parse_args(argv)
    scratch = args.scratch or args.out.parent / "sequential_runs"
    if args.fit:
        fit(args.fit, scratch)
        return
    if args.max_epochs < 1 or args.eval_every < 1:
        parser.error("--max-epochs and --eval-every must be positive")
    if not args.reference_python.exists():
        parser.error(f"{args.reference_python} not found: create the reference venv (see this file's docstring)")

    from audiorec.params import model_params, read_params

    params = read_params(args.params)
    bert4rec = model_params(params, "bert4rec")
    top_k = int(params["train"]["top_k"])
    config = {
        "seed": args.seed,
        "max_epochs": args.max_epochs,
        "eval_every": args.eval_every,
        "top_k": top_k,
        "threads": args.threads,
    }
    train, truths = read_split(args.data_dir)
    # RecTools pads every sequence to session_max_len; beyond the longest history (+ 1, BERT4Rec's mask)
    # the padding changes nothing but the time, so the window is cut there, never below a user's history.
    longest = int(train.groupby("user_id").size().max()) + 1
    config["settings"] = {
        model: library_settings(bert4rec | {"max_seq_len": min(int(bert4rec["max_seq_len"]), longest)}, model)
        for model in args.models
    }
    targets, candidates = prepare_inputs(scratch, train, truths, config)
    started = time.perf_counter()
    train_log = args.baseline.parent.parent / "train" / "none" / "bert4rec.seed0" / "metrics.json"
    rows = [baseline_row(args.baseline, train_log)]
    mismatch = users_mismatch(rows[0]["users"], targets)
    if mismatch:
        print(f"WARNING: {mismatch}", file=sys.stderr)
    for model in args.models:
        if not (args.reuse_fits and (scratch / model / "fit.json").is_file()):
            run_fit(args.reference_python, model, scratch, args.threads)
        rows.append(score_model(model, scratch, train, truths, candidates, top_k))
    table = markdown_table(rows)
    line, ok = verdict(rows[0]["test"], {row["label"]: row["test"] for row in rows[1:]})
    notes = per_epoch_lines(rows) + ([f"- WARNING: {mismatch}"] if mismatch else [])
    if args.baseline_per_user.is_file():
        notes += paired_lines(pd.read_parquet(args.baseline_per_user), rows[1:])
    else:
        notes.append(f"- no paired comparison: {args.baseline_per_user} is missing (dvc pull or dvc repro it)")
    text = "\n".join([table, "", line, "", *notes]) + "\n"
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    report = {
        "rows": [{key: value for key, value in row.items() if key != "per_user"} for row in rows],
        "verdict": {"line": line, "within_or_better": ok},
        "warning": mismatch,
        "config": config,
        "audiorec_bert4rec_settings": bert4rec,
        "data_dir": str(args.data_dir),
        "seconds": time.perf_counter() - started,
        "protocol": {
            "input": "each user's train tracks by first-play timestamp, ties by track index; weights 1",
            "candidates": "tracks of train (audiorec hot_candidates)",
            "excluded": "the user's own train tracks (RecTools filter_viewed)",
            "top_k": top_k,
            "metrics": f"audiorec.metrics per_user_metrics/summarise at k={K}",
            "epoch_choice": f"best val ndcg@{K}, ties to the earliest; test scored at that epoch only",
        },
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=_json_default))
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if math.isnan(value) else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


if __name__ == "__main__":
    sys.exit(main())
