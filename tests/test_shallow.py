"""The Shallow net: loss and sampling by hand, freezing, a planted-data run, persistence, retrieval."""

import logging
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from audiorec.models import shallow
from audiorec.models.shallow import (
    PositivePairs,
    ShallowRecommender,
    confidence,
    hinge_loss,
    sample_negatives,
)
from audiorec.settings.base import SettingsError
from model_settings import demo

FAST = {"batch_size": 64, "neg_samples": 5, "device": "cpu", "lr": 0.01}


class RecordingLive:
    """The parts of dvclive.Live that `fit` uses."""

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.steps = 0
        self.summary: dict[str, float] = {}

    def log_metric(self, name: str, value: float) -> None:
        self.history.setdefault(name, []).append(value)

    def next_step(self) -> None:
        self.steps += 1


def random_data(n_users=12, n_items=40, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    items = rng.normal(size=(n_items, dim)).astype(np.float32)
    rows = [
        (f"u{user:02d}", int(track))
        for user in range(n_users)
        for track in rng.choice(n_items, 3 + user, replace=False)
    ]
    train = pd.DataFrame(rows, columns=["user_id", "track_idx"]).assign(count=1)
    return items, train


def planted_data(n_users=30, n_items=40, dim=8, seed=0):
    """Two track clusters; user u likes cluster u % 2 only: 8 of its tracks in train, the other 12 in val.

    With every unseen own-cluster track in val, ranking the own cluster first is
    exactly what maximises val NDCG@50, whatever the order within the cluster.
    """
    rng = np.random.default_rng(seed)
    cluster = np.arange(n_items) % 2
    centres = np.eye(dim, dtype=np.float32)[:2] * 3
    items = (centres[cluster] + rng.normal(scale=0.5, size=(n_items, dim))).astype(np.float32)
    train, val = [], []
    for user in range(n_users):
        liked = rng.permutation(np.flatnonzero(cluster == user % 2))
        train += [(f"u{user:02d}", int(track)) for track in liked[:8]]
        val += [(f"u{user:02d}", int(track)) for track in liked[8:]]
    frame = lambda rows: pd.DataFrame(rows, columns=["user_id", "track_idx"]).assign(count=1)  # noqa: E731
    return items, frame(train), frame(val), cluster


def test_hinge_loss_by_hand():
    positive = torch.tensor([0.9, 0.1])
    negative = torch.tensor([[0.5, 0.8], [0.0, -0.3]])
    # margin 0.2: max(0, .2-.9+.5)=0, max(0, .2-.9+.8)=.1, max(0, .2-.1+0)=.1, max(0, .2-.1-.3)=0
    assert hinge_loss(positive, negative, 0.2).item() == pytest.approx((0 + 0.1 + 0.1 + 0) / 4)
    # weights 1 and 3 scale each positive's row: (0 + .1) * 1 + (.1 + 0) * 3 = .4 over 4 terms
    assert hinge_loss(positive, negative, 0.2, torch.tensor([1.0, 3.0])).item() == pytest.approx(0.4 / 4)


def test_confidence_weight_by_hand():
    # 1 + 2 log(1 + 0) = 1; 1 + 2 log(1 + (e - 1)) = 3
    assert confidence(torch.tensor([0.0, math.e - 1])).tolist() == pytest.approx([1.0, 3.0])


@pytest.mark.parametrize("sample_type", ["item", "user"])
def test_negatives_stay_in_range_and_avoid_positives(sample_type):
    n_users, n_items = 7, 11  # different sizes, so drawing from the wrong range shows
    grid_users, grid_items = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
    dense = (grid_users + grid_items) % 3 != 0  # two thirds of all pairs are positive
    users = torch.from_numpy(grid_users[dense])
    items = torch.from_numpy(grid_items[dense])
    codes = torch.unique(users * n_items + items)
    generator = torch.Generator().manual_seed(0)
    size = n_users if sample_type == "item" else n_items

    plain = sample_negatives(users, items, n_users, n_items, 50, sample_type, generator)
    assert plain.min() >= 0 and plain.max() == size - 1

    positives = PositivePairs(codes, n_users * n_items)
    negatives = sample_negatives(users, items, n_users, n_items, 50, sample_type, generator, positives)
    assert negatives.shape == (len(users), 50)
    assert negatives.min() >= 0 and negatives.max() < size
    if sample_type == "item":
        drawn = negatives * n_items + items[:, None]
    else:
        drawn = users[:, None] * n_items + negatives
    assert not torch.isin(drawn, codes).any()


@pytest.mark.parametrize("dense_limit", [PositivePairs.DENSE_LIMIT, 0], ids=["bitmap", "sorted-codes"])
def test_positive_pairs_agree_with_a_set_lookup(monkeypatch, dense_limit):
    monkeypatch.setattr(PositivePairs, "DENSE_LIMIT", dense_limit)
    rng = np.random.default_rng(3)
    codes = torch.from_numpy(rng.integers(0, 5000, 800))
    queries = torch.from_numpy(rng.integers(0, 5000, 3000))
    positives = PositivePairs(codes, 5000)
    assert (positives.bitmap is None) == (dense_limit == 0)
    expected = np.isin(queries.numpy(), codes.numpy())
    np.testing.assert_array_equal(positives.contains(queries).numpy(), expected)
    assert not PositivePairs(codes[:0], 5000).contains(queries).any()


@pytest.mark.parametrize("item_freeze", [True, False])
@pytest.mark.parametrize("user_freeze", [True, False])
def test_freeze_flags_after_one_step(item_freeze, user_freeze):
    items, train = random_data()
    model = ShallowRecommender(demo("shallow", item_freeze=item_freeze, user_freeze=user_freeze, **FAST))
    model._build(items, train)
    pairs = model._pairs(train)
    before = {name: tensor.clone() for name, tensor in model.net.state_dict().items()}
    model._loss(pairs, torch.arange(len(pairs)), model.generator, None).backward()
    model.optimizer.step()
    after = model.net.state_dict()
    assert torch.equal(before["items.weight"], after["items.weight"]) == item_freeze
    assert torch.equal(before["users.weight"], after["users.weight"]) == user_freeze
    assert not torch.equal(before["tower.weight"], after["tower.weight"])  # the shared layer always trains
    assert model.net.items.weight.requires_grad != item_freeze
    assert model.net.users.weight.requires_grad != user_freeze


@pytest.mark.parametrize("item_freeze", [True, False])
def test_l2_adds_the_squared_parameters_to_the_loss_as_the_original_did(item_freeze):
    """loss = hinge + l2 * (sum of every parameter squared, frozen tables included), so the
    gradient of a trained parameter gains 2 * l2 * its value (Adam's weight decay would add 1x)."""
    items, train = random_data()
    plain = ShallowRecommender(demo("shallow", item_freeze=item_freeze, **FAST))
    decayed = ShallowRecommender(demo("shallow", item_freeze=item_freeze, l2=0.01, **FAST))
    for model in (plain, decayed):
        model._build(items, train)
    pairs = plain._pairs(train)
    batch = torch.arange(len(pairs))
    hinge = plain._loss(pairs, batch, torch.Generator().manual_seed(5), None)
    total = decayed._loss(pairs, batch, torch.Generator().manual_seed(5), None)
    squares = sum(float((tensor.double() ** 2).sum()) for tensor in decayed.net.state_dict().values())
    assert total.item() == pytest.approx(hinge.item() + 0.01 * squares, rel=1e-5)
    hinge.backward()
    total.backward()
    weight = decayed.net.tower.weight
    torch.testing.assert_close(
        weight.grad, plain.net.tower.weight.grad + 2 * 0.01 * weight.detach(), rtol=1e-4, atol=1e-6
    )


def test_fit_leaves_the_callers_embeddings_alone():
    items, train = random_data()
    original = items.copy()
    ShallowRecommender(demo("shallow", item_freeze=False, max_epochs=2, **FAST)).fit(items, train)
    assert np.array_equal(items, original)


@pytest.mark.parametrize("variant", ["cosine", "interaction"])
def test_planted_clusters_are_learned(variant):
    items, train, val, cluster = planted_data()
    live = RecordingLive()
    # Random user vectors (user_init=False): the cluster preference has to be learned, not copied from the init.
    # Negatives that are never true pairs and stopping on val NDCG@50 (the options, not params.yaml's
    # original-code defaults): on 32 toy tracks a drawn negative is often a true pair.
    options = dict(user_init=False, max_epochs=25, stop_on="ndcg", exclude_positives=True)
    model = ShallowRecommender(demo("shallow", variant=variant, **options, **{**FAST, "lr": 0.02}))
    model.fit(items, train, val=val, live=live)
    assert set(live.history) == {"train/loss", "val/loss", "val/hitrate@50", "val/ndcg@50", "lr"}
    assert live.steps == len(live.history["train/loss"])
    assert live.history["val/loss"][-1] < live.history["val/loss"][0]
    ndcg = live.history["val/ndcg@50"]
    assert live.summary == {"best_epoch": 1 + int(np.argmax(ndcg)), "best_val_ndcg@50": max(ndcg)}
    assert model.epoch == live.summary["best_epoch"]
    ranked = model.recommend(sorted(train["user_id"].unique()), top_k=5)
    own = np.array(
        [(cluster[tracks] == int(user[1:]) % 2).mean() for user, tracks in zip(ranked["user_id"], ranked["track_idx"])]
    )
    if variant == "interaction":
        # On this toy data the un-normalised ReLU tower can zero a whole cluster's representations
        # for some seeds (dying ReLU: seed 1 puts 78% own-cluster tracks in the top 5, seeds 0, 2 and 3
        # all of them), so every list being pure would be seed luck. Ranking at chance puts
        # 12 / 32 = 37.5% there (each user's unseen tracks: 12 of their cluster, 20 of the other).
        assert own.mean() >= 0.75, own
    else:
        assert (own == 1).all(), own


@pytest.mark.parametrize(
    "options",
    [
        {"variant": "cosine", "sample_type": "item", "item_freeze": True},
        # A trained item table is saved in the checkpoint instead of coming back from the caller's embeddings.
        {"variant": "interaction", "sample_type": "user", "item_freeze": False, "use_confidence": True, "l2": 1e-4},
    ],
)
def test_save_load_round_trip(tmp_path, options):
    items, train = random_data()
    train["count"] = np.arange(len(train)) % 5 + 1
    model = ShallowRecommender(demo("shallow", max_epochs=3, **options, **FAST)).fit(items, train)
    model.save(tmp_path)
    users = sorted(train["user_id"].unique())
    loaded = ShallowRecommender.load(tmp_path, items)
    expected = model.recommend(users, top_k=10)
    actual = loaded.recommend(users, top_k=10)
    assert expected["user_id"].tolist() == actual["user_id"].tolist()
    for left, right in zip(expected["track_idx"], actual["track_idx"]):
        assert left.tolist() == right.tolist()
    user_vectors = np.load(tmp_path / "user_representations.npy")
    item_vectors = np.load(tmp_path / "item_representations.npy")
    assert user_vectors.shape[0] == len(users) and item_vectors.shape[0] == len(items)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert {"epoch", "model_state_dict", "optimizer_state_dict", "loss"} <= set(checkpoint)
    assert checkpoint["epoch"] == 3
    # The config is the settings and the seed; the loaded model is rebuilt from it.
    assert checkpoint["config"] == {**model.settings.model_dump(), "seed": 0} == model.config()
    assert loaded.settings == model.settings and loaded.seed == model.seed


def test_load_refuses_another_hidden_dim(tmp_path):
    items, train = random_data()
    ShallowRecommender(demo("shallow", max_epochs=1, **FAST)).fit(items, train).save(tmp_path)
    with pytest.raises(ValueError, match=r"shallow\.hidden_dim=4 .* hidden_dim=0"):
        ShallowRecommender.load(tmp_path, items, hidden_dim=4)


@pytest.mark.parametrize("variant", ["cosine", "interaction"])
def test_recommend_exactly_k_unseen_in_model_score_order(variant):
    items, train = random_data(n_users=12, n_items=40)
    model = ShallowRecommender(demo("shallow", variant=variant, hidden_dim=5, max_epochs=2, **FAST)).fit(items, train)
    users = sorted(train["user_id"].unique())
    ranked = model.recommend(users, top_k=30)
    seen = train.groupby("user_id")["track_idx"].apply(set)
    all_items = torch.arange(len(items))
    for user, tracks in zip(ranked["user_id"], ranked["track_idx"]):
        unseen = len(items) - len(seen[user])
        assert len(tracks) == min(30, unseen)  # the last users have seen more than 10 of the 40 tracks
        assert len(set(tracks.tolist())) == len(tracks)
        assert not set(tracks.tolist()) & seen[user]
        # Ranked as the model itself scores: the returned scores are the best unseen scores, in order.
        with torch.no_grad():
            row = torch.tensor([users.index(user)])
            scores = model.net.score(model.net.represent_users(row), model.net.represent_items(all_items)).numpy()
        scores[list(seen[user])] = -np.inf
        np.testing.assert_allclose(scores[tracks], np.sort(scores)[::-1][: len(tracks)], rtol=1e-5, atol=1e-6)


def test_unknown_user_and_bad_params_are_named():
    items, train = random_data()
    model = ShallowRecommender(demo("shallow", max_epochs=1, **FAST)).fit(items, train)
    with pytest.raises(KeyError, match="nobody"):
        model.recommend(["u00", "nobody"], top_k=3)
    # Bad values are refused when the settings are built (test_settings_refuse_a_bad_value).


def reference_tower(rows: np.ndarray, weight: np.ndarray, bias: np.ndarray, normalize: bool) -> np.ndarray:
    """ReLU(W x + b), unit length for the cosine variant, in numpy."""
    out = np.maximum(rows @ weight.T + bias, 0.0)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12) if normalize else out


