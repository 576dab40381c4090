"""The journal's recommenders (ELSA, Bimodal, Hybrid) on planted toys whose right answer is known."""

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from audiorec.config import ParamsError, validate
from audiorec.models.bimodal import BimodalRecommender, decoupled_contrastive_loss
from audiorec.models.elsa import ITEM_FACTORS, ELSARecommender
from audiorec.models.hybrid import HybridRecommender, normalised_mse
from audiorec.models.knn import KNNRecommender
from audiorec.models.mostpop import MostPopRecommender
from audiorec.settings.base import SettingsError
from model_settings import demo

N_GENRES, PER_GENRE, PER_USER = 4, 80, 12


def planted(seed: int = 0, users_per_genre: int = 15):
    """Tracks in 4 genres, the last track of each genre cold (never played). A track's style:
    its genre's centre plus a small deviation (4 dims). Audio: the style under 12 dims of
    louder nuisance, so raw audio similarity barely sees it; ELSA-like factors: a fixed
    nonlinear map of the style for played tracks, noise for cold ones (ELSA never saw
    them played). Each user plays 12 tracks of one genre."""
    rng = np.random.default_rng(seed)
    genre = np.repeat(np.arange(N_GENRES), PER_GENRE)
    cold = np.array([g * PER_GENRE + PER_GENRE - 1 for g in range(N_GENRES)])
    style = rng.normal(size=(N_GENRES, 4))[genre] + 0.3 * rng.normal(size=(len(genre), 4))
    audio = np.hstack([style, 3 * rng.normal(size=(len(genre), 12))]).astype(np.float32)
    factors = np.tanh(style @ rng.normal(size=(4, 8))).astype(np.float32)
    factors[cold] = rng.normal(size=(len(cold), 8))
    rows = []
    for g in range(N_GENRES):
        hot = np.setdiff1d(np.flatnonzero(genre == g), cold)
        for u in range(users_per_genre):
            rows += [(f"g{g}u{u:02d}", int(track)) for track in rng.choice(hot, PER_USER, replace=False)]
    train = pd.DataFrame(rows, columns=["user_id", "track_idx"]).assign(count=1)
    user_genre = {user: int(user[1]) for user in train["user_id"].unique()}
    return audio, factors, train, cold, user_genre


def top1_is_own_genre_cold_track(model, train, cold, user_genre) -> float:
    """Share of users whose first cold track is the one of their genre."""
    users = sorted(user_genre)
    ranked = model.recommend(users, 1, candidates=cold)
    return float(np.mean([tracks[0] == cold[user_genre[user]] for user, tracks in zip(users, ranked["track_idx"])]))


def test_raw_audio_barely_sees_the_planted_genre():
    # The floor that makes the next two tests mean something: KNN on the raw audio vectors.
    audio, _, train, cold, user_genre = planted()
    assert top1_is_own_genre_cold_track(KNNRecommender(demo("knn")).fit(audio, train), train, cold, user_genre) < 0.7


def test_bimodal_learns_the_audio_to_collaborative_map_and_ranks_the_cold_track_first():
    audio, factors, train, cold, user_genre = planted()
    model = BimodalRecommender(
        demo("bimodal", hidden_dim=32, lr=0.01, max_epochs=100, device="cpu"), collaborative_factors=factors
    )
    model.fit(audio, train)
    assert top1_is_own_genre_cold_track(model, train, cold, user_genre) >= 0.9


def test_hybrid_learns_factors_from_audio_and_ranks_the_cold_track_first():
    audio, _, train, cold, user_genre = planted()
    model = HybridRecommender(demo("hybrid", hidden_dim=8, batch_size=16, max_epochs=60, device="cpu")).fit(
        audio, train
    )
    assert top1_is_own_genre_cold_track(model, train, cold, user_genre) >= 0.9


def test_bimodal_average_represents_a_track_without_train_plays_by_its_content_vector():
    audio, factors, train, cold, _ = planted()
    model = BimodalRecommender(
        demo("bimodal", hidden_dim=8, max_epochs=3, device="cpu"), collaborative_factors=factors
    ).fit(audio, train)
    with torch.no_grad():
        content = torch.nn.functional.normalize(model.net.content(torch.tensor(audio)), dim=-1).numpy()
        collaborative = torch.nn.functional.normalize(model.net.collaborative(torch.tensor(factors)), dim=-1).numpy()
    played = np.unique(train["track_idx"])
    np.testing.assert_allclose(model.item_vectors[cold], content[cold], atol=1e-6)
    np.testing.assert_allclose(model.item_vectors[played], (content[played] + collaborative[played]) / 2, atol=1e-6)
    # The journal's code instead averaged in the collaborative MLP's output for ELSA's row of the cold track.
    model.settings = model.settings.replace(cold_collaborative="elsa_row")
    model.refresh_vectors()
    np.testing.assert_allclose(model.item_vectors[cold], (content[cold] + collaborative[cold]) / 2, atol=1e-6)


