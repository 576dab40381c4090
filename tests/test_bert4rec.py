import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from audiorec.models.bert4rec import (
    IGNORE,
    BERT4RecNet,
    BERT4RecRecommender,
    length_batches,
    mask_tokens,
    masked_softmax_loss,
    right_aligned,
    sampled_softmax_loss,
    user_sequences,
)

N_ITEMS, DIM = 30, 8


def net(hidden_dim=0, dropout=0.0):
    torch.manual_seed(0)
    return BERT4RecNet(torch.randn(N_ITEMS, DIM), hidden_dim, 12, 2, 2, 16, dropout, item_freeze=True).eval()


def test_masking_rates_and_forced_last_position_on_a_fixed_seed():
    lengths = np.random.default_rng(0).integers(1, 40, 2000)
    tokens = right_aligned([np.arange(n) % N_ITEMS for n in lengths], 40, padding=N_ITEMS)
    generator = torch.Generator().manual_seed(1)
    masked, targets = mask_tokens(tokens, N_ITEMS, N_ITEMS + 1, 0.2, 0.0, generator)
    real = tokens != N_ITEMS
    is_masked = masked == N_ITEMS + 1
    assert not (is_masked & ~real).any()  # padding is never masked
    assert is_masked.any(dim=1).all()  # every sequence teaches something
    assert 0.2 <= is_masked.sum().item() / real.sum().item() <= 0.23  # 0.2 plus the at-least-one rule
    assert torch.equal(targets[is_masked], tokens[is_masked]) and (targets[~is_masked] == IGNORE).all()
    forced, _ = mask_tokens(tokens, N_ITEMS, N_ITEMS + 1, 0.2, 1.0, torch.Generator().manual_seed(1))
    assert (forced[:, -1] == N_ITEMS + 1).all()


def test_masked_only_loss_equals_the_naive_full_logits_loss():
    model = net(hidden_dim=6)
    tokens = right_aligned([np.arange(5), np.arange(3, 12), np.array([7])], 12, padding=N_ITEMS)
    masked, targets = mask_tokens(tokens, N_ITEMS, N_ITEMS + 1, 0.4, 0.5, torch.Generator().manual_seed(3))
    outputs = model(masked)
    naive_logits = outputs @ model.item_vectors().T  # (batch, seq, n_items): what the original computed
    naive = F.cross_entropy(naive_logits.reshape(-1, N_ITEMS), targets.reshape(-1), ignore_index=IGNORE)
    assert masked_softmax_loss(outputs, targets, model.item_vectors()).item() == pytest.approx(naive.item(), abs=1e-5)
    # Sampled softmax against every other track with uniform q is the full softmax again.
    log_q = torch.full((N_ITEMS,), -np.log(N_ITEMS))
    sampled = sampled_softmax_loss(outputs, targets, model, torch.arange(N_ITEMS), log_q)
    assert sampled.item() == pytest.approx(naive.item(), abs=1e-5)


def test_padding_never_leaks_into_the_outputs():
    model = net()
    tokens = right_aligned([np.array([3, 5, 7]), np.arange(10)], 12, padding=N_ITEMS)
    before = model(tokens)
    with torch.no_grad():
        model.special[0] = torch.randn(DIM) * 100  # whatever the padding row holds
    after = model(tokens)
    real = tokens != N_ITEMS
    torch.testing.assert_close(before[real], after[real])


def test_padding_length_does_not_change_the_outputs():
    # Batches are padded only to their longest sequence; the same user must get the same
    # outputs whether padded to 5 or to the model's full 12 positions.
    model = net()
    short = right_aligned([np.array([3, 5, 7]), np.arange(5)], 12, padding=N_ITEMS)
    assert short.shape == (2, 5)
    full = torch.full((2, 12), N_ITEMS)
    full[:, -5:] = short
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
    model = BERT4RecNet(torch.randn(N_ITEMS, DIM) * 5, 0, 12, 2, 2, 16, 0.0, item_freeze=True, normalize_items=True)
    norms = model.item_vectors().norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(N_ITEMS))