@pytest.mark.parametrize("variant", ["cosine", "interaction"])
def test_the_net_scores_as_the_paper_defines_them_computed_in_numpy(variant):
    """cosine: cos(ReLU(W u + b), ReLU(W i + b)); interaction: sigmoid(v . (ReLU(W u + b) * ReLU(W i + b)) + c),
    in every way the net computes a score: pairwise, and against candidate rows in both of its paths."""
    items, train = random_data(n_users=12, n_items=40, dim=6)
    model = ShallowRecommender(demo("shallow", variant=variant, hidden_dim=3, **FAST))
    model._build(items, train)
    net = model.net
    assert net.tower.out_features == 3  # hidden_dim sets the width of the shared layer
    assert ("readout.weight" in net.state_dict()) == (variant == "interaction")
    weight, bias = net.tower.weight.detach().numpy(), net.tower.bias.detach().numpy()
    users = reference_tower(net.users.weight.detach().numpy(), weight, bias, variant == "cosine")
    tracks = reference_tower(items, weight, bias, variant == "cosine")
    products = users[:, None, :] * tracks[None, :, :]
    if variant == "cosine":
        expected = products.sum(-1)
    else:
        v, c = net.readout.weight.detach().numpy()[0], net.readout.bias.item()
        expected = 1 / (1 + np.exp(-(products @ v + c)))
    with torch.no_grad():
        all_users, all_items = torch.arange(12), torch.arange(40)
        pairwise = net.score(net.represent_users(all_users)[:, None], net.represent_items(all_items)[None])
        np.testing.assert_allclose(pairwise.numpy(), expected, rtol=1e-5, atol=1e-6)
        # Candidate rows: few distinct ones (all-pairs product) and many distinct ones (per-row gather).
        anchors = net.represent_users(all_users)
        few = torch.tensor([[0, 1], [1, 0]]).repeat(6, 1)
        many = torch.arange(36).reshape(12, 3)
        for candidates in (few, many):
            scores = net.candidate_scores(anchors, net.items, candidates)
            np.testing.assert_allclose(
                scores.numpy(), np.take_along_axis(expected, candidates.numpy(), 1), rtol=1e-5, atol=1e-6
            )
    # Retrieval vectors rank as the model scores: their inner products order each user's tracks as `expected`.
    user_vectors, item_vectors = model._retrieval_vectors(np.arange(12))
    assert user_vectors.shape == (12, 3) and item_vectors.shape == (40, 3)
    inner = user_vectors @ item_vectors.T
    for row in range(12):
        np.testing.assert_array_equal(
            np.argsort(-inner[row], kind="stable")[:5], np.argsort(-expected[row], kind="stable")[:5]
        )