def co_listening(seed: int = 0):
    """Three taste groups, each playing its own block of 20 tracks; the first group is twice
    as large, so popularity favours its block for everybody. One play per user held out."""
    rng = np.random.default_rng(seed)
    rows, held = [], []
    for group, n_users in enumerate([60, 30, 30]):
        for u in range(n_users):
            tracks = rng.choice(np.arange(group * 20, group * 20 + 20), 12, replace=False)
            rows += [(f"g{group}u{u:02d}", int(track)) for track in tracks[1:]]
            held.append((f"g{group}u{u:02d}", int(tracks[0])))
    train = pd.DataFrame(rows, columns=["user_id", "track_idx"]).assign(count=1)
    return train, pd.DataFrame(held, columns=["user_id", "track_idx"])


def hitrate(model, truth: pd.DataFrame, k: int) -> float:
    ranked = model.recommend(list(truth["user_id"]), k)
    return float(np.mean([track in set(tracks) for track, tracks in zip(truth["track_idx"], ranked["track_idx"])]))


def test_elsa_beats_popularity_on_planted_co_listening():
    train, truth = co_listening()
    no_audio = np.zeros((60, 0), dtype=np.float32)
    elsa = ELSARecommender(demo("elsa", factors=8, batch_size=16, max_epochs=10, device="cpu")).fit(no_audio, train)
    popularity = MostPopRecommender(demo("mostpop")).fit(no_audio, train)
    # 9 unseen tracks are left in each user's block: a top 5 from the block holds the held-out play 5/9 of the time.
    assert hitrate(elsa, truth, 5) > 0.45
    assert hitrate(popularity, truth, 5) < 0.3


