"""The layer sweep: the choice on validation, the layer table, the grid's layer runs, the stored files."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audiorec import paths
from audiorec.evaluation import layers
from audiorec.workflow import grid
from model_settings import default_params


def per_user(val_ndcg, test_hitrate):
    """Evaluate's per-user frame: users 0.. in val, users 100.. in test."""
    val = pd.DataFrame({"split": "val", "user_id": range(len(val_ndcg)), "ndcg@50": val_ndcg, "hitrate@50": 0.0})
    test = pd.DataFrame(
        {"split": "test", "user_id": range(100, 100 + len(test_hitrate)), "ndcg@50": 0.0, "hitrate@50": test_hitrate}
    )
    return pd.concat([val, test], ignore_index=True)


# Layer `a` is better on validation under both models, `b` on test: the choice must follow validation.
SWEEP = {
    ("a", "knn"): per_user([0.3, 0.1, 0.2], [0.0, 0.0, 1.0]),
    ("b", "knn"): per_user([0.1, 0.1, 0.1], [1.0, 1.0, 1.0]),
    ("a", "shallow"): per_user([0.2, 0.2, 0.2], [0.0, 1.0, 0.0]),
    ("b", "shallow"): per_user([0.3, 0.2, 0.3], [1.0, 1.0, 0.0]),
}


def test_the_choice_is_the_best_mean_val_ndcg_over_models_never_test():
    scores = layers.layer_scores(SWEEP, ["a", "b"], "ndcg@50")
    # a: (0.2 + 0.2) / 2; b: (0.1 + 0.2667) / 2, by hand.
    assert scores["a"] == pytest.approx(0.2) and scores["b"] == pytest.approx((0.1 + 0.8 / 3) / 2)
    assert layers.choose_layer(scores) == "a"
    assert layers.choose_layer(pd.Series([0.2, 0.2], index=["x", "y"])) == "x"  # a tie: the earlier layer


def test_the_layer_table_gives_intervals_marks_and_the_mean_over_layers():
    table = layers.sweep_table("musicnn", SWEEP, ["a", "b"], k=50)
    assert list(table["layer"]) == ["a", "b", layers.MEAN_OVER_LAYERS] * 2
    knn_a = table.iloc[0]
    values = np.array([0.3, 0.1, 0.2])
    half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)  # the Student-t interval by hand
    assert knn_a["val NDCG@50"] == pytest.approx(0.2) and knn_a["val NDCG@50 ±"] == pytest.approx(half)
    assert knn_a["test HitRate@50"] == pytest.approx(1 / 3)
    assert list(table["chosen"]) == [True, False, False, True, False, False]
    # Shallow alone would choose b on validation: marked, but the backend's choice stays a.
    assert list(table["best_for_model"]) == [True, False, False, False, True, False]
    mean_row = table.iloc[5]
    assert mean_row["val NDCG@50"] == pytest.approx((0.2 + 0.8 / 3) / 2) and np.isnan(mean_row["val NDCG@50 ±"])
    # Shallow, b against the chosen a, user by user: (0.1, 0, 0.1), by hand.
    differences = np.array([0.1, 0.0, 0.1])
    assert table.iloc[4]["val NDCG@50 vs chosen"] == pytest.approx(differences.mean())
    assert table.iloc[4]["val NDCG@50 vs chosen ±"] == pytest.approx(
        stats.t.ppf(0.975, 2) * differences.std(ddof=1) / np.sqrt(3)
    )
    markdown = layers.to_markdown(table, 50)
    assert (
        "| musicnn | knn | **a** (chosen) | 0.2000 ± " in markdown and "| musicnn | shallow | b | 0.2667 ± " in markdown
    )