def test_users_start_as_the_mean_of_their_train_tracks_by_default():
    items, train = random_data()
    model = ShallowRecommender(demo("shallow", **FAST))
    model._build(items, train)
    means = train.groupby("user_id")["track_idx"].apply(lambda tracks: items[tracks.to_numpy()].mean(axis=0))
    expected = np.stack([means[user] for user in model.user_ids])
    np.testing.assert_allclose(model.net.users.weight.detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_the_loss_is_the_hinge_over_the_pair_and_its_drawn_negatives():
    """For both sample types: the scores computed in numpy, the negatives sample_negatives draws from the same seed."""
    items, train = random_data()
    for sample_type in ("item", "user"):
        model = ShallowRecommender(demo("shallow", sample_type=sample_type, margin=0.7, **FAST))
        model._build(items, train)
        pairs = model._pairs(train)
        batch = torch.arange(len(pairs))
        loss = model._loss(pairs, batch, torch.Generator().manual_seed(4), None).item()
        negatives = sample_negatives(
            pairs.users, pairs.items, model.n_users, model.n_items, 5, sample_type, torch.Generator().manual_seed(4)
        ).numpy()
        net = model.net
        weight, bias = net.tower.weight.detach().numpy(), net.tower.bias.detach().numpy()
        users = reference_tower(net.users.weight.detach().numpy(), weight, bias, True)
        tracks = reference_tower(items, weight, bias, True)
        u, i = pairs.users.numpy(), pairs.items.numpy()
        positive = (users[u] * tracks[i]).sum(-1)
        if sample_type == "item":  # other users for the pair's track
            negative = np.einsum("bnd,bd->bn", users[negatives], tracks[i])
        else:  # other tracks for the pair's user
            negative = np.einsum("bnd,bd->bn", tracks[negatives], users[u])
        expected = np.maximum(0.0, 0.7 - positive[:, None] + negative).mean()
        assert loss == pytest.approx(expected, rel=1e-5), sample_type


def plain_autograd_loss(net, pairs, negatives: torch.Tensor, sample_type: str, margin: float) -> torch.Tensor:
    """The hinge loss as the paper writes it, in plain autograd: every row through F.relu and
    F.normalize, the candidates indexed, their products with the anchor summed."""

    def tower(rows: torch.Tensor) -> torch.Tensor:
        hidden = F.relu(net.tower(rows))
        return F.normalize(hidden, dim=-1) if net.readout is None else hidden

    users, tracks = tower(net.users.weight), tower(net.items.weight)
    if sample_type == "item":
        anchors, table, candidates = tracks[pairs.items], users, torch.cat([pairs.users[:, None], negatives], 1)
    else:
        anchors, table, candidates = users[pairs.users], tracks, torch.cat([pairs.items[:, None], negatives], 1)
    products = anchors[:, None] * table[candidates]
    scores = products.sum(-1) if net.readout is None else torch.sigmoid(net.readout(products)).squeeze(-1)
    return F.relu(margin - scores[:, :1] + scores[:, 1:]).mean()


@pytest.mark.parametrize("variant", ["cosine", "interaction"])
@pytest.mark.parametrize("sample_type", ["item", "user"])
@pytest.mark.parametrize("whole_table", [True, False], ids=["whole-table", "distinct-rows"])
@pytest.mark.parametrize("all_pairs", [False, True], ids=["per-candidate", "all-pairs"])
def test_the_fast_loss_has_the_plain_autograd_loss_and_gradients(
    monkeypatch, variant, sample_type, whole_table, all_pairs
):
    """The fused pieces (the layer over the whole table or the distinct rows, NormalizedReLU,
    GatheredDot's sampled product and embedding_bag gradients, or the one all-pairs product)
    against the plain formulation."""
    monkeypatch.setattr(shallow, "WHOLE_TABLE_DRAWS", 0 if whole_table else 10**9)
    monkeypatch.setattr(shallow, "ALL_PAIRS_ROWS_PER_CANDIDATE", 10**9 if all_pairs else 0)
    items, train = random_data(n_users=50, n_items=60, dim=4, seed=2)
    model = ShallowRecommender(
        demo("shallow", variant=variant, sample_type=sample_type, margin=0.5, item_freeze=False, **FAST)
    )
    model._build(items, train)
    with torch.no_grad():  # a nonzero readout bias and some users with every unit clipped
        model.net.tower.bias.normal_()
        model.net.users.weight[:3] = -10 * model.net.users.weight[:3].abs()
        if model.net.readout is not None:
            model.net.readout.bias.fill_(0.3)
    pairs = model._pairs(train)
    batch = torch.arange(len(pairs))
    net = model.net
    gradients = []
    for compute in ("fast", "plain"):
        net.zero_grad()
        if compute == "fast":
            loss = model._loss(pairs, batch, torch.Generator().manual_seed(4), None)
        else:
            negatives = sample_negatives(
                pairs.users, pairs.items, model.n_users, model.n_items, 5, sample_type, torch.Generator().manual_seed(4)
            )
            loss = plain_autograd_loss(net, pairs, negatives, sample_type, 0.5)
        loss.backward()
        gradients.append((loss.item(), {name: p.grad.clone() for name, p in net.named_parameters()}))
    (fast_loss, fast), (plain_loss, plain) = gradients
    assert fast_loss == pytest.approx(plain_loss, rel=1e-6) and plain_loss > 0
    assert set(fast) == set(plain) and all(gradient.abs().sum() > 0 for gradient in plain.values())
    for name in plain:
        torch.testing.assert_close(fast[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)


def test_play_counts_weight_the_loss_only_with_use_confidence():
    items, train = random_data()
    losses = {}
    for use_confidence in (False, True):
        for count in (0.0, math.e - 1):  # confidence 1 and 3
            model = (
                ShallowRecommender(demo("shallow", use_confidence=use_confidence, **FAST))
                if use_confidence
                else ShallowRecommender(demo("shallow", **FAST))
            )
            frame = train.assign(count=count)
            model._build(items, frame)
            pairs = model._pairs(frame)
            losses[use_confidence, count] = model._loss(
                pairs, torch.arange(len(pairs)), torch.Generator().manual_seed(9), None
            ).item()
    assert losses[False, 0.0] == pytest.approx(losses[False, math.e - 1])  # the default ignores counts
    assert losses[True, 0.0] == pytest.approx(losses[False, 0.0])  # weight 1
    assert losses[True, math.e - 1] == pytest.approx(3 * losses[True, 0.0], rel=1e-5)  # weight 3 on every pair


def test_an_epochs_train_loss_is_the_mean_over_all_pairs_however_they_are_batched():
    # Every track has the same audio vector, so every user starts at it too: all cosines are 1,
    # each hinge term is exactly the margin, and with lr 0 nothing moves during the epoch.
    items = np.ones((40, 6), np.float32)
    _, train = random_data()
    for batch_size in (7, 1000):  # 7: uneven batches (len(train) is not a multiple of 7)
        model = ShallowRecommender(demo("shallow", **{**FAST, "batch_size": batch_size}, margin=0.3))
        model._build(items, train)
        for group in model.optimizer.param_groups:  # lr 0, which the settings refuse (lr > 0)
            group["lr"] = 0.0
        assert len(train) % 7 and model._train_epoch(model._pairs(train), None) == pytest.approx(0.3, rel=1e-6)


def test_val_negatives_avoid_train_and_val_positives_unless_positives_may_be_drawn():
    items, train = random_data()
    val = pd.DataFrame({"user_id": ["u00", "u01", "stranger"], "track_idx": [5, 6, 7], "count": 1})
    for exclude in (True, False):
        model = ShallowRecommender(demo("shallow", exclude_positives=exclude, **FAST))
        model._build(items, train)
        pairs, truth, codes = model._validation_data(val, model._pairs(train))
        assert truth["user_id"].tolist() == ["u00", "u01"]  # the unknown user is left out
        if not exclude:
            assert codes is None
            continue
        rows = {user: row for row, user in enumerate(model.user_ids)}
        both = pd.concat([train, val.iloc[:2]])
        expected = sorted({rows[user] * 40 + track for user, track in zip(both["user_id"], both["track_idx"])})
        assert codes.codes.tolist() == expected
    with pytest.raises(
        ValueError, match="^val has no user with train interactions: nothing to validate the Shallow net on$"
    ):
        model._validation_data(val.iloc[2:], model._pairs(train))


def test_fit_hands_the_epoch_loop_its_settings(monkeypatch, record_epoch_loop):
    """The scheduler's mode and patience, the generator, resume directory and a fingerprint of the data."""
    from audiorec.models import shallow

    calls = record_epoch_loop(shallow)
    items, train = random_data()
    val = train.groupby("user_id").head(1)
    settings = dict(schedule_on="ndcg", stop_on="loss", scheduler_patience=3, patience=7, max_epochs=9, **FAST)
    model = ShallowRecommender(
        demo("shallow", exclude_positives=True, resume=True, **settings), checkpoint_dir="ckpt"
    ).fit(items, train, val=val)
    # resume off (the old constructor default; params.yaml's is on): no resume directory, even with a checkpoint_dir.
    ShallowRecommender(demo("shallow", exclude_positives=False, resume=False, **settings), checkpoint_dir="ckpt").fit(
        items, train, val=val
    )
    ShallowRecommender(demo("shallow", **settings)).fit(items, train, val=val.iloc[1:])
    ShallowRecommender(demo("shallow", **settings)).fit(items, train.iloc[1:], val=val)
    ShallowRecommender(demo("shallow", **settings)).fit(items * 2, train, val=val)
    first = calls[0]
    assert first["name"] == "shallow" and (first["patience"], first["max_epochs"]) == (7, 9)
    assert first["scheduler"].mode == "max" and first["scheduler"].patience == 3  # NDCG rises
    assert first["generator"] is model.generator
    assert (first["schedule_on"], first["stop_on"]) == ("val/ndcg@50", "val/loss")
    assert first["resume_dir"] == "ckpt" and calls[1]["resume_dir"] is None
    # The epoch's negatives avoid the train positives only with exclude_positives.
    positives = []
    monkeypatch.setattr(ShallowRecommender, "_train_epoch", lambda self, pairs, codes: positives.append(codes) or 0.0)
    first["train_epoch"](), calls[1]["train_epoch"]()
    assert isinstance(positives[0], PositivePairs) and positives[1] is None
    fingerprints = [call["fingerprint"] for call in calls]
    assert len(set(fingerprints)) == 5  # other settings, val, train or audio: another fingerprint


def test_redrawn_negatives_follow_the_callers_generator_and_a_full_user_is_logged(caplog):
    users, items = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 2])
    positives = PositivePairs(users * 4 + items, 8)
    draws = []
    for global_seed in (1, 2):  # torch's global generator must not matter
        torch.manual_seed(global_seed)
        draws.append(sample_negatives(users, items, 2, 4, 30, "user", torch.Generator().manual_seed(0), positives))
    assert torch.equal(draws[0], draws[1])
    # User 0 has played every track: its negatives cannot avoid positives; the cap ends the redraws.
    full = PositivePairs(torch.arange(4), 4)
    with caplog.at_level(logging.DEBUG, logger="audiorec.models.shallow"):
        sample_negatives(torch.tensor([0]), torch.tensor([0]), 1, 4, 3, "user", torch.Generator().manual_seed(0), full)
    assert caplog.messages == ["3 negatives may still be positives after 50 redraws"]