def test_elsa_ranks_unseen_tracks_by_elsarecs_own_scores_and_saves_its_factors(tmp_path):
    train, _ = co_listening()
    model = ELSARecommender(demo("elsa", factors=8, batch_size=16, max_epochs=3, device="cpu")).fit(
        np.zeros((60, 0), np.float32), train
    )
    scores = model.model.predict(model.interactions, batch_size=32).numpy()  # elsarec: x A A^T - x, dense
    users = list(model._user_rows)
    ranked = model.recommend(users, 10)["track_idx"]
    for row, tracks in enumerate(ranked):
        unseen = np.setdiff1d(np.arange(60), model.seen_items[users[row]])
        expected = unseen[np.argsort(-scores[row, unseen], kind="stable")][:10]
        np.testing.assert_allclose(scores[row, tracks], scores[row, expected], rtol=1e-5)  # equal up to ties
    model.save(tmp_path)
    factors = np.load(tmp_path / ITEM_FACTORS)
    assert factors.shape == (60, 8)
    np.testing.assert_allclose(np.linalg.norm(factors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        np.load(tmp_path / "user_representations.npy") @ factors.T, scores + model.interactions.toarray(), atol=1e-4
    )


@pytest.mark.parametrize("name", ["elsa", "bimodal", "hybrid"])
def test_exactly_k_unseen_tracks_for_every_user(name):
    audio, factors, train, cold, user_genre = planted()
    model = {
        "elsa": lambda: ELSARecommender(demo("elsa", factors=8, max_epochs=2, device="cpu")),
        "bimodal": lambda: BimodalRecommender(
            demo("bimodal", hidden_dim=8, max_epochs=2, device="cpu"), collaborative_factors=factors
        ),
        "hybrid": lambda: HybridRecommender(demo("hybrid", hidden_dim=8, max_epochs=2, device="cpu")),
    }[name]().fit(audio, train)
    users = sorted(user_genre)
    seen = train.groupby("user_id")["track_idx"].apply(set)
    candidates = np.setdiff1d(np.arange(len(audio)), cold)
    for k in (5, len(candidates) - PER_USER):  # the second leaves exactly k unseen tracks
        for user, tracks in zip(users, model.recommend(users, k, candidates)["track_idx"]):
            assert len(tracks) == len(set(tracks)) == k
            assert not set(tracks) & seen[user] and set(tracks) <= set(candidates)


@pytest.mark.parametrize("cls", [BimodalRecommender, HybridRecommender])
def test_save_and_load_give_the_same_recommendations(cls, tmp_path):
    audio, factors, train, _, user_genre = planted()
    inputs = {"collaborative_factors": factors} if cls is BimodalRecommender else {}
    model = cls(demo(cls.name, hidden_dim=8, max_epochs=3, device="cpu"), **inputs).fit(audio, train)
    model.save(tmp_path)
    loaded = cls.load(tmp_path, audio, **inputs)
    users = sorted(user_genre)
    for expected, got in zip(model.recommend(users, 10)["track_idx"], loaded.recommend(users, 10)["track_idx"]):
        np.testing.assert_array_equal(expected, got)
    np.testing.assert_array_equal(np.load(tmp_path / "item_representations.npy"), loaded.item_vectors)


def test_decoupled_contrastive_loss_by_its_definition():
    rng = np.random.default_rng(1)
    a, p = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    t = 0.5
    expected = np.mean(
        [
            -a[i] @ p[i] / t
            + np.log(sum(np.exp(a[i] @ a[j] / t) + np.exp(a[i] @ p[j] / t) for j in range(3) if j != i))
            for i in range(3)
        ]
    )
    assert decoupled_contrastive_loss(torch.tensor(a), torch.tensor(p), t).item() == pytest.approx(expected, rel=1e-10)


def test_normalised_mse_by_its_definition():
    x, y = np.array([[3.0, 4.0], [1.0, 0.0]]), np.array([[0.0, 2.0], [1.0, 1.0]])
    unit_x, unit_y = x / np.linalg.norm(x, axis=1, keepdims=True), y / np.linalg.norm(y, axis=1, keepdims=True)
    assert normalised_mse(torch.tensor(x), torch.tensor(y)).item() == pytest.approx(np.mean((unit_x - unit_y) ** 2))


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("elsa", {"stop_on": "val_loss"}, r"elsa\.stop_on='val_loss': Input should be 'none' or 'val_ndcg'"),
        ("elsa", {"factors": 0}, r"elsa\.factors=0: Input should be greater than or equal to 1"),
        ("elsa", {"lr": 0}, r"elsa\.lr=0: Input should be greater than 0"),
        (
            "bimodal",
            {"retrieval": "both"},
            r"bimodal\.retrieval='both': Input should be 'average', 'content' or 'collaborative'",
        ),
        (
            "bimodal",
            {"cold_collaborative": "zero"},
            r"bimodal\.cold_collaborative='zero': Input should be 'none' or 'elsa_row'",
        ),
        ("bimodal", {"temperature": 0}, r"bimodal\.temperature=0: Input should be greater than 0"),
        ("bimodal", {"batch_size": 1}, r"bimodal\.batch_size=1: Input should be greater than or equal to 2"),
        ("bimodal", {"stop_on": "none"}, r"bimodal\.stop_on='none': Input should be 'val_ndcg' or 'train_loss'"),
        (
            "hybrid",
            {"stop_on": "train_loss"},
            r"hybrid\.stop_on='train_loss': Input should be 'val_ndcg' or 'val_loss'",
        ),
    ],
)
def test_bad_model_params_are_refused_with_the_parameter_and_choices(name, overrides, message):
    # Refused when the settings are built, before any model exists.
    with pytest.raises(SettingsError, match=rf"^params\.yaml: {message}"):
        demo(name, **overrides)


def test_bimodal_without_or_with_misaligned_elsa_factors_is_refused():
    audio, factors, train, _, _ = planted()
    with pytest.raises(
        ValueError,
        match=r"^bimodal needs ELSA's item factors \(collaborative_factors\): run train@none-elsa-<seed> first$",
    ):
        BimodalRecommender(demo("bimodal")).fit(audio, train)
    with pytest.raises(
        ValueError, match=f"^ELSA's item factors have {len(audio) - 1} rows but the audio embeddings {len(audio)}: "
    ):
        BimodalRecommender(demo("bimodal"), collaborative_factors=factors[:-1]).fit(audio, train)


def test_bimodal_takes_float64_audio_and_factors_like_float32():
    """Audio vectors or ELSA factors saved as float64 are read as float32: the same item vectors
    as from the float32 copies."""
    audio, factors, train, _, _ = planted()
    settings = dict(hidden_dim=8, max_epochs=2, device="cpu")
    narrow = BimodalRecommender(demo("bimodal", **settings), collaborative_factors=factors).fit(audio, train)
    for wide_audio, wide_factors in ((audio.astype(np.float64), factors), (audio, factors.astype(np.float64))):
        wide = BimodalRecommender(demo("bimodal", **settings), collaborative_factors=wide_factors).fit(
            wide_audio, train
        )
        np.testing.assert_array_equal(wide.item_vectors, narrow.item_vectors)