def _toy_data(n_users=25, length=8):
    rng = np.random.default_rng(4)
    rows = []
    for user in range(n_users):
        start = rng.integers(0, N_ITEMS)
        for step in range(length):  # every user walks the same cycle: a pure sequential signal
            rows.append((f"u{user:02d}", (start + step) % N_ITEMS, pd.Timestamp("2019-03-01") + pd.Timedelta(days=step)))
    return pd.DataFrame(rows, columns=["user_id", "track_idx", "timestamp"]).drop_duplicates(["user_id", "track_idx"])


def test_sequences_follow_first_play_order():
    train = pd.DataFrame({"user_id": ["b", "a", "a", "a"], "track_idx": [4, 9, 2, 5],
                          "timestamp": pd.to_datetime(["2019-03-01", "2019-05-01", "2019-04-01", "2019-04-01"])})
    sequences = user_sequences(train)
    assert list(sequences) == ["a", "b"] and sequences["a"].tolist() == [2, 5, 9]


def test_recommendations_are_unseen_real_tracks_without_duplicates():
    items = np.random.default_rng(0).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    train = _toy_data()
    model = BERT4RecRecommender(max_seq_len=6, max_epochs=2, batch_size=8, device="cpu").fit(items, train)
    ranked = model.recommend(sorted(train["user_id"].unique()), top_k=N_ITEMS)
    seen = train.groupby("user_id")["track_idx"].apply(set)
    for user, tracks in zip(ranked["user_id"], ranked["track_idx"]):
        assert len(tracks) == N_ITEMS - len(seen[user]) == len(set(tracks.tolist()))
        assert not set(tracks.tolist()) & seen[user] and tracks.max() < N_ITEMS
    cold = model.recommend(["u00"], top_k=5, candidates=np.array([0, 1, 2]))
    assert set(cold["track_idx"].iloc[0].tolist()) <= {0, 1, 2}


def test_a_tiny_model_overfits_a_toy_sequence():
    # Eight users who played the same eight tracks in the same order: each masked track is
    # determined by its position and neighbours, so the loss can reach zero.
    rows = [(f"u{user}", track, pd.Timestamp("2019-03-01") + pd.Timedelta(days=track)) for user in range(8) for track in range(8)]
    train = pd.DataFrame(rows, columns=["user_id", "track_idx", "timestamp"])
    model = BERT4RecRecommender(max_seq_len=8, hidden_dim=32, dropout=0.0, lr=1e-2, max_epochs=120, batch_size=8,
                                mlm_probability=0.3, item_freeze=False, device="cpu", seed=1)
    model.fit(np.eye(N_ITEMS, dtype=np.float32) * 3, train)
    assert np.mean([model._train_epoch() for _ in range(5)]) < 0.05


def test_bad_params_are_named():
    with pytest.raises(ValueError, match="bert4rec.loss='bpr'; allowed: softmax, sampled_softmax"):
        BERT4RecRecommender(loss="bpr")
    with pytest.raises(ValueError, match="bert4rec.n_heads=3 must divide the model width 8"):
        BERT4RecRecommender(n_heads=3, max_epochs=1).fit(np.zeros((N_ITEMS, DIM), np.float32), _toy_data())


def test_standardized_items_have_zero_mean_and_unit_variance_per_dimension():
    # MFCC statistics differ in scale by orders of magnitude; BERT4Rec sees each dim as a z-score.
    items = np.random.default_rng(1).normal(size=(N_ITEMS, DIM)).astype(np.float32) * np.logspace(0, 3, DIM).astype(np.float32)
    model = BERT4RecRecommender(max_seq_len=6, max_epochs=1, batch_size=8, n_heads=2, standardize_items=True, device="cpu")
    model.fit(items, _toy_data())
    table = model.net.items.weight.detach().numpy()
    np.testing.assert_allclose(table.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(table.std(axis=0, ddof=1), 1, atol=1e-4)