def test_the_grid_sweeps_every_stored_layer_under_each_swept_model():
    params = default_params()
    params["musicnn"] = {**params["musicnn"], "layers": ["cnn1", "penultimate"]}
    params["layer_sweep"] = {"backends": ["musicnn", "vgg_msd"], "models": ["knn", "bert4rec"]}
    sweep = grid.sweep_runs(params)
    # vgg_msd is not in backends and sweeps nothing, as leave_out; each run of a seeded model once per seed.
    # The main layer (penultimate) is the main grid's musicnn runs: the same matrix is not trained on twice.
    assert [run.name for run in sweep] == [
        "musicnn.cnn1-knn",
        *[f"musicnn.cnn1-bert4rec-{seed}" for seed in params["seeds"]],
    ]
    run = sweep[0]
    assert run.folder == "layers/musicnn/cnn1" and run.label == "musicnn@cnn1" and run.layer == "cnn1"
    assert paths.embeddings(run.backend).as_posix() == "data/layers/musicnn/cnn1.npy"
    names = grid.sweep_run_names(params, "musicnn")
    assert names["cnn1", "knn"] == [("layers/musicnn/cnn1", "knn")]
    assert names["penultimate", "knn"] == [("musicnn", "knn")]
    assert names["penultimate", "bert4rec"] == [("musicnn", f"bert4rec.seed{seed}") for seed in params["seeds"]]
    # Where leave_out drops the main grid's pair, the sweep runs the main layer itself.
    params["leave_out"] = ["musicnn-bert4rec"]
    assert [run.name for run in grid.sweep_runs(params) if run.layer == "penultimate"] == [
        f"musicnn.penultimate-bert4rec-{seed}" for seed in params["seeds"]
    ]
    # With `layer: best` there is no main layer before the choice: every stored layer is swept.
    params["musicnn"] = {**params["musicnn"], "layer": "best"}
    assert "musicnn.penultimate-knn" in [run.name for run in grid.sweep_runs(params)]


def test_a_layer_named_in_backends_is_read_from_its_backends_extraction():
    params = default_params()
    params["backends"] = ["oracle", "musicnn@max_pool"]
    params["layer_sweep"] = {"backends": [], "models": []}
    assert grid.embedding_backends(params) == ["oracle", "musicnn", "none"]
    names = [run.name for run in grid.runs(params)]
    assert "musicnn.max_pool-knn" in names and not any(name.startswith("musicnn-") for name in names)


def test_params_refuse_a_choice_without_a_sweep_and_a_sweep_without_layers():
    from audiorec.config import ParamsError, validate

    params = default_params()
    params["musicnn"] = {**params["musicnn"], "layer": "best"}
    params["layer_sweep"] = {"backends": [], "models": ["knn"]}
    with pytest.raises(ParamsError, match="musicnn.layer: best is chosen in the layer sweep; add musicnn to"):
        validate(params)
    params["layer_sweep"] = {"backends": ["musicnn"], "models": ["knn"]}
    params["musicnn"] = {**params["musicnn"], "layers": []}
    with pytest.raises(ParamsError, match="layer: best chooses among the stored layers"):
        validate(params)
    params["musicnn"] = {**params["musicnn"], "layer": "penultimate"}
    with pytest.raises(ParamsError, match="layer_sweep.backends: 'musicnn' stores no layers; set musicnn.layers"):
        validate(params)
    params["musicnn"] = {**params["musicnn"], "layers": ["pool2"]}
    with pytest.raises(ParamsError, match="layer 'pool2' is not a layer of MSD_musicnn"):
        validate(params)


def test_a_backends_layer_keys_regenerate_the_graph():
    from audiorec.workflow.graph import is_grid_key

    assert is_grid_key("musicnn.layer") and is_grid_key("mert.layers") and is_grid_key("layer_sweep.models")
    assert not is_grid_key("musicnn.model") and not is_grid_key("bert4rec.n_layers")


def test_a_layer_in_backends_must_be_stored():
    from audiorec.config import ParamsError, validate

    params = default_params()
    params["backends"] = [*params["backends"], "musicnn@max_pool"]
    validate(params)
    params["musicnn"] = {**params["musicnn"], "layers": ["cnn1"]}
    with pytest.raises(ParamsError, match="'musicnn@max_pool': musicnn stores the layers cnn1; add 'max_pool' to"):
        validate(params)