def test_positive_pairs_sorted_lookup_at_the_ends_and_the_bitmap_limit(monkeypatch):
    monkeypatch.setattr(PositivePairs, "DENSE_LIMIT", 10)
    assert PositivePairs(torch.tensor([2]), 10).bitmap is not None  # a grid of exactly the limit is dense
    sparse = PositivePairs(torch.tensor([5, 2]), 11)
    assert sparse.bitmap is None
    queries = torch.tensor([0, 1, 2, 3, 5, 6, 10])  # below, between, at and above the codes
    assert sparse.contains(queries).tolist() == [False, False, True, False, True, False, False]
    empty = PositivePairs(torch.tensor([], dtype=torch.int64), 11).contains(queries)
    assert empty.dtype == torch.bool and not empty.any()  # a mask, usable to index the pending draws


@pytest.mark.parametrize(
    "name, value, reason",
    [
        ("variant", "dot", "Input should be 'cosine' or 'interaction'"),
        ("sample_type", "both", "Input should be 'item' or 'user'"),
        ("stop_on", "auc", "Input should be 'ndcg' or 'loss'"),
        ("schedule_on", "auc", "Input should be 'ndcg' or 'loss'"),
        ("hidden_dim", -1, "Input should be greater than or equal to 0"),
        ("neg_samples", 0, "Input should be greater than or equal to 1"),
        ("batch_size", 0, "Input should be greater than or equal to 1"),
        ("max_epochs", 0, "Input should be greater than or equal to 1"),
        ("patience", 0, "Input should be greater than or equal to 1"),
        ("lr", 0.0, "Input should be greater than 0"),
        ("device", "tpu", "String should match pattern"),
    ],
)
def test_settings_refuse_a_bad_value(name, value, reason):
    """A bad value is refused when the settings are built, naming the file, the section's key and why."""
    with pytest.raises(
        SettingsError, match=rf"^params\.yaml: shallow\.{name}={re.escape(repr(value))}: {re.escape(reason)}"
    ):
        demo("shallow", **{name: value})