def test_params_yaml_places_the_journal_models():
    with open("params.yaml") as handle:
        params = yaml.safe_load(handle)
    validate({**params, "models": [*params["models"], "hybrid", "bimodal"], "baselines": ["elsa"]})
    cases = [
        ({"models": ["shallow", "elsa"]}, "models: 'elsa' uses no audio; list it under params.yaml: baselines"),
        (
            {"models": ["shallow", "bimodal"], "baselines": ["mostpop"]},
            "models: 'bimodal' reads the item factors of elsa's runs; add elsa",
        ),
        ({"controls": {**params["controls"], "models": ["bimodal"]}}, "controls.models: 'bimodal' is not in models"),
    ]
    for change, message in cases:
        with pytest.raises(ParamsError, match=message):
            validate({**params, **change})


def test_bimodal_never_trains_on_a_lone_track_without_negatives():
    audio, factors, train, _, _ = planted()
    played = train["track_idx"].nunique()
    model = BimodalRecommender(
        demo("bimodal", hidden_dim=8, batch_size=played - 1, max_epochs=2, device="cpu"), collaborative_factors=factors
    )
    assert np.isfinite(model.fit(audio, train).loss)  # batches of played - 1 leave one track over


def test_the_compare_gate_names_the_stages_of_the_models_that_read_elsa():
    from audiorec.workflow.compare import evaluate_stage

    assert evaluate_stage("metrics/musicnn/bimodal.seed0.json") == "evaluate@musicnn-bimodal-0"
    assert evaluate_stage("metrics/oracle_shuffled/bimodal.seed2.json") == "evaluate@oracle_shuffled-bimodal-2"
    assert evaluate_stage("metrics/musicnn/hybrid.seed1.json") == "evaluate@musicnn-hybrid-1"
    assert evaluate_stage("metrics/none/elsa.seed0.json") == "evaluate@none-elsa-0"


def test_hybrid_fit_hands_the_epoch_loop_its_settings(record_epoch_loop):
    """The loop gets the model's name, patience, epochs, learning rate, scheduler, seeded generator,
    the metric to schedule and stop on, and the resume folder only when resuming."""
    from audiorec.models import hybrid

    calls = record_epoch_loop(hybrid)
    audio, _, train, _, _ = planted()
    val = train.groupby("user_id").head(1)
    settings = dict(hidden_dim=8, lr=0.005, patience=7, max_epochs=9, scheduler_patience=3, device="cpu")
    resumed = HybridRecommender(
        demo("hybrid", resume=True, stop_on="val_loss", **settings), seed=11, checkpoint_dir="ckpt"
    ).fit(audio, train, val=val, live="live")
    # resume=False: the old constructor default (params.yaml resumes); this run must get no resume folder.
    HybridRecommender(demo("hybrid", catalogue="all", resume=False, **settings), seed=11, checkpoint_dir="ckpt").fit(
        audio, train
    )
    first, second = calls
    assert first["live"] == "live" and calls[0]["validate"] is not None
    # The loop trains the model's own net, and validates it on the val users against train.
    assert first["net"] is resumed.net and first["optimizer"].param_groups[0]["params"] == list(
        resumed.net.parameters()
    )
    validated = first["validate"]()
    assert set(validated) == {"val/loss", "val/hitrate@50", "val/ndcg@50"} and validated["val/loss"] > 0
    # The resume fingerprint tells apart other audio, other train and other val data.
    for changed_audio, changed_train, changed_val in (
        (audio * 2, train, val),
        (audio, train.iloc[1:], val),
        (audio, train, val.iloc[1:]),
    ):
        HybridRecommender(
            demo("hybrid", resume=True, stop_on="val_loss", **settings), seed=11, checkpoint_dir="ckpt"
        ).fit(changed_audio, changed_train, val=changed_val)
        assert calls.pop()["fingerprint"] != first["fingerprint"]
    assert first["name"] == "hybrid" and (first["patience"], first["max_epochs"]) == (7, 9)
    assert first["optimizer"].param_groups[0]["lr"] == 0.005
    assert first["scheduler"].mode == "min" and first["scheduler"].patience == 3  # the val loss falls
    assert first["generator"] is resumed.generator and first["generator"].initial_seed() == 11
    assert (first["schedule_on"], first["stop_on"], second["stop_on"]) == ("val/loss", "val/loss", "val/ndcg@50")
    assert first["resume_dir"] == "ckpt" and second["resume_dir"] is None
    assert first["validate"] is not None and second["validate"] is None
    assert (
        first["fingerprint"] != second["fingerprint"]
    )  # other settings: a resumed run must not take the other's state
    played = np.unique(train["track_idx"])
    assert resumed.columns.tolist() == played.tolist()
    assert HybridRecommender(demo("hybrid", catalogue="all", **settings), seed=11).fit(
        audio, train
    ).columns.tolist() == list(range(len(audio)))


