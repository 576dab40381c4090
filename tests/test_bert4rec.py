import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from audiorec.models.bert4rec import (
    IGNORE,
    BERT4RecNet,
    BERT4RecRecommender,
    last_positions,
    layout,
    length_batches,
    mask_tokens,
    masked_softmax_loss,
    sampled_softmax_loss,
    user_sequences,
)
from audiorec.settings.base import SettingsError
from model_settings import demo

N_ITEMS, DIM = 30, 8


def net(hidden_dim=0, dropout=0.0, item_freeze=True, **options):
    torch.manual_seed(0)
    return BERT4RecNet(
        torch.randn(N_ITEMS, DIM),
        hidden_dim=hidden_dim,
        max_seq_len=12,
        n_layers=2,
        n_heads=2,
        intermediate_dim=16,
        dropout=dropout,
        item_freeze=item_freeze,
        **options,
    ).eval()


def test_masking_rates_and_forced_last_position_on_a_fixed_seed():
    lengths = np.random.default_rng(0).integers(1, 40, 2000)
    for from_end in (True, False):
        tokens = layout([np.arange(n) % N_ITEMS for n in lengths], 40, N_ITEMS, from_end)
        masked, targets = mask_tokens(tokens, N_ITEMS, N_ITEMS + 1, 0.2, 0.0, torch.Generator().manual_seed(1))
        real = tokens != N_ITEMS
        is_masked = masked == N_ITEMS + 1
        assert not (is_masked & ~real).any()  # padding is never masked
        assert is_masked.any(dim=1).all()  # every sequence teaches something
        assert 0.2 <= is_masked.sum().item() / real.sum().item() <= 0.23  # 0.2 plus the at-least-one rule
        assert torch.equal(targets[is_masked], tokens[is_masked]) and (targets[~is_masked] == IGNORE).all()
        forced, _ = mask_tokens(tokens, N_ITEMS, N_ITEMS + 1, 0.2, 1.0, torch.Generator().manual_seed(1))
        most_recent = forced[
            torch.arange(len(tokens)), torch.tensor([n - 1 for n in np.minimum(lengths, 40)]) if not from_end else -1
        ]
        assert (most_recent == N_ITEMS + 1).all()


def test_without_the_at_least_one_rule_short_sequences_can_stay_unmasked():
    tokens = layout([np.array([3])] * 1000, 5, N_ITEMS, from_end=False)
    masked, _ = mask_tokens(
        tokens, N_ITEMS, N_ITEMS + 1, 0.2, 0.0, torch.Generator().manual_seed(2), at_least_one=False
    )
    assert 0.15 < (masked == N_ITEMS + 1).any(dim=1).float().mean().item() < 0.25


def test_layouts_put_the_most_recent_track_last_or_first_padded():
    tokens = layout([np.array([1, 2, 3]), np.array([4, 5, 6, 7, 8])], 4, padding=9, from_end=True)
    assert tokens.tolist() == [[9, 1, 2, 3], [5, 6, 7, 8]]
    tokens = layout([np.array([1, 2, 3]), np.array([4, 5, 6, 7, 8])], 4, padding=9, from_end=False)
    assert tokens.tolist() == [[1, 2, 3, 9], [5, 6, 7, 8]]
    assert last_positions(tokens, 9).tolist() == [2, 3]


def test_masked_only_loss_equals_the_naive_full_logits_loss():
    model = net(hidden_dim=6)
    tokens = layout([np.arange(5), np.arange(3, 12), np.array([7])], 12, N_ITEMS, from_end=True)
    masked, targets = mask_tokens(tokens, N_ITEMS, N_ITEMS + 1, 0.4, 0.5, torch.Generator().manual_seed(3))
    outputs = model(masked)
    naive_logits = outputs @ model.item_vectors().T  # (batch, seq, n_items): what the original computed
    naive = F.cross_entropy(naive_logits.reshape(-1, N_ITEMS), targets.reshape(-1), ignore_index=IGNORE)
    assert masked_softmax_loss(outputs, targets, model.item_vectors()).item() == pytest.approx(naive.item(), abs=1e-5)
    # Sampled softmax against every other track with uniform q is the full softmax again.
    log_q = torch.full((N_ITEMS,), -np.log(N_ITEMS))
    sampled = sampled_softmax_loss(outputs, targets, model.item_vectors, torch.arange(N_ITEMS), log_q)
    assert sampled.item() == pytest.approx(naive.item(), abs=1e-5)


def original_loss(model: BERT4RecNet, sequences, vocabulary, masked_at):
    """The original code's formulation, written out independently: a vocabulary of the train
    tracks plus a mask row (id V) and a padding row (id V+1) in one embedding table, sequences
    left-aligned and padded with V+1, BERT on the rows as inputs_embeds, the output layer tied
    to the whole table, and cross-entropy over every position with unmasked ones ignored."""
    table = torch.cat([model.items.weight[vocabulary], model.special[1:2], model.special[0:1]])  # ..., mask, padding
    mask, padding = len(vocabulary), len(vocabulary) + 1
    width = max(map(len, sequences))
    ids = torch.full((len(sequences), width), padding)
    labels = torch.full((len(sequences), width), IGNORE)
    position = {int(track): i for i, track in enumerate(vocabulary)}
    for row, sequence in enumerate(sequences):
        for column, track in enumerate(sequence):
            ids[row, column] = position[int(track)]
            if (row, column) in masked_at:
                labels[row, column], ids[row, column] = position[int(track)], mask
    attention = (ids != padding).long()
    outputs = model.bert(inputs_embeds=table[ids], attention_mask=attention).last_hidden_state
    logits = outputs @ table.T
    return F.cross_entropy(logits.reshape(-1, len(table)), labels.reshape(-1), ignore_index=IGNORE)