def test_errors_name_the_model_and_the_setting(tmp_path):
    items, train = random_data()
    model = ShallowRecommender(demo("shallow", max_epochs=1, **FAST)).fit(items, train)
    with pytest.raises(KeyError, match="the Shallow net cannot represent them"):
        model.recommend(["nobody"], top_k=3)
    model.save(tmp_path / "new" / "model")  # parents are created
    with pytest.raises(
        ValueError, match=r"^item embeddings have shape \(40, 5\), the checkpoint in .* was trained on \(40, 6\)$"
    ):
        ShallowRecommender.load(tmp_path / "new" / "model", items[:, :5])


def test_float64_embeddings_train_and_load_like_float32_ones(tmp_path):
    items, train = random_data()
    expected = ShallowRecommender(demo("shallow", max_epochs=2, **FAST)).fit(items, train).recommend(["u03"], top_k=5)
    model = ShallowRecommender(demo("shallow", max_epochs=2, **FAST)).fit(items.astype(np.float64), train)
    assert model.recommend(["u03"], top_k=5)["track_idx"].iloc[0].tolist() == expected["track_idx"].iloc[0].tolist()
    model.save(tmp_path)
    loaded = ShallowRecommender.load(tmp_path, items.astype(np.float64))
    assert loaded.recommend(["u03"], top_k=5)["track_idx"].iloc[0].tolist() == expected["track_idx"].iloc[0].tolist()
    # Candidates restrict the ranking to the tracks given.
    assert set(loaded.recommend(["u03"], top_k=5, candidates=np.array([1, 2, 3]))["track_idx"].iloc[0].tolist()) <= {
        1,
        2,
        3,
    }