@pytest.mark.parametrize("key", ["hidden_dim", "batch_size", "max_epochs", "patience"])
def test_hybrid_sizes_below_one_are_refused_by_name(key):
    with pytest.raises(
        SettingsError, match=rf"^params\.yaml: hybrid\.{key}=0: Input should be greater than or equal to 1"
    ):
        demo("hybrid", **{key: 0})


def test_hybrid_catalogue_must_be_train_or_all():
    with pytest.raises(SettingsError, match=r"hybrid\.catalogue='cold': Input should be 'train' or 'all'"):
        demo("hybrid", catalogue="cold")


def test_hybrid_keeps_every_setting_it_was_given():
    # Every key of the section, each unlike params.yaml's value (resume: false, as params.yaml resumes).
    settings = dict(
        hidden_dim=5,
        catalogue="all",
        lr=0.2,
        batch_size=3,
        max_epochs=4,
        stop_on="val_loss",
        patience=6,
        scheduler_patience=2,
        device="cpu",
        resume=False,
    )
    model = HybridRecommender(demo("hybrid", **settings), seed=9, checkpoint_dir="c")
    assert model.settings.model_dump() == settings
    assert model.config() == {**settings, "seed": 9} and (model.seed, model.checkpoint_dir) == (9, "c")


def test_hybrid_net_reconstructs_rows_as_elsa_from_unit_audio_factors():
    """forward(x) = x A Aᵀ - x, A the tower's output with each row scaled to unit length."""
    from audiorec.models.hybrid import HybridNet

    torch.manual_seed(0)
    net = HybridNet(audio_dim=6, hidden_dim=4)
    audio = torch.randn(5, 6)
    rows = torch.tensor([[1.0, 0, 1, 0, 0], [0, 1, 1, 1, 0]])
    raw = net.tower(audio).detach().numpy()
    factors = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    x = rows.numpy()
    np.testing.assert_allclose(net.factors(audio).detach().numpy(), factors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net(rows, audio).detach().numpy(), x @ factors @ factors.T - x, rtol=1e-5, atol=1e-6)


def test_hybrid_epoch_loss_is_the_mean_of_every_users_loss():
    """With lr 0 the net stays put, so the epoch's loss is each user's normalised MSE, averaged over all
    users, whatever the batches (7 users in batches of 3: the last batch is short)."""
    audio, _, train, _, _ = planted(users_per_genre=2)
    train = train[train["user_id"].isin(sorted(train["user_id"].unique())[:7])]
    # fit's own lr only moves the net before the check; the lr-0 optimizer below keeps it put
    # (settings refuse lr 0).
    model = HybridRecommender(demo("hybrid", hidden_dim=8, batch_size=3, device="cpu", max_epochs=1))
    model.fit(audio, train)
    rows = model._rows(train, model._user_rows)
    optimizer = torch.optim.Adam(model.net.parameters(), lr=0.0)
    factors = model.net.factors(model.audio[model.columns]).detach().numpy()
    x = rows.toarray()
    reconstructed = x @ factors @ factors.T - x

    def unit(m):
        return m / np.linalg.norm(m, axis=1, keepdims=True)

    per_user = ((unit(reconstructed) - unit(x)) ** 2).mean(axis=1)
    assert model._train_epoch(rows, optimizer) == pytest.approx(per_user.mean(), rel=1e-5)


def test_hybrid_unknown_device_is_refused_by_name():
    with pytest.raises(SettingsError, match=r"^params\.yaml: hybrid\.device='tpu': String should match pattern"):
        demo("hybrid", device="tpu")


