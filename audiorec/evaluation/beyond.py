"""Beyond-accuracy metrics: popularity bias, novelty, intra-list diversity, accuracy per
popularity bucket (per user, for `audiorec.metrics.summarise`'s Student-t intervals and the
paired tests) and catalogue coverage and concentration (per run).

Each user's ranked list is deduplicated keeping first occurrences, as `audiorec.metrics`
does, and cut at k; a list may be shorter than k or empty. Every metric is vectorised over
users: the lists become one (users x max(ks)) array padded with `PAD`, so the cost is linear in
users x k, never users x tracks. Where rs_metrics defines a metric (popularity, surprisal,
coverage, hitrate, recall) the values here equal its own; rs_metrics loops over users in
Python, which at Music4All's 17,000 users would cost the evaluate stage more than the metrics
it already computes.

The evaluate stage builds one `Catalogue` (Catalogue.of: one pass over the train log for the
popularity, the buckets and every user's history popularity) and calls `split_metrics` per
split, which deduplicates the split's lists once for all its metrics; the public per-metric
functions give the same values on their own (tests/test_beyond.py).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from audiorec.data.popularity import gini
from audiorec.metrics import column, per_user_metrics

log = logging.getLogger(__name__)


def check_ks(ks: list[int]) -> None:
    if not ks or any(k <= 0 for k in ks):
        raise ValueError(f"evaluate.ks must be positive integers, got {ks}")


BUCKETS = ("head", "mid", "tail")
NOT_IN_CATALOGUE = -1
PAD = -1  # the slots of a list shorter than its array row
DIVERSITY_BATCH = 4096  # users per sparse product: about 15 MiB of arrays at k = 100, d = 128, sums in cache


def track_popularity(train: pd.DataFrame, n_tracks: int, n_train_users: int | None = None) -> np.ndarray:
    """The share of train users who played each track (rs_metrics.statistics.item_pop); 0 if none did.

    `train` has one row per (user, track) pair; `n_train_users`, its distinct users, is counted
    when not given."""
    listeners = np.bincount(train["track_idx"].to_numpy(), minlength=n_tracks).astype(np.float64)
    return listeners / max(train["user_id"].nunique() if n_train_users is None else n_train_users, 1)


def train_plays(train: pd.DataFrame, n_tracks: int) -> np.ndarray:
    """Train plays per track (the sum of `count`), float64."""
    return np.bincount(train["track_idx"].to_numpy(), weights=train["count"].to_numpy(), minlength=n_tracks)


def bucket_of_tracks(
    popularity_plays: np.ndarray, catalogue: np.ndarray, head_share: float, tail_share: float
) -> np.ndarray:
    """Each track's popularity bucket, an index into `BUCKETS`, over the whole index space.

    The `catalogue` tracks (the sorted train tracks a model ranks) are ordered by plays,
    most first, ties by track index (a stable sort of the sorted catalogue): the first
    ceil(head_share x n) are head (0), the last floor(tail_share x n) tail (2), the rest mid (1).
    Tracks outside the catalogue get `NOT_IN_CATALOGUE` (-1)."""
    if not (head_share > 0 and tail_share > 0 and head_share + tail_share <= 1):
        raise ValueError(
            f"evaluate.popularity_buckets: head ({head_share}) and tail ({tail_share}) must be positive shares "
            "of the catalogue that sum to at most 1; lower one of them (e.g. head 0.2, tail 0.5)"
        )
    n = len(catalogue)
    # The epsilon keeps 0.1 x 30 = 3.0000000000000004 a head of 3 tracks, not 4.
    n_head = math.ceil(head_share * n - 1e-9)
    n_tail = min(math.floor(tail_share * n + 1e-9), n - n_head)
    by_plays = catalogue[np.argsort(-popularity_plays[catalogue], kind="stable")]
    bucket = np.full(len(popularity_plays), NOT_IN_CATALOGUE, dtype=np.int64)
    bucket[by_plays] = 1
    bucket[by_plays[:n_head]] = 0
    bucket[by_plays[n - n_tail :]] = 2
    return bucket


def _padded(ranked: np.ndarray) -> np.ndarray:
    """The ranked lists (an object array of sequences) as rows of one array, `PAD` after the shorter ones."""
    lengths = np.fromiter(map(len, ranked), dtype=np.int64, count=len(ranked))
    padded = np.full((len(ranked), lengths.max(initial=0)), PAD, dtype=np.int64)
    if lengths.sum() > 0:
        # A boolean mask fills row by row, the order the lists concatenate in.
        padded[np.arange(padded.shape[1]) < lengths[:, None]] = np.concatenate(list(ranked))
    return padded


def _by_track(padded: np.ndarray) -> np.ndarray:
    """Each row's entries as track x width + position (unique in the row), sorted: by track, a
    track's earliest position first, `PAD` (-1) ahead of every track. A plain sort of these keys
    took 40 ms at Music4All's shape where a stable argsort of the tracks took 100 ms; int32,
    where the keys fit, is the width numpy sorts fastest."""
    width = padded.shape[1]
    keys = padded * width + np.arange(width)
    fits_int32 = (int(padded.max(initial=0)) + 1) * width < 2**31
    return np.sort(keys.astype(np.int32) if fits_int32 else keys, axis=1)


def _first_occurrences(padded: np.ndarray) -> np.ndarray:
    """Whether each entry is a track that does not occur earlier in its row (`PAD` never is)."""
    listed = padded != PAD
    tracks, positions = np.divmod(_by_track(padded), padded.shape[1])
    repeated = np.zeros(padded.shape, dtype=bool)
    repeated[:, 1:] = (tracks[:, 1:] == tracks[:, :-1]) & (tracks[:, 1:] != PAD)
    if not repeated.any():  # the rankers' lists: nothing to place back
        return listed
    first = np.empty_like(repeated)
    np.put_along_axis(first, positions, ~repeated, axis=1)
    return first & listed


def _top_lists(predictions: pd.DataFrame, users: np.ndarray, depth: int) -> np.ndarray:
    """(len(users), depth) int64: each user's first `depth` distinct tracks in rank order, `PAD`
    after a short list and for a user absent from `predictions`."""
    # A user listed twice keeps the last list, as per_user_metrics' dictionary does.
    ranked = predictions.drop_duplicates("user_id", keep="last")
    rows = pd.Index(users).get_indexer(ranked["user_id"])
    padded = _padded(ranked["track_idx"].to_numpy()[rows >= 0])
    first = _first_occurrences(padded)
    if np.array_equal(first, padded != PAD):  # no repeats, as the rankers write them
        compact = padded[:, :depth]
    else:
        # A stable sort of each row on "is a repeat" moves its first occurrences to the front, in rank order.
        front = np.argsort(~first, axis=1, kind="stable")[:, :depth]
        compact = np.where(np.take_along_axis(first, front, axis=1), np.take_along_axis(padded, front, axis=1), PAD)
    lists = np.full((len(users), depth), PAD, dtype=np.int64)
    lists[rows[rows >= 0], : compact.shape[1]] = compact
    return lists


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0."""
    out = np.full(numerator.shape, np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _list_means(per_track: np.ndarray, lists: np.ndarray, ks: list[int]) -> dict[int, np.ndarray]:
    """Each top-k list's mean of `per_track` over its tracks at every k; NaN for an empty list."""
    present = lists != PAD
    # One running sum serves every k, as a list's tracks precede its padding.
    running = np.cumsum(np.where(present, per_track[lists], 0.0), axis=1)  # PAD (-1) reads the last track: masked
    lengths = present.sum(axis=1)
    return {k: _ratio(running[:, k - 1], np.minimum(lengths, k).astype(np.float64)) for k in ks}


def _history_popularity(codes: np.ndarray, train_users: pd.Index, played: np.ndarray) -> pd.Series:
    """Each train user's mean popularity over their own train tracks, by user id, from each train
    pair's user (`codes`, positions in `train_users`) and its track's popularity (`played`)."""
    n = len(train_users)
    # Every train user has a pair, so no count is 0.
    return pd.Series(np.bincount(codes, weights=played, minlength=n) / np.bincount(codes, minlength=n), train_users)


def history_popularity(train: pd.DataFrame, popularity: np.ndarray) -> pd.Series:
    """Each train user's mean `popularity` over their own train tracks, by user id: popularity_lift's
    denominator. Its length, the number of train users, sets novelty's value for an unplayed track."""
    codes, train_users = pd.factorize(train["user_id"])
    return _history_popularity(codes, pd.Index(train_users), popularity[train["track_idx"].to_numpy()])


def _users_history(history: pd.Series, users: np.ndarray) -> np.ndarray:
    """`history` (history_popularity) of each of `users`, NaN for a user without train tracks."""
    rows = history.index.get_indexer(users)
    values = np.full(len(users), np.nan)
    values[rows >= 0] = history.to_numpy()[rows[rows >= 0]]
    return values


def _self_information(popularity: np.ndarray, n_train_users: int) -> np.ndarray:
    """-log2(popularity); an unplayed track gets log2(train users), as rs_metrics.surprisal fills it."""
    played = popularity > 0
    information = np.full(popularity.shape, math.log2(max(n_train_users, 1)))
    information[played] = -np.log2(popularity[played])
    return information


@dataclass(frozen=True)
class _Space:
    """Reference vectors for diversity, in their own precision (at least float32), and each one's
    inverse norm (0 for a zero vector): worked out once for every split of a stage."""

    vectors: np.ndarray
    inverse_norm: np.ndarray

    @classmethod
    def of(cls, reference_vectors: np.ndarray) -> "_Space":
        dtype = np.result_type(reference_vectors.dtype, np.float32)
        vectors = reference_vectors.astype(dtype, copy=False)
        norms = np.linalg.norm(vectors, axis=1)
        zero = norms == 0
        if zero.any():
            log.warning("%d of %d reference vectors are zero: cosine 0 with every track", zero.sum(), len(norms))
        return cls(vectors, np.divide(1, norms, out=np.zeros(len(norms), dtype=dtype), where=~zero))


def _diversity(lists: np.ndarray, space: _Space, ks: list[int]) -> dict[int, np.ndarray]:
    """Intra-list diversity at each k (see per_user_beyond) of `lists` (users x max(ks)), in
    batches of `DIVERSITY_BATCH` users.

    The sum of the cosines over the unordered pairs of unit vectors u_1..u_n is
    (|sum u_i|^2 - sum |u_i|^2) / 2, so each list needs only the sum of its unit vectors, not
    its (k x k) Gram matrix: k times less work. The sums are one sparse (users x tracks, k
    weights 1/|v| a row) product with the vectors per band of positions between two ks, taken in
    the vectors' own precision (float32 vectors: diversities good to about 1e-6)."""
    vectors, inverse_norm = space.vectors, space.inverse_norm
    bounds = [0, *sorted(set(ks))]
    diversity = {k: np.empty(len(lists)) for k in bounds[1:]}
    for start in range(0, len(lists), DIVERSITY_BATCH):
        top = lists[start : start + DIVERSITY_BATCH]
        present = top != PAD
        tracks = np.where(present, top, 0)
        # A padded slot weighs 0, so it adds nothing to the sums; a zero vector likewise.
        weights = np.where(present, inverse_norm[tracks], 0)
        summed = np.zeros((len(top), vectors.shape[1]), dtype=vectors.dtype)
        for low, k in zip(bounds[:-1], bounds[1:]):
            band = sparse.csr_array(
                (weights[:, low:k].ravel(), tracks[:, low:k].ravel(), np.arange(len(top) + 1) * (k - low)),
                shape=(len(top), len(vectors)),
            )
            # By columns, the product reads each track's vector once, in index order, into the
            # batch's sums, which stay in cache: twice as fast as by rows at Music4All's shape.
            summed += band.tocsc() @ vectors
            squared = np.einsum("bd,bd->b", summed, summed, dtype=np.float64)
            n = present[:, :k].sum(axis=1).astype(np.float64)
            pair_cosines = (squared - (weights[:, :k] > 0).sum(axis=1)) / 2
            diversity[k][start : start + len(top)] = 1 - _ratio(pair_cosines, n * (n - 1) / 2)
    return diversity


def _popularity_means(
    lists: np.ndarray, users: np.ndarray, popularity: np.ndarray, history: pd.Series, ks: list[int]
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """popularity@k, popularity_lift@k and novelty@k (see per_user_beyond) of `lists`, the lists of `users`."""
    mean_popularity = _list_means(popularity, lists, ks)
    novelty = _list_means(_self_information(popularity, len(history)), lists, ks)
    user_history = _users_history(history, users)
    return {k: (mean_popularity[k], mean_popularity[k] / user_history, novelty[k]) for k in ks}


def _beyond_columns(
    lists: np.ndarray,
    ks: list[int],
    space: _Space | None,
    popularity: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> dict[str, np.ndarray]:
    """per_user_beyond's columns in its order: `popularity` (_popularity_means; empty: none) and
    the diversity of `lists` in `space` (None: none) at each k."""
    diversity = _diversity(lists, space, ks) if space is not None else {}
    columns: dict[str, np.ndarray] = {}
    for k in ks:
        if k in popularity:
            names = (column("popularity", k), column("popularity_lift", k), column("novelty", k))
            columns |= dict(zip(names, popularity[k]))
        if k in diversity:
            columns[column("diversity", k)] = diversity[k]
    return columns


def per_user_beyond(
    predictions: pd.DataFrame,
    train: pd.DataFrame,
    popularity: np.ndarray,
    ks: list[int],
    users: np.ndarray,
    reference_vectors: np.ndarray | None = None,
    history: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per user of `users`, in that order (a user absent from `predictions` has an
    empty list), with at every k of the deduplicated top-k list:

    - popularity@k: the mean `popularity` (track_popularity) of its tracks;
    - popularity_lift@k: popularity@k over the mean popularity of the user's own train tracks
      (above 1: the list is more popular than the user's history);
    - novelty@k: the mean self-information -log2(popularity) of its tracks, a track nobody
      played in train counting log2(train users), as in rs_metrics.surprisal;
    - diversity@k (with `reference_vectors`, (n_tracks, d) rows by track_idx): the mean
      cosine distance 1 - cos over the unordered pairs of its tracks in that fixed space; a
      zero vector's cosine with any track is taken as 0 (distance 1).

    An empty list gives NaN everywhere, a user without train tracks NaN lift, a list of fewer
    than two tracks NaN diversity: the means and intervals run over the users that have one.
    `history` is history_popularity(train, popularity), worked out from `train` when not given.
    """
    check_ks(ks)
    lists = _top_lists(predictions, users, max(ks))
    if history is None:
        history = history_popularity(train, popularity)
    space = _Space.of(reference_vectors) if reference_vectors is not None else None
    columns = _beyond_columns(lists, ks, space, _popularity_means(lists, users, popularity, history, ks))
    return pd.DataFrame({"user_id": users} | columns)


def _bucket_columns(
    truth: pd.DataFrame, predictions: pd.DataFrame, bucket: np.ndarray, ks: list[int], users: np.ndarray
) -> dict[str, np.ndarray]:
    """bucket_accuracy's columns (but user_id): per_user_metrics' HitRate and Recall on each
    bucket's truth rows, NaN for a user of `users` without one."""
    labels = bucket[truth["track_idx"].to_numpy(dtype=np.int64)]
    by_bucket = [
        per_user_metrics(truth[labels == index], predictions, ks, ("hitrate", "recall")).set_index("user_id")
        for index in range(len(BUCKETS))
    ]
    columns: dict[str, np.ndarray] = {}
    for k in ks:
        for name, values in zip(BUCKETS, by_bucket):
            for metric in ("hitrate", "recall"):
                columns[column(f"{metric}_{name}", k)] = values[column(metric, k)].reindex(users).to_numpy()
    return columns


def bucket_accuracy(
    truth: pd.DataFrame, predictions: pd.DataFrame, bucket: np.ndarray, ks: list[int], users: np.ndarray
) -> pd.DataFrame:
    """One row per user of `users`, in that order, with for each k and each bucket b of
    `BUCKETS` (`bucket`: bucket_of_tracks), over the user's truth tracks in b only:

    - hitrate_<b>@k: 1 if any of them is in the deduplicated top-k list, else 0;
    - recall_<b>@k: the share of them in the top-k list (rs_metrics' recall, not divided by
      min(k, their number));

    per_user_metrics on the truth rows of b.

    Both are NaN for a user without a truth track in b, so the means, intervals and paired tests
    run over the users that have one. Truth tracks outside the catalogue count in no bucket."""
    check_ks(ks)
    return pd.DataFrame({"user_id": users} | _bucket_columns(truth, predictions, bucket, ks, users))


def catalogue_metrics(predictions: pd.DataFrame, catalogue: np.ndarray, ks: list[int]) -> dict[str, float]:
    """Over all the lists of `predictions`, at each k:

    - coverage@k: the share of `catalogue` tracks in at least one deduplicated top-k list
      (rs_metrics.coverage);
    - gini@k: the Gini coefficient (`gini`) of the number of top-k lists each catalogue track is
      in, a track in none counting 0: 0 when all are recommended equally often, towards 1 when
      the lists concentrate on few tracks.

    NaN for an empty catalogue."""
    check_ks(ks)
    return _catalogue_metrics(_top_lists(predictions, pd.unique(predictions["user_id"]), max(ks)), catalogue, ks)


def _catalogue_metrics(lists: np.ndarray, catalogue: np.ndarray, ks: list[int]) -> dict[str, float]:
    """catalogue_metrics over `lists`, every listed user's (_top_lists)."""
    n_tracks = max(int(catalogue.max(initial=-1)), int(lists.max(initial=-1))) + 1
    metrics: dict[str, float] = {}
    for k in ks:
        top = lists[:, :k]
        in_lists = np.bincount(top[top != PAD], minlength=n_tracks)[catalogue]
        metrics[column("coverage", k)] = float(np.mean(in_lists > 0)) if len(catalogue) else float("nan")
        metrics[column("gini", k)] = gini(in_lists)
    return metrics


def catalogue_file(per_user_file: Path) -> Path:
    """Where a run's per-run metrics (coverage, Gini) go: beside its per-user file
    (`data/eval/<backend>/<run>.parquet` -> `<run>.catalogue.json`), which the report reads."""
    return per_user_file.with_suffix(".catalogue.json")


@dataclass(frozen=True)
class Catalogue:
    """What every split's beyond-accuracy metrics read from train, worked out once a stage: the
    per-track popularity (share of train users) and buckets, the hot catalogue (the train tracks,
    which the hot lists rank), each train user's history popularity (history_popularity) and the
    reference space of `evaluate.diversity_space` (None: no diversity column)."""

    popularity: np.ndarray
    bucket: np.ndarray
    hot_tracks: np.ndarray
    history: pd.Series
    space: _Space | None

    @classmethod
    def of(
        cls,
        train: pd.DataFrame,
        n_tracks: int,
        head_share: float,
        tail_share: float,
        reference_vectors: np.ndarray | None = None,
    ) -> "Catalogue":
        plays = train_plays(train, n_tracks)
        hot_tracks = np.flatnonzero(plays > 0)
        bucket = bucket_of_tracks(plays, hot_tracks, head_share, tail_share)
        # One pass over the train users serves the popularity's denominator and every history.
        codes, train_users = pd.factorize(train["user_id"])
        popularity = track_popularity(train, n_tracks, len(train_users))
        history = _history_popularity(codes, pd.Index(train_users), popularity[train["track_idx"].to_numpy()])
        space = _Space.of(reference_vectors) if reference_vectors is not None else None
        return cls(popularity, bucket, hot_tracks, history, space)


def _lists_of(lists: np.ndarray, listed: np.ndarray, users: np.ndarray) -> np.ndarray:
    """The rows of `lists` (the lists of the users `listed`) for `users`, all `PAD` for a user
    without a list: what _top_lists gives for `users`, without ranking the lists again."""
    rows = pd.Index(listed).get_indexer(users)
    picked = np.full((len(users), lists.shape[1]), PAD, dtype=lists.dtype)
    picked[rows >= 0] = lists[rows[rows >= 0]]
    return picked


def split_metrics(
    catalogue: Catalogue, split: str, truth: pd.DataFrame, predictions: pd.DataFrame, ks: list[int], users: np.ndarray
) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """The beyond-accuracy metrics of one split's lists: per user of `users` (user_id, then each
    column at each k) and per run ({"coverage@k": {"value": ...}, "gini@k": ...}).

    The hot splits (val, test) measure popularity, novelty, diversity and accuracy per bucket of
    their truth, over the train catalogue; the cold split (its lists rank the cold tracks of its
    truth) only diversity and coverage, over the cold tracks. The same as per_user_beyond,
    bucket_accuracy and catalogue_metrics, with the lists deduplicated once for all three."""
    check_ks(ks)
    listed = pd.unique(predictions["user_id"])
    every_list = _top_lists(predictions, listed, max(ks))
    lists = _lists_of(every_list, listed, users)
    if split == "cold":
        # Every cold track has no train plays: popularity, its lift and novelty say nothing.
        ranked_tracks = np.unique(truth["track_idx"].to_numpy())
        columns = _beyond_columns(lists, ks, catalogue.space, {})
    else:
        ranked_tracks = catalogue.hot_tracks
        popularity = _popularity_means(lists, users, catalogue.popularity, catalogue.history, ks)
        columns = _beyond_columns(lists, ks, catalogue.space, popularity)
        columns |= _bucket_columns(truth, predictions, catalogue.bucket, ks, users)
    by_run = {name: {"value": value} for name, value in _catalogue_metrics(every_list, ranked_tracks, ks).items()}
    return pd.DataFrame({"user_id": users} | columns), by_run