def test_a_checkpoint_holding_arbitrary_objects_is_refused(tmp_path):
    import pickle

    items, train = random_data()
    ShallowRecommender(demo("shallow", max_epochs=1, **FAST)).fit(items, train).save(tmp_path)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    torch.save({**checkpoint, "extra": Unsafe()}, tmp_path / "checkpoint.pt")
    with pytest.raises(pickle.UnpicklingError):
        ShallowRecommender.load(tmp_path, items)


class Unsafe:
    """A class torch's weights-only unpickler does not allow."""


def redrawn_by_the_protocol(users, items, n_users, n_items, neg_samples, sample_type, generator, positive_set):
    """sample_negatives' definition, one draw at a time: all draws at once, then rounds that
    redraw the still-positive ones in order, each round one randint call of their count."""
    size = n_users if sample_type == "item" else n_items
    negatives = torch.randint(size, (len(users), neg_samples), generator=generator).tolist()

    def is_positive(row, drawn):
        pair = (drawn, int(items[row])) if sample_type == "item" else (int(users[row]), drawn)
        return pair in positive_set

    pending = [(row, j) for row in range(len(users)) for j in range(neg_samples) if is_positive(row, negatives[row][j])]
    for _ in range(shallow.RESAMPLE_ROUNDS):
        if not pending:
            break
        drawn = torch.randint(size, (len(pending),), generator=generator).tolist()
        for (row, j), value in zip(pending, drawn):
            negatives[row][j] = value
        pending = [(row, j) for (row, j), value in zip(pending, drawn) if is_positive(row, value)]
    return torch.tensor(negatives)