def test_hybrid_takes_float64_audio_like_float32():
    """Vectors saved as float64 are read as float32: the same factors as from the float32 copy."""
    audio, _, train, _, _ = planted()
    wide = HybridRecommender(demo("hybrid", hidden_dim=8, max_epochs=2, device="cpu")).fit(
        audio.astype(np.float64), train
    )
    narrow = HybridRecommender(demo("hybrid", hidden_dim=8, max_epochs=2, device="cpu")).fit(audio, train)
    with torch.no_grad():
        np.testing.assert_array_equal(wide._item_vectors(), narrow._item_vectors())


def test_elsa_fit_hands_the_epoch_loop_its_settings(record_epoch_loop):
    """The loop gets ELSA's own model and optimizer, a fixed learning rate scheduled on the train
    loss, the val users of train, the stopping metric, and the resume folder only when resuming."""
    from audiorec.models import elsa

    calls = record_epoch_loop(elsa)
    train, truth = co_listening()
    no_audio = np.zeros((60, 0), np.float32)
    outsider = pd.DataFrame({"user_id": ["nobody"], "track_idx": [0]})
    settings = dict(factors=4, lr=0.05, patience=5, max_epochs=7, device="cpu")
    val = pd.concat([truth, outsider])
    model = ELSARecommender(demo("elsa", resume=True, stop_on="val_ndcg", **settings), checkpoint_dir="ckpt").fit(
        no_audio, train, val=val, live="live"
    )
    # resume=False: the old constructor default (params.yaml resumes); this run must get no resume folder.
    ELSARecommender(demo("elsa", resume=False, **settings), checkpoint_dir="ckpt").fit(no_audio, train)
    first, second = calls
    assert first["name"] == "elsa" and (first["patience"], first["max_epochs"]) == (5, 7)
    assert first["net"] is model.model and first["optimizer"] is elsa.elsa_optimizer(model.model)
    assert first["optimizer"].param_groups[0]["lr"] == 0.05
    assert isinstance(first["scheduler"], elsa.FixedLearningRate) and first["generator"] is torch.default_generator
    assert (first["schedule_on"], first["stop_on"], second["stop_on"]) == ("train/loss", "val/ndcg@50", None)
    assert first["resume_dir"] == "ckpt" and second["resume_dir"] is None and first["live"] == "live"
    assert second["validate"] is None
    validated = first["validate"]()  # the outsider has no train row: validation reads the others only
    assert set(validated) == {"val/hitrate@50", "val/ndcg@50"}
    assert validated["val/hitrate@50"] == pytest.approx(hitrate(model, truth, 50))
    # The resume fingerprint tells apart other train and other val data, and a larger catalogue.
    for changed_train, changed_val in ((train.iloc[1:], val), (train, val.iloc[1:])):
        ELSARecommender(demo("elsa", resume=True, stop_on="val_ndcg", **settings), checkpoint_dir="ckpt").fit(
            no_audio, changed_train, val=changed_val
        )
        assert calls.pop()["fingerprint"] != first["fingerprint"]
    wider = np.zeros((len(no_audio) + 1, 0), np.float32)
    ELSARecommender(demo("elsa", resume=True, stop_on="val_ndcg", **settings), checkpoint_dir="ckpt").fit(
        wider, train, val=val
    )
    assert calls.pop()["fingerprint"] != first["fingerprint"]
    ELSARecommender(demo("elsa", resume=True, stop_on="val_ndcg", **settings), checkpoint_dir="ckpt").fit(
        no_audio, train, val=val
    )
    assert calls.pop()["fingerprint"] == first["fingerprint"]  # the same run, resumable


def test_elsa_epoch_passes_its_batch_size_and_shuffle_to_elsarec(monkeypatch):
    train, _ = co_listening()
    model = ELSARecommender(demo("elsa", factors=4, batch_size=9, shuffle=True, max_epochs=1, device="cpu")).fit(
        np.zeros((60, 0), np.float32), train
    )
    seen = {}

    def fit(interactions, **options):
        seen.update(interactions=interactions, **options)
        return {"nmse_train": [0.25]}

    monkeypatch.setattr(model.model, "fit", fit)
    assert model._train_epoch() == 0.25
    assert seen["interactions"] is model.interactions
    assert (seen["epochs"], seen["batch_size"], seen["shuffle"], seen["verbose"]) == (1, 9, True, False)


@pytest.mark.parametrize("key", ["factors", "batch_size", "max_epochs", "patience"])
def test_elsa_sizes_below_one_are_refused_by_name(key):
    with pytest.raises(
        SettingsError, match=rf"^params\.yaml: elsa\.{key}=0: Input should be greater than or equal to 1"
    ):
        demo("elsa", **{key: 0})