def test_the_study_settings_give_the_original_loss_and_gradients_over_its_vocabulary():
    """special_tokens: table, positions: from_start and a train vocabulary are the original's model;
    the masked-only loss over the vocabulary's classes must be its full-logits loss, gradients included."""
    torch.manual_seed(0)
    model = BERT4RecNet(
        torch.randn(N_ITEMS, DIM),
        hidden_dim=0,
        max_seq_len=12,
        n_layers=2,
        n_heads=2,
        intermediate_dim=16,
        dropout=0.0,
        item_freeze=False,
        special_tokens="table",
        positions="from_start",
    ).eval()
    sequences = [np.array([4, 9, 2, 17]), np.array([9, 17, 21, 4, 2, 8, 11]), np.array([21])]
    vocabulary = torch.tensor(sorted({int(t) for s in sequences for t in s} | {25, 26}))  # train tracks and two more
    masked_at = {(0, 1), (1, 0), (1, 5), (1, 6), (2, 0)}
    tokens = layout(sequences, 12, N_ITEMS, from_end=False)
    targets = torch.full_like(tokens, IGNORE)
    for row, column in masked_at:
        targets[row, column], tokens[row, column] = tokens[row, column], N_ITEMS + 1
    class_of = torch.full((N_ITEMS,), -1)
    class_of[vocabulary] = torch.arange(len(vocabulary))
    class_targets = torch.where(targets == IGNORE, targets, class_of[targets.clamp(min=0)])
    ours = masked_softmax_loss(model(tokens), class_targets, model.class_vectors(vocabulary))
    ours.backward()
    gradients = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    theirs = original_loss(model, sequences, vocabulary, masked_at)
    theirs.backward()
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            torch.testing.assert_close(gradients[name], parameter.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert set(gradients) >= {"items.weight", "special"}  # the fine-tuned table and the specials learn


def test_sampled_softmax_subtracts_log_q_a_worked_example():
    # One masked position with output h = (1, 0); classes c0 = (2, 0), c1 = (0, 1), c2 = (1, 1);
    # target c0, negatives c1 and c2, q = (0.5, 0.25, 0.25). Logits minus log q:
    # 2 + ln 2, 0 + ln 4, 1 + ln 4; the loss is -(2 + ln 2) + ln(e^(2 + ln 2) + e^(ln 4) + e^(1 + ln 4)).
    classes = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    outputs, targets = torch.tensor([[[1.0, 0.0]]]), torch.tensor([[0]])
    log_q = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    loss = sampled_softmax_loss(outputs, targets, lambda ids: classes[ids], torch.tensor([1, 2]), log_q)
    expected = -(2 + math.log(2)) + math.log(2 * math.e**2 + 4 + 4 * math.e)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_sampled_softmax_with_popularity_q_converges_to_the_full_softmax():
    """With n negatives drawn from q, the corrected loss approaches the full cross-entropy plus
    log(n q(target)), a constant of the data: the gradients become the full softmax's."""
    generator = torch.Generator().manual_seed(0)
    classes = torch.randn(200, 4, generator=generator)
    outputs, targets = torch.randn(1, 6, 4, generator=generator), torch.tensor([[5, IGNORE, 17, 0, IGNORE, 150]])
    q = torch.arange(1, 201, dtype=torch.float64).flip(0) ** 1.5
    q = (q / q.sum()).float()
    full = masked_softmax_loss(outputs, targets, classes).item()
    errors = []
    for n in (30, 100_000):
        negatives = torch.multinomial(q, n, replacement=True, generator=generator)
        sampled = sampled_softmax_loss(outputs, targets, lambda ids: classes[ids], negatives, q.log()).item()
        shift = torch.log(n * q[targets[targets != IGNORE]]).mean().item()
        errors.append(abs(sampled - shift - full))
    assert errors[1] < 0.02 < errors[0]


@pytest.mark.parametrize("positions", ["from_end", "from_start"])
def test_padding_never_leaks_into_the_outputs(positions):
    model = net(positions=positions)
    tokens = layout([np.array([3, 5, 7]), np.arange(10)], 12, N_ITEMS, from_end=positions == "from_end")
    before = model(tokens)
    with torch.no_grad():
        model.special[0] = torch.randn(DIM) * 100  # whatever the padding row holds
    after = model(tokens)
    real = tokens != N_ITEMS
    torch.testing.assert_close(before[real], after[real])


@pytest.mark.parametrize("positions", ["from_end", "from_start"])
def test_padding_length_does_not_change_the_outputs(positions):
    # Batches are padded only to their longest sequence; the same user must get the same
    # outputs whether padded to 5 or to the model's full 12 positions.
    model, from_end = net(positions=positions), positions == "from_end"
    short = layout([np.array([3, 5, 7]), np.arange(5)], 12, N_ITEMS, from_end)
    assert short.shape == (2, 5)
    full = torch.full((2, 12), N_ITEMS)
    if from_end:
        full[:, -5:] = short
    else:
        full[:, :5] = short
    torch.testing.assert_close(model(short)[short != N_ITEMS], model(full)[full != N_ITEMS])


def test_length_batches_cover_every_row_once_with_similar_lengths():
    lengths = np.random.default_rng(2).integers(1, 200, 1000)
    batches = length_batches(lengths, 100, torch.Generator().manual_seed(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    # Sorted by jittered log length: within a batch, lengths stay within a small factor.
    spread = [lengths[rows].max() / lengths[rows].min() for rows in batches if lengths[rows].min() >= 20]
    assert max(spread) < 2.5
    again = length_batches(lengths, 100, torch.Generator().manual_seed(1))
    assert any(not np.array_equal(a, b) for a, b in zip(batches, again))  # not the same batches every epoch


def test_normalized_items_score_by_cosine():
    torch.manual_seed(0)
    model = BERT4RecNet(
        torch.randn(N_ITEMS, DIM) * 5,
        hidden_dim=0,
        max_seq_len=12,
        n_layers=2,
        n_heads=2,
        intermediate_dim=16,
        dropout=0.0,
        item_freeze=True,
        normalize_items=True,
    )
    torch.testing.assert_close(model.item_vectors().norm(dim=1), torch.ones(N_ITEMS))


def _toy_data(n_users=25, length=8):
    rng = np.random.default_rng(4)
    rows = []
    for user in range(n_users):
        start = rng.integers(0, N_ITEMS)
        for step in range(length):  # every user walks the same cycle: a pure sequential signal
            rows.append(
                (f"u{user:02d}", (start + step) % N_ITEMS, pd.Timestamp("2019-03-01") + pd.Timedelta(days=step))
            )
    return pd.DataFrame(rows, columns=["user_id", "track_idx", "timestamp"]).drop_duplicates(["user_id", "track_idx"])


def test_sequences_follow_first_play_order():
    train = pd.DataFrame(
        {
            "user_id": ["b", "a", "a", "a"],
            "track_idx": [4, 9, 2, 5],
            "timestamp": pd.to_datetime(["2019-03-01", "2019-05-01", "2019-04-01", "2019-04-01"]),
        }
    )
    sequences = user_sequences(train)
    assert list(sequences) == ["a", "b"] and sequences["a"].tolist() == [2, 5, 9]


def test_recommendations_are_unseen_real_tracks_without_duplicates():
    items = np.random.default_rng(0).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    train = _toy_data()
    model = BERT4RecRecommender(demo("bert4rec", max_seq_len=6, max_epochs=2, batch_size=8, device="cpu")).fit(
        items, train
    )
    ranked = model.recommend(sorted(train["user_id"].unique()), top_k=N_ITEMS)
    seen = train.groupby("user_id")["track_idx"].apply(set)
    for user, tracks in zip(ranked["user_id"], ranked["track_idx"]):
        assert len(tracks) == N_ITEMS - len(seen[user]) == len(set(tracks.tolist()))
        assert not set(tracks.tolist()) & seen[user] and tracks.max() < N_ITEMS
    cold = model.recommend(["u00"], top_k=5, candidates=np.array([0, 1, 2]))
    assert set(cold["track_idx"].iloc[0].tolist()) <= {0, 1, 2}


@pytest.mark.parametrize("positions, predict_seq_len", [("from_end", 0), ("from_start", 4)])
def test_a_user_vector_is_the_output_at_a_mask_after_the_recent_tracks(positions, predict_seq_len):
    items = np.random.default_rng(0).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    train = _toy_data()
    model = BERT4RecRecommender(
        demo(
            "bert4rec",
            max_seq_len=6,
            predict_seq_len=predict_seq_len,
            positions=positions,
            max_epochs=1,
            batch_size=8,
            device="cpu",
        )
    ).fit(items, train)
    history = model.sequences[model.user_ids.index("u03")]
    kept = history[-((predict_seq_len or 6) - 1) :]
    tokens = torch.tensor([list(kept) + [model.net.mask]])  # no padding: both layouts are the same sequence
    model.net.eval()
    with torch.no_grad():
        expected = model.net(tokens)[0, -1].numpy()
    users = model.recommend(["u03"], top_k=3)
    np.testing.assert_allclose(model._user_vectors(np.array([3]))[0], expected, rtol=1e-5, atol=1e-6)
    scores = model.net.item_vectors().detach().numpy() @ expected
    scores[history] = -np.inf
    assert users["track_idx"].iloc[0].tolist() == np.argsort(-scores, kind="stable")[:3].tolist()


def test_a_tiny_model_overfits_a_toy_sequence():
    # Eight users who played the same eight tracks in the same order: each masked track is
    # determined by its position and neighbours, so the loss can reach zero.
    rows = [
        (f"u{user}", track, pd.Timestamp("2019-03-01") + pd.Timedelta(days=track))
        for user in range(8)
        for track in range(8)
    ]
    train = pd.DataFrame(rows, columns=["user_id", "track_idx", "timestamp"])
    model = BERT4RecRecommender(
        demo(
            "bert4rec",
            max_seq_len=8,
            hidden_dim=32,
            dropout=0.0,
            lr=1e-2,
            max_epochs=120,
            batch_size=8,
            mlm_probability=0.3,
            item_freeze=False,
            device="cpu",
        ),
        seed=1,
    )
    model.fit(np.eye(N_ITEMS, dtype=np.float32) * 3, train)
    assert np.mean([model._train_epoch() for _ in range(5)]) < 0.05


def test_without_audio_the_item_table_is_learned_and_cold_tracks_are_not_ranked():
    train = _toy_data()
    model = BERT4RecRecommender(
        demo("bert4rec", max_seq_len=6, learned_dim=16, max_epochs=2, batch_size=8, device="cpu")
    )
    model.fit(np.zeros((N_ITEMS, 0), np.float32), train)
    assert model.net.items.weight.shape == (N_ITEMS, 16) and model.net.items.weight.requires_grad
    assert not model.ranks_cold_tracks
    assert BERT4RecRecommender(demo("bert4rec")).ranks_cold_tracks  # on audio vectors, a cold track has its vector


def test_the_original_settings_train_on_their_vocabulary_and_stop_on_the_val_loss():
    items = np.random.default_rng(0).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    data = _toy_data(n_users=30)
    val = data.groupby("user_id").tail(3)
    train = data.drop(val.index)
    study = dict(
        special_tokens="table",
        positions="from_start",
        item_freeze=False,
        mask_at_least_one=False,
        batching="random",
        vocabulary="train_and_cold",
        standardize_items=False,
        normalize_items=False,
        stop_on="loss",
        schedule_on="loss",
        dropout=0.1,
    )
    cold = np.array([28, 29])
    model = BERT4RecRecommender(demo("bert4rec", max_seq_len=6, max_epochs=3, batch_size=8, device="cpu", **study))
    model.fit(items, train[~train["track_idx"].isin(cold)], val=val[~val["track_idx"].isin(cold)], cold_items=cold)
    classes = model.classes.numpy()
    assert set(classes) == set(train.loc[~train["track_idx"].isin(cold), "track_idx"]) | {28, 29}
    assert model.net.class_vectors(model.classes).shape[0] == len(classes) + 2  # the mask and padding rows are classes
    assert model.net.items.weight.requires_grad  # the original's inverted flag: the table is fine-tuned
    with pytest.raises(ValueError, match="needs val with a timestamp column"):
        BERT4RecRecommender(demo("bert4rec", max_epochs=1, batch_size=8, device="cpu", stop_on="loss")).fit(
            items, train, val=val[["user_id", "track_idx"]]
        )


def test_bad_params_are_named():
    with pytest.raises(
        SettingsError, match=r"^params\.yaml: bert4rec\.loss='bpr': Input should be 'softmax' or 'sampled_softmax'$"
    ):
        demo("bert4rec", loss="bpr")
    with pytest.raises(
        SettingsError,
        match=r"^params\.yaml: bert4rec\.vocabulary='all': Input should be 'catalogue', 'train' or 'train_and_cold'$",
    ):
        demo("bert4rec", vocabulary="all")
    with pytest.raises(SettingsError, match=r"^params\.yaml: bert4rec: predict_seq_len=300 must be 0"):
        demo("bert4rec", predict_seq_len=300, max_seq_len=200)
    with pytest.raises(ValueError, match="bert4rec.n_heads=3 must divide the model width 8"):
        BERT4RecRecommender(demo("bert4rec", n_heads=3, max_epochs=1)).fit(
            np.zeros((N_ITEMS, DIM), np.float32), _toy_data()
        )


def test_standardized_items_have_zero_mean_and_unit_variance_per_dimension():
    # MFCC statistics differ in scale by orders of magnitude; BERT4Rec sees each dim as a z-score.
    items = np.random.default_rng(1).normal(size=(N_ITEMS, DIM)).astype(np.float32) * np.logspace(0, 3, DIM).astype(
        np.float32
    )
    model = BERT4RecRecommender(
        demo("bert4rec", max_seq_len=6, max_epochs=1, batch_size=8, n_heads=2, standardize_items=True, device="cpu")
    )
    model.fit(items, _toy_data())
    table = model.net.items.weight.detach().numpy()
    np.testing.assert_allclose(table.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(table.std(axis=0, ddof=1), 1, atol=1e-4)


def test_random_batches_cover_every_row_once_in_batches_of_batch_size_drawn_by_the_callers_generator():
    from audiorec.models.bert4rec import random_batches

    draws = []
    for global_seed in (1, 2):  # torch's global generator must not matter
        torch.manual_seed(global_seed)
        draws.append(random_batches(23, 5, torch.Generator().manual_seed(0)))
    batches = draws[0]
    assert [len(rows) for rows in batches] == [5, 5, 5, 5, 3]
    assert sorted(np.concatenate(batches).tolist()) == list(range(23))
    assert all(np.array_equal(a, b) for a, b in zip(*draws))
    assert np.concatenate(batches).tolist() != list(range(23))  # shuffled


def test_length_batches_never_mix_lengths_further_apart_than_the_jitter_and_follow_the_callers_generator():
    # Lengths 1 and 2 differ by a factor of 2, more than the jitter's 1.25: no batch mixes them.
    lengths = np.array([1, 2] * 50)
    draws = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        draws.append(length_batches(lengths, 10, torch.Generator().manual_seed(0)))
    for rows in draws[0]:
        assert len(set(lengths[rows].tolist())) == 1, lengths[rows]
    assert all(np.array_equal(a, b) for a, b in zip(*draws))


@pytest.mark.parametrize("batching", ["by_length", "random"])
def test_batching_setting_chooses_length_batches_or_random_ones(batching):
    model = BERT4RecRecommender(demo("bert4rec", batch_size=10, batching=batching))
    model.generator = torch.Generator().manual_seed(0)
    lengths = np.array([1, 2] * 50)
    mixed = [len(set(lengths[rows].tolist())) > 1 for rows in model._batches(lengths)]
    orders = []
    for global_seed in (1, 2):  # drawn by the model's generator, not torch's global one
        model.generator = torch.Generator().manual_seed(0)
        torch.manual_seed(global_seed)
        orders.append(np.concatenate(model._batches(lengths)).tolist())
    assert orders[0] == orders[1]
    # Ten random batches of a half-and-half population: all ten unmixed has probability ~1e-26.
    assert any(mixed) == (batching == "random")


def test_the_softmax_classes_of_each_vocabulary_and_the_sampling_distribution():
    train = pd.DataFrame({"user_id": ["a", "a", "b", "c"], "track_idx": [0, 3, 3, 5]})
    cold = np.array([7])
    expected_classes = {"catalogue": None, "train": [0, 3, 5], "train_and_cold": [0, 3, 5, 7]}
    for vocabulary, classes in expected_classes.items():
        for cold_items in (cold, None):
            model = BERT4RecRecommender(demo("bert4rec", vocabulary=vocabulary, negative_sampling="uniform"))
            model._set_classes(train, 9, cold_items)
            if vocabulary == "train_and_cold" and cold_items is None:
                classes = [0, 3, 5]
            tracks = list(range(9)) if classes is None else classes
            assert (model.classes is None) == (classes is None)
            if classes is not None:
                assert model.classes.tolist() == classes
            class_of = [tracks.index(t) if t in tracks else -1 for t in range(9)]
            assert model.class_of.tolist() == class_of
            np.testing.assert_allclose(model.log_q.exp().numpy(), np.full(len(tracks), 1 / len(tracks)), rtol=1e-6)
            # Track ids to class ids; unmasked positions stay IGNORE (track 0 included).
            targets = torch.tensor([[0, IGNORE, 5], [3, 5, IGNORE]])
            mapped = [[IGNORE if t == IGNORE else class_of[t] for t in row] for row in targets.tolist()]
            assert model._class_targets(targets).tolist() == mapped
    # Popularity: (train listeners + 1), normalised over the classes.
    model = BERT4RecRecommender(demo("bert4rec", vocabulary="train_and_cold", negative_sampling="popularity"))
    model._set_classes(train, 9, cold)
    np.testing.assert_allclose(model.log_q.exp().numpy(), np.array([2, 3, 2, 1]) / 8, rtol=1e-6)


def test_validation_keeps_users_with_exactly_val_min_tracks_and_names_what_is_missing():
    val = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b"],
            "track_idx": [1, 2, 3, 4],
            "timestamp": pd.to_datetime(["2019-01-01", "2019-01-02"] * 2),
        }
    )
    BERT4RecRecommender(demo("bert4rec", stop_on="loss", val_min_tracks=2))._validation(
        val, val
    )  # every user has exactly 2
    with pytest.raises(ValueError, match=r"^no val user has bert4rec.val_min_tracks=3 val tracks: lower it$"):
        BERT4RecRecommender(demo("bert4rec", stop_on="loss", val_min_tracks=3))._validation(val, val)
    with pytest.raises(
        ValueError,
        match=r"^bert4rec.stop_on/schedule_on: loss needs val with a timestamp column \(its sequences' order\)$",
    ):
        BERT4RecRecommender(demo("bert4rec", schedule_on="loss"))._validation(val.drop(columns="timestamp"), val)


@pytest.mark.parametrize("item_freeze", [True, False])
def test_save_writes_the_retrieval_vectors_and_a_checkpoint_that_rebuilds_the_net(tmp_path, item_freeze):
    items = np.random.default_rng(0).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    train = _toy_data()
    # The raw audio rows (the old constructor defaults; params.yaml's demo standardizes and normalizes them).
    raw = dict(standardize_items=False, normalize_items=False)
    model = BERT4RecRecommender(
        demo("bert4rec", max_seq_len=6, max_epochs=1, batch_size=8, device="cpu", item_freeze=item_freeze, **raw)
    ).fit(items, train)
    directory = tmp_path / "new" / "bert4rec"
    model.save(directory)
    model.save(directory)  # an existing directory is reused
    users = sorted(train["user_id"].unique())
    user_vectors, item_vectors = (
        np.load(directory / "user_representations.npy"),
        np.load(directory / "item_representations.npy"),
    )
    # No projection (hidden_dim 0): a track's vector is its row of the item table, the audio one when frozen.
    np.testing.assert_array_equal(item_vectors, model.net.items.weight.detach().numpy())
    if item_freeze:
        np.testing.assert_array_equal(item_vectors, items)
    # A user's vector is the output at a mask after their last five tracks.
    model.net.eval()
    for row in (0, 7):
        tokens = torch.tensor([list(model.sequences[row][-5:]) + [model.net.mask]])
        with torch.no_grad():
            np.testing.assert_allclose(user_vectors[row], model.net(tokens)[0, -1].numpy(), rtol=1e-5, atol=1e-6)
    checkpoint = torch.load(directory / "checkpoint.pt", weights_only=True)
    assert checkpoint["user_ids"] == users and checkpoint["epoch"] == model.epoch == 1
    assert checkpoint["loss"] == model.loss_value and checkpoint["config"]["item_freeze"] == item_freeze
    assert checkpoint["config"] == {**model.settings.model_dump(), "seed": 0} == model.config()
    state = checkpoint["model_state_dict"]
    assert ("items.weight" in state) != item_freeze  # a frozen table is the caller's embeddings
    rebuilt = BERT4RecNet(
        torch.from_numpy(items),
        hidden_dim=0,
        max_seq_len=6,
        n_layers=2,
        n_heads=2,
        intermediate_dim=256,
        dropout=0.1,
        item_freeze=item_freeze,
    ).eval()
    rebuilt.load_state_dict(state, strict=not item_freeze)
    tokens = torch.tensor([list(model.sequences[3][-5:]) + [model.net.mask]])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(tokens), model.net(tokens))


def test_the_sampled_loss_reads_the_same_class_vectors_as_the_full_one():
    items = np.random.default_rng(0).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    train = _toy_data().query("track_idx != 3")  # a gap in the vocabulary: class c >= 3 is track c + 1
    for vocabulary in ("catalogue", "train"):
        model = BERT4RecRecommender(
            demo(
                "bert4rec",
                max_seq_len=6,
                max_epochs=1,
                batch_size=8,
                device="cpu",
                loss="sampled_softmax",
                n_negatives=5,
                vocabulary=vocabulary,
            )
        ).fit(items, train)
        ids = torch.tensor([0, 5, 4])
        with torch.no_grad():
            torch.testing.assert_close(model._class_vectors_of(ids), model.net.class_vectors(model.classes)[ids])


def test_an_unknown_user_is_named():
    items = np.random.default_rng(0).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    model = BERT4RecRecommender(demo("bert4rec", max_seq_len=6, max_epochs=1, batch_size=8, device="cpu")).fit(
        items, _toy_data()
    )
    with pytest.raises(KeyError, match="first: nobody\\); BERT4Rec cannot represent them"):
        model.recommend(["u00", "nobody"], top_k=3)


def test_the_models_softmax_loss_is_the_cross_entropy_over_its_vocabulary_and_the_sampled_one_follows_its_generator():
    items = np.random.default_rng(0).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    train = _toy_data().query("track_idx < 26")  # tracks 26-29 are not in the vocabulary: class ids are not track ids
    # The raw audio rows are the classes (the old constructor defaults; params.yaml's demo standardizes and
    # normalizes them).
    model = BERT4RecRecommender(
        demo(
            "bert4rec",
            max_seq_len=6,
            max_epochs=1,
            batch_size=8,
            device="cpu",
            vocabulary="train",
            dropout=0.0,
            standardize_items=False,
            normalize_items=False,
            special_tokens="learned",  # the classes are the vocabulary's rows only
            mask_at_least_one=True,
        )
    ).fit(items, train)
    model.net.eval()
    tokens, targets = model._masked_batch(model.sequences[:4], torch.Generator().manual_seed(0))
    with torch.no_grad():
        outputs = model.net(tokens)
        vocabulary = np.unique(train["track_idx"].to_numpy())  # the train tracks, in order: class c is vocabulary[c]
        logits = outputs @ torch.from_numpy(items[vocabulary]).T
        at = targets != IGNORE
        expected = F.cross_entropy(logits[at], targets[at])
        assert model._loss(outputs, targets).item() == pytest.approx(expected.item(), rel=1e-5)
        model.settings = model.settings.replace(
            loss="sampled_softmax", n_negatives=50
        )  # more negatives than the 26 classes: drawn with replacement
        losses = []
        for global_seed in (1, 2):  # the negatives come from the model's generator, not torch's global one
            torch.manual_seed(global_seed)
            model.generator = torch.Generator().manual_seed(3)
            losses.append(model._loss(outputs, targets).item())
        assert losses[0] == losses[1] and losses[0] != pytest.approx(expected.item())


@pytest.mark.parametrize("positions", ["from_end", "from_start"])
def test_a_masked_batch_is_laid_out_as_the_net_counts_positions_and_masks_as_configured(positions):
    sequences = [np.array([4, 5, 6]), np.array([7, 8, 9, 10, 11])]
    train = pd.DataFrame({"user_id": "a", "track_idx": range(N_ITEMS)})

    def batch(global_seed=0, **options):
        model = BERT4RecRecommender(demo("bert4rec", max_seq_len=12, positions=positions, **options))
        model.net = net(positions=positions)
        model._set_classes(train, N_ITEMS, None)
        torch.manual_seed(global_seed)
        return model._masked_batch(sequences, torch.Generator().manual_seed(0))

    pad, mask = N_ITEMS, N_ITEMS + 1
    # Only the most recent track masked (forced); padding where the net expects it.
    tokens, targets = batch(mlm_probability=0.0, force_last_item_masking_prob=1.0)
    if positions == "from_end":
        assert tokens.tolist() == [[pad, pad, 4, 5, mask], [7, 8, 9, 10, mask]]
        assert targets.tolist() == [[IGNORE] * 4 + [6], [IGNORE] * 4 + [11]]
    else:
        assert tokens.tolist() == [[4, 5, mask, pad, pad], [7, 8, 9, 10, mask]]
        assert targets.tolist() == [[IGNORE, IGNORE, 6, IGNORE, IGNORE], [IGNORE] * 4 + [11]]
    # Without the at-least-one rule nothing is masked when nothing is drawn; with it, the most recent track is.
    tokens, targets = batch(mlm_probability=0.0, mask_at_least_one=False)
    assert (targets == IGNORE).all() and not (tokens == mask).any()
    _, targets = batch(mlm_probability=0.0, mask_at_least_one=True)
    assert (targets != IGNORE).sum(dim=1).tolist() == [1, 1]
    # The masks follow the generator passed in, not torch's global one.
    assert torch.equal(batch(1, mlm_probability=0.5)[0], batch(2, mlm_probability=0.5)[0])


def test_an_epochs_loss_is_the_mean_of_its_batches_and_a_batch_with_nothing_masked_is_skipped(monkeypatch):
    items = np.random.default_rng(0).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    train = _toy_data()
    model = BERT4RecRecommender(demo("bert4rec", max_seq_len=6, max_epochs=1, batch_size=8, device="cpu")).fit(
        items, train
    )
    losses, loss = [], model._loss

    def recording(outputs, targets, class_vectors=None):
        value = loss(outputs, targets, class_vectors)
        losses.append(value.item())
        return value

    monkeypatch.setattr(model, "_loss", recording)
    assert (
        model._train_epoch() == pytest.approx(np.mean(losses), rel=1e-6) and len(losses) == 4
    )  # 25 users, batches of 8
    model.settings = model.settings.replace(batch_size=100)  # one batch: the epoch's loss is its loss
    assert model._train_epoch() == pytest.approx(losses[-1], rel=1e-6) and len(losses) == 5
    # Nothing masked: no batch trains, the weights stay, the epoch's loss is 0.
    model.settings = model.settings.replace(mlm_probability=0.0, mask_at_least_one=False)
    before = {name: tensor.clone() for name, tensor in model.net.state_dict().items()}
    assert model._train_epoch() == 0.0 and len(losses) == 5
    for name, tensor in model.net.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_shuffle_positions_trains_on_permutations_of_each_users_tracks_drawn_by_the_models_generator(monkeypatch):
    items = np.random.default_rng(0).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    train = _toy_data()
    seen = {}
    for shuffle in (False, True):
        model = BERT4RecRecommender(
            demo("bert4rec", max_seq_len=6, max_epochs=1, batch_size=8, device="cpu", shuffle_positions=shuffle)
        ).fit(items, train)
        for global_seed in (1, 2):
            batches = []

            def first_batch(sequences, generator, training=False):
                batches.append(sequences)
                raise Enough

            monkeypatch.setattr(model, "_masked_batch", first_batch)
            model.generator = torch.Generator().manual_seed(5)
            torch.manual_seed(global_seed)
            with pytest.raises(Enough):
                model._train_epoch()
            seen[shuffle, global_seed] = [sequence.tolist() for sequence in batches[0]]
    originals = {tuple(sorted(s)): s for s in (sequence.tolist() for sequence in model.sequences)}
    for sequence in seen[False, 1]:
        assert sequence == originals[tuple(sorted(sequence))]  # as played
    shuffled = seen[True, 1]
    assert all(tuple(sorted(s)) in originals for s in shuffled)  # the same tracks ...
    assert any(s != originals[tuple(sorted(s))] for s in shuffled)  # ... in another order
    assert seen[True, 1] == seen[True, 2]


class Enough(Exception):
    """Stops an epoch once its first batch is seen."""


CHOICES = {
    "loss": "'softmax' or 'sampled_softmax'",
    "negative_sampling": "'uniform' or 'popularity'",
    "vocabulary": "'catalogue', 'train' or 'train_and_cold'",
    "special_tokens": "'learned' or 'table'",
    "positions": "'from_end' or 'from_start'",
    "batching": "'by_length' or 'random'",
    "stop_on": "'ndcg' or 'loss'",
    "schedule_on": "'ndcg' or 'loss'",
}
REFUSED = [(name, "bogus", f"Input should be {allowed}") for name, allowed in CHOICES.items()]
REFUSED += [("device", "bogus", "String should match pattern")]
REFUSED += [("max_seq_len", 1, "Input should be greater than or equal to 2")]
REFUSED += [
    (name, 0, "Input should be greater than or equal to 1")
    for name in ("n_layers", "n_heads", "learned_dim", "batch_size", "max_epochs", "patience", "n_negatives")
]
REFUSED += [
    (name, -1, "Input should be greater than or equal to 0") for name in ("hidden_dim", "min_epochs", "val_min_tracks")
]
REFUSED += [
    (name, 1.5, "Input should be less than or equal to 1")
    for name in ("mlm_probability", "force_last_item_masking_prob")
]


@pytest.mark.parametrize("name, value, reason", REFUSED, ids=[f"{name}={value}" for name, value, _ in REFUSED])
def test_settings_refuse_a_bad_value_naming_the_setting_and_the_allowed_values(name, value, reason):
    import re

    with pytest.raises(
        SettingsError, match=rf"^params\.yaml: bert4rec\.{name}={re.escape(repr(value))}: {re.escape(reason)}"
    ):
        demo("bert4rec", **{name: value})


@pytest.mark.parametrize("name", ["mlm_probability", "force_last_item_masking_prob"])
def test_probabilities_may_be_0_or_1(name):
    BERT4RecRecommender(demo("bert4rec", **{name: 1.0}))  # the bounds are allowed
    BERT4RecRecommender(demo("bert4rec", **{name: 0.0}))


def test_predict_seq_len_is_0_or_between_2_and_max_seq_len():
    # A check across two keys: the message names the section, and the key in its reason.
    with pytest.raises(
        SettingsError,
        match=(
            r"^params\.yaml: bert4rec: predict_seq_len=1 must be 0 \(max_seq_len\) "
            r"or between 2 and max_seq_len \(10\)$"
        ),
    ):
        demo("bert4rec", predict_seq_len=1, max_seq_len=10)
    BERT4RecRecommender(demo("bert4rec", predict_seq_len=2, max_seq_len=10))  # both ends of the range
    BERT4RecRecommender(demo("bert4rec", predict_seq_len=10, max_seq_len=10))
    BERT4RecRecommender(demo("bert4rec", max_seq_len=2))


def test_n_heads_must_divide_the_model_width():
    items = np.zeros((N_ITEMS, DIM), np.float32)
    with pytest.raises(
        ValueError,
        match=(
            r"^bert4rec\.n_heads=3 must divide the model width 8 \(the embedding dim\); "
            r"change n_heads or set hidden_dim$"
        ),
    ):
        BERT4RecRecommender(demo("bert4rec", n_heads=3)).fit(items, _toy_data())
    with pytest.raises(
        ValueError,
        match=r"^bert4rec\.n_heads=2 must divide the model width 9 \(hidden_dim\); change n_heads or set hidden_dim$",
    ):
        BERT4RecRecommender(demo("bert4rec", n_heads=2, hidden_dim=9)).fit(items, _toy_data())


def test_fit_builds_the_net_its_params_describe_and_hands_the_epoch_loop_its_settings(record_epoch_loop):
    from audiorec.models import bert4rec

    calls = record_epoch_loop(bert4rec)
    items = np.random.default_rng(0).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    data = _toy_data()
    val = data.groupby("user_id").tail(2)
    train = data.drop(val.index)
    settings = dict(
        max_seq_len=6,
        hidden_dim=4,
        n_heads=2,
        lr=0.05,
        scheduler_patience=3,
        patience=7,
        max_epochs=9,
        min_epochs=2,
        schedule_on="ndcg",
        stop_on="loss",
        device="cpu",
    )
    model = BERT4RecRecommender(
        demo("bert4rec", normalize_items=True, special_tokens="table", positions="from_end", resume=True, **settings),
        checkpoint_dir="ckpt",
    ).fit(items.astype(np.float64), train, val=val, live="live")
    # resume off (the old constructor default; params.yaml's is on).
    BERT4RecRecommender(
        demo("bert4rec", positions="from_start", special_tokens="learned", resume=False, **settings),
        checkpoint_dir="ckpt",
    ).fit(items, train, val=val)
    BERT4RecRecommender(demo("bert4rec", **settings)).fit(items, train, val=val)
    BERT4RecRecommender(demo("bert4rec", **settings)).fit(items, train, val=val.iloc[1:])
    BERT4RecRecommender(demo("bert4rec", **settings)).fit(items, train.iloc[1:], val=val)
    BERT4RecRecommender(demo("bert4rec", **settings)).fit(items * 2, train, val=val)
    net = model.net
    assert net.width == 4 and net.count_from_end and net.score_special_tokens
    torch.testing.assert_close(net.item_vectors().norm(dim=1), torch.ones(N_ITEMS))  # normalize_items
    assert model.ranks_cold_tracks is True
    first = calls[0]
    assert first["name"] == "bert4rec" and (first["patience"], first["max_epochs"], first["min_epochs"]) == (7, 9, 2)
    assert first["optimizer"] is model.optimizer and model.optimizer.param_groups[0]["lr"] == 0.05
    assert first["scheduler"].mode == "max" and first["scheduler"].patience == 3  # NDCG rises
    assert (
        isinstance(model.generator, torch.Generator)
        and first["generator"] is model.generator
        and first["live"] == "live"
    )
    assert (first["schedule_on"], first["stop_on"]) == ("val/ndcg@50", "val/loss")
    assert set(first["validate"]()) == {"val/hitrate@50", "val/ndcg@50", "val/loss"}
    assert first["resume_dir"] == "ckpt" and calls[1]["resume_dir"] is None  # resume off: no resume directory
    assert not calls[1]["net"].count_from_end and not calls[1]["net"].score_special_tokens  # from_start, learned
    # The same settings on other val, train or audio: another fingerprint each.
    assert len({call["fingerprint"] for call in calls[2:]}) == 4
    # One audio dimension is audio too: cold tracks have a vector.
    one = BERT4RecRecommender(demo("bert4rec", max_seq_len=6, n_heads=1, device="cpu")).fit(items[:, :1], train)
    assert one.ranks_cold_tracks is True


def test_the_initial_tables_follow_bert_and_the_original():
    """Learned rows N(0, 0.02) (BERT's initializer_range), the table layout's padding row zero, learned
    special tokens at the audio's scale, a projection N(0, 0.02) with zero bias; specials frozen with the table."""
    torch.manual_seed(0)
    audio = torch.randn(50, 400) * 3
    common = dict(max_seq_len=4, n_layers=1, n_heads=2, intermediate_dim=8, dropout=0.0)
    table = BERT4RecNet(audio, hidden_dim=0, item_freeze=True, special_tokens="table", **common)
    assert table.special.shape == (2, 400) and torch.equal(table.special[0], torch.zeros(400))
    assert table.special[1].mean().abs() < 0.01 and 0.017 < table.special[1].std() < 0.023
    assert not table.special.requires_grad  # frozen with the table it belongs to
    learned = BERT4RecNet(audio, hidden_dim=16, item_freeze=True, **common)
    assert learned.special.shape == (2, 400) and learned.special.requires_grad
    assert 2.7 < learned.special.std() < 3.3  # at the audio's scale (3)
    weight = learned.project.weight
    assert weight.shape == (16, 400) and weight.mean().abs() < 0.005 and 0.019 < weight.std() < 0.021
    assert torch.equal(learned.project.bias, torch.zeros(16))
    no_audio = BERT4RecNet(torch.zeros(300, 0), hidden_dim=0, item_freeze=True, learned_dim=64, **common)
    rows = no_audio.items.weight
    assert rows.shape == (300, 64) and rows.mean().abs() < 0.002 and 0.019 < rows.std() < 0.021


def test_every_trained_parameter_but_berts_unused_word_table_gets_a_gradient():
    model = net(hidden_dim=6)
    model.train()
    tokens = layout([np.arange(5), np.arange(3, 12)], 12, N_ITEMS, from_end=True)
    masked, targets = mask_tokens(tokens, N_ITEMS, N_ITEMS + 1, 0.4, 1.0, torch.Generator().manual_seed(0))
    masked_softmax_loss(model(masked), targets, model.item_vectors()).backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == ["bert.embeddings.word_embeddings.weight"]  # inputs come as inputs_embeds; no pooler


@pytest.mark.parametrize("positions", ["from_end", "from_start"])
def test_the_net_is_bert_on_the_tracks_audio_rows_and_the_mask_row(positions):
    """No padding: the net's output is BertModel's on the rows looked up by hand (the last track
    and the mask included)."""
    model = net(hidden_dim=6, positions=positions, special_tokens="table")
    tokens = torch.tensor([[N_ITEMS - 1, 0, 5, N_ITEMS + 1], [2, N_ITEMS + 1, N_ITEMS - 1, 7]])
    rows = torch.cat([model.items.weight, model.special[0:1], model.special[1:2]])  # tracks, padding, mask
    first = 12 - 4 if positions == "from_end" else 0
    with torch.no_grad():
        expected = model.bert(
            inputs_embeds=model.project(rows[tokens]),
            attention_mask=torch.ones_like(tokens),
            position_ids=torch.arange(first, first + 4).expand(2, -1),
        ).last_hidden_state
        torch.testing.assert_close(model(tokens), expected)
        model.train()  # dropout 0 (hidden and attention): training mode computes the same
        torch.testing.assert_close(model(tokens), expected)


def test_by_default_positions_count_from_the_most_recent_track():
    tokens = layout([np.array([3, 5, 7]), np.arange(10)], 12, N_ITEMS, from_end=True)
    with torch.no_grad():
        torch.testing.assert_close(net()(tokens), net(positions="from_end")(tokens))
        assert not torch.allclose(net()(tokens), net(positions="from_start")(tokens))


def test_layout_of_one_track_and_of_no_sequence():
    assert layout([np.array([3])], 5, padding=9, from_end=True).tolist() == [[3]]  # no padding column
    assert layout([], 5, padding=9, from_end=True).shape == (0, 1)


def test_masks_follow_the_generator_passed_in_not_torchs_global_one():
    tokens = layout([np.arange(n) % N_ITEMS for n in range(1, 30)], 12, N_ITEMS, True)
    draws = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        draws.append(
            mask_tokens(tokens, N_ITEMS, N_ITEMS + 1, 0.3, 0.5, torch.Generator().manual_seed(0), at_least_one=False)[0]
        )
    assert torch.equal(draws[0], draws[1])


def test_an_epochs_masks_follow_the_models_generator(monkeypatch):
    items = np.random.default_rng(0).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    model = BERT4RecRecommender(demo("bert4rec", max_seq_len=6, max_epochs=1, batch_size=8, device="cpu")).fit(
        items, _toy_data()
    )
    masked, original = [], model._masked_batch

    def first_batch(sequences, generator, training=False):
        masked.append(original(sequences, generator, training)[0])
        raise Enough

    monkeypatch.setattr(model, "_masked_batch", first_batch)
    for global_seed in (1, 2):
        model.generator = torch.Generator().manual_seed(0)
        torch.manual_seed(global_seed)
        with pytest.raises(Enough):
            model._train_epoch()
    assert torch.equal(masked[0], masked[1])


@pytest.mark.parametrize(
    ("options", "trained"),
    [
        ({}, False),  # the study's: frozen audio vectors, no projection
        ({"special_tokens": "table"}, False),  # the scored mask and padding rows are frozen with the table
        ({"item_freeze": False}, True),
        ({"hidden_dim": 6}, True),  # a learned projection
    ],
)
def test_class_vectors_count_as_trained_when_a_step_can_change_them(options, trained):
    model = net(**options)
    assert model.class_vectors_are_trained() == trained
    tokens = layout([np.arange(5), np.arange(3, 12)], 12, N_ITEMS, from_end=True)
    masked, targets = mask_tokens(tokens, N_ITEMS, N_ITEMS + 1, 0.4, 1.0, torch.Generator().manual_seed(0))
    masked_softmax_loss(model(masked), targets, model.class_vectors(None)).backward()
    changed_by_a_step = [p for p in model.parameters() if p.grad is not None]
    with torch.no_grad():
        before = model.class_vectors(None).clone()
        for parameter in changed_by_a_step:
            parameter -= 0.1 * parameter.grad
        assert (not torch.equal(model.class_vectors(None), before)) == trained


def test_an_epoch_with_frozen_classes_computed_once_trains_as_computing_them_every_step(monkeypatch):
    items = np.random.default_rng(0).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    train = _toy_data()
    once = BERT4RecRecommender(demo("bert4rec", max_seq_len=6, max_epochs=2, batch_size=8, device="cpu")).fit(
        items, train
    )
    calls = []
    monkeypatch.setattr(BERT4RecRecommender, "_fixed_class_vectors", lambda self: calls.append(1))
    every_step = BERT4RecRecommender(demo("bert4rec", max_seq_len=6, max_epochs=2, batch_size=8, device="cpu")).fit(
        items, train
    )
    assert calls  # the per-step path ran
    for (name, trained), (_, reference) in zip(once.net.state_dict().items(), every_step.net.state_dict().items()):
        assert torch.equal(trained, reference), name


def test_berts_80_10_10_masking_shows_the_mask_a_random_track_or_the_track_itself():
    """`masked_input: bert`: of the masked positions, about 80% show the mask token, 10% a track drawn from the
    replacements and 10% their own track; the targets are the masked tracks either way (BERT's recipe, RecTools')."""
    import torch

    from audiorec.models.bert4rec import IGNORE, mask_tokens

    n_items, padding, mask = 50, 50, 51
    tokens = torch.randint(0, n_items, (400, 100), generator=torch.Generator().manual_seed(0))
    replacements = torch.arange(100, 110)  # outside the catalogue's ids, so a drawn track is told apart
    inputs, targets = mask_tokens(
        tokens, padding, mask, 0.5, 0.0, torch.Generator().manual_seed(1), False, replacements
    )
    masked = targets != IGNORE
    assert torch.equal(targets[masked], tokens[masked]) and torch.equal(inputs[~masked], tokens[~masked])
    shown = inputs[masked]
    shares = [(shown == mask).float().mean(), (shown >= 100).float().mean(), (shown == tokens[masked]).float().mean()]
    assert [round(float(share), 2) for share in shares] == pytest.approx([0.8, 0.1, 0.1], abs=0.01)
    plain, plain_targets = mask_tokens(tokens, padding, mask, 0.5, 0.0, torch.Generator().manual_seed(1), False)
    assert torch.equal(plain_targets, targets) and bool((plain[masked] == mask).all())