@pytest.mark.parametrize("sample_type", ["item", "user"])
@pytest.mark.parametrize("dense_limit", [PositivePairs.DENSE_LIMIT, 0], ids=["bitmap", "sorted-codes"])
def test_negatives_and_the_generators_state_follow_the_redraw_protocol_draw_for_draw(
    monkeypatch, sample_type, dense_limit
):
    """A popular track (or a user who played nearly everything) takes many rounds of redraws."""
    monkeypatch.setattr(PositivePairs, "DENSE_LIMIT", dense_limit)
    rng = np.random.default_rng(5)
    n_users, n_items = 40, 60
    played = rng.random((n_users, n_items)) < 0.3
    played[:, 0] = played[0, :] = True
    played[1, 1] = played[1, 2] = False  # the heavy anchor: two pairs left to draw
    users, items = (torch.from_numpy(index) for index in np.nonzero(played))
    positives = PositivePairs(users * n_items + items, n_users * n_items)
    positive_set = set(zip(users.tolist(), items.tolist()))
    results = []
    for sampler in (sample_negatives, redrawn_by_the_protocol):
        generator = torch.Generator().manual_seed(11)
        table = positives if sampler is sample_negatives else positive_set
        results.append(
            (sampler(users, items, n_users, n_items, 7, sample_type, generator, table), generator.get_state())
        )
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