def test_elsa_unknown_device_and_unknown_user_are_named(tmp_path):
    with pytest.raises(SettingsError, match=r"^params\.yaml: elsa\.device='tpu': String should match pattern"):
        demo("elsa", device="tpu")
    train, _ = co_listening()
    model = ELSARecommender(demo("elsa", factors=4, max_epochs=1, device="cpu")).fit(
        np.zeros((60, 0), np.float32), train
    )
    with pytest.raises(KeyError, match="ELSA cannot represent them"):
        model.recommend(["nobody"], 5)
    users = list(model._user_rows[:3])
    assert model.recommend(users, 5)["user_id"].tolist() == users
    model.save(tmp_path / "new" / "folder")  # a folder whose parents do not exist yet
    assert (tmp_path / "new" / "folder" / ITEM_FACTORS).exists()


def test_bimodal_fit_hands_the_epoch_loop_its_settings(record_epoch_loop):
    from audiorec.models import bimodal

    calls = record_epoch_loop(bimodal)
    audio, factors, train, _, _ = planted()
    val = train.groupby("user_id").head(1)
    settings = dict(hidden_dim=8, lr=0.005, patience=7, max_epochs=9, scheduler_patience=3, device="cpu")
    model = BimodalRecommender(
        demo("bimodal", resume=True, **settings), collaborative_factors=factors, seed=11, checkpoint_dir="ckpt"
    ).fit(audio, train, val=val, live="live")
    # resume=False: the old constructor default (params.yaml resumes); this run must get no resume folder.
    BimodalRecommender(
        demo("bimodal", stop_on="train_loss", resume=False, **settings),
        collaborative_factors=factors,
        seed=11,
        checkpoint_dir="ckpt",
    ).fit(audio, train)
    first, second = calls
    assert first["name"] == "bimodal" and (first["patience"], first["max_epochs"]) == (7, 9)
    assert first["net"] is model.net and first["optimizer"].param_groups[0]["params"] == list(model.net.parameters())
    assert first["optimizer"].param_groups[0]["lr"] == 0.005
    assert first["scheduler"].mode == "min" and first["scheduler"].patience == 3  # on the train loss
    assert first["generator"] is model.generator and first["generator"].initial_seed() == 11
    assert (first["schedule_on"], first["stop_on"], second["stop_on"]) == ("train/loss", "val/ndcg@50", "train/loss")
    assert first["resume_dir"] == "ckpt" and second["resume_dir"] is None and first["live"] == "live"
    assert second["validate"] is None and set(first["validate"]()) == {"val/hitrate@50", "val/ndcg@50"}
    for changed_audio, changed_factors, changed_train, changed_val in (
        (audio * 2, factors, train, val),
        (audio, factors * 2, train, val),
        (audio, factors, train.iloc[1:], val),
        (audio, factors, train, val.iloc[1:]),
    ):
        BimodalRecommender(
            demo("bimodal", resume=True, **settings),
            collaborative_factors=changed_factors,
            seed=11,
            checkpoint_dir="ckpt",
        ).fit(changed_audio, changed_train, val=changed_val)
        assert calls.pop()["fingerprint"] != first["fingerprint"]


def test_bimodal_net_views_are_unit_vectors_of_each_tower():
    from audiorec.models.bimodal import BimodalNet

    torch.manual_seed(0)
    net = BimodalNet(content_dim=6, collaborative_dim=3, hidden_dim=4)
    audio, factors = torch.randn(5, 6), torch.randn(5, 3)
    content, collaborative = (view.detach().numpy() for view in net(audio, factors))
    raw_content, raw_collaborative = net.content(audio).detach().numpy(), net.collaborative(factors).detach().numpy()
    np.testing.assert_allclose(
        content, raw_content / np.linalg.norm(raw_content, axis=1, keepdims=True), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        collaborative,
        raw_collaborative / np.linalg.norm(raw_collaborative, axis=1, keepdims=True),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("retrieval", ["average", "content", "collaborative"])
@pytest.mark.parametrize("normalize_outputs", [True, False])
@pytest.mark.parametrize("cold_collaborative", ["none", "elsa_row"])
def test_bimodal_item_vectors_follow_retrieval_normalisation_and_cold_rule(
    retrieval, normalize_outputs, cold_collaborative
):
    """Worked in numpy from the two towers: the content view, the collaborative view or their mean,
    unit rows when normalize_outputs, and with cold_collaborative none, tracks nobody played keep
    their content view."""
    audio, factors, train, cold, _ = planted()
    model = BimodalRecommender(
        demo(
            "bimodal",
            hidden_dim=8,
            max_epochs=1,
            device="cpu",
            retrieval=retrieval,
            normalize_outputs=normalize_outputs,
            cold_collaborative=cold_collaborative,
        ),
        collaborative_factors=factors,
    ).fit(audio, train)
    with torch.no_grad():
        content = model.net.content(torch.tensor(audio)).numpy()
        collaborative = model.net.collaborative(torch.tensor(factors)).numpy()
        vectors = model._item_vectors()
    if normalize_outputs:
        content = content / np.linalg.norm(content, axis=1, keepdims=True)
        collaborative = collaborative / np.linalg.norm(collaborative, axis=1, keepdims=True)
    expected = {"content": content, "collaborative": collaborative, "average": (content + collaborative) / 2}[retrieval]
    if cold_collaborative == "none" and retrieval != "content":
        unplayed = np.setdiff1d(np.arange(len(audio)), train["track_idx"])
        assert set(cold) <= set(unplayed)
        expected = expected.copy()
        expected[unplayed] = content[unplayed]
    np.testing.assert_allclose(vectors, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "n_tracks, sizes", [(7, (3, 4)), (8, (3, 3, 2))], ids=["lone_seventh_joins", "pair_stays_apart"]
)
def test_bimodal_epoch_loss_is_the_mean_over_tracks_and_only_a_lone_track_joins_the_batch_before(n_tracks, sizes):
    """lr 0: the net stays put. Tracks in batches of 3, the remainder last: 7 tracks are 3 + 4 (the
    lone seventh joins the second batch), 8 tracks are 3 + 3 + 2 (a remainder of two is a batch of
    its own). The epoch's loss is each batch's two-way contrastive loss weighted by its size."""
    from audiorec.models.bimodal import decoupled_contrastive_loss

    audio, factors, train, _, _ = planted()
    played = np.unique(train["track_idx"])[:n_tracks]
    small = train[train["track_idx"].isin(played)]
    # fit's own lr only moves the net before the check; the lr-0 optimizer below keeps it put
    # (settings refuse lr 0).
    model = BimodalRecommender(
        demo("bimodal", hidden_dim=8, batch_size=3, temperature=0.5, max_epochs=1, device="cpu"),
        collaborative_factors=factors,
        seed=3,
    )
    model.fit(audio, small)
    tracks = torch.as_tensor(played)
    model.generator.manual_seed(5)
    order = tracks[torch.randperm(n_tracks, generator=torch.Generator().manual_seed(5))]
    expected = 0.0
    with torch.no_grad():
        for batch in torch.split(order, list(sizes)):
            content, collaborative = model.net(model.audio[batch], model.factors[batch])
            two_way = decoupled_contrastive_loss(content, collaborative, 0.5) + decoupled_contrastive_loss(
                collaborative, content, 0.5
            )
            expected += two_way.item() * len(batch)
    optimizer = torch.optim.Adam(model.net.parameters(), lr=0.0)
    assert model._train_epoch(tracks, optimizer) == pytest.approx(expected / n_tracks, rel=1e-5)


@pytest.mark.parametrize("key", ["hidden_dim", "max_epochs", "patience"])
def test_bimodal_sizes_below_one_are_refused_by_name(key):
    with pytest.raises(
        SettingsError, match=rf"^params\.yaml: bimodal\.{key}=0: Input should be greater than or equal to 1"
    ):
        demo("bimodal", **{key: 0})


def test_bimodal_keeps_every_setting_and_names_an_unknown_device():
    # Every key of the section, each unlike params.yaml's value (resume: false, as params.yaml resumes).
    settings = dict(
        hidden_dim=5,
        temperature=0.3,
        retrieval="content",
        cold_collaborative="elsa_row",
        normalize_outputs=False,
        lr=0.2,
        batch_size=3,
        max_epochs=4,
        stop_on="train_loss",
        patience=6,
        scheduler_patience=2,
        device="cpu",
        resume=False,
    )
    model = BimodalRecommender(demo("bimodal", **settings), seed=9, checkpoint_dir="c")
    assert model.settings.model_dump() == settings
    assert model.config() == {**settings, "seed": 9} and (model.seed, model.checkpoint_dir) == (9, "c")
    with pytest.raises(SettingsError, match=r"^params\.yaml: bimodal\.device='tpu': String should match pattern"):
        demo("bimodal", device="tpu")
