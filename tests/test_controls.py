import numpy as np
import pandas as pd
import pytest

from audiorec.controls import control_name, shuffle_rows
from audiorec.evaluation.report import Run, model_table, to_markdown


def test_shuffled_control_is_a_seeded_permutation_of_the_rows():
    embeddings = np.random.default_rng(0).normal(size=(500, 6)).astype(np.float32)
    shuffled = shuffle_rows(embeddings, seed=3)
    assert shuffled.shape == embeddings.shape and shuffled.dtype == embeddings.dtype
    # Every original row appears exactly once ...
    as_rows = lambda matrix: sorted(map(tuple, matrix.tolist()))  # noqa: E731
    assert as_rows(shuffled) == as_rows(embeddings)
    # ... but almost never at its own track (a random permutation fixes about one point).
    assert (shuffled == embeddings).all(axis=1).sum() < 5
    np.testing.assert_array_equal(shuffled, shuffle_rows(embeddings, seed=3))
    assert not np.array_equal(shuffled, shuffle_rows(embeddings, seed=4))


def _run(backend, hits, split="test"):
    users = [f"u{i:03d}" for i in range(len(hits))]
    metrics = {f"{metric}@10": hits for metric in ("hitrate", "mrr", "precision", "recall", "ndcg")}
    return Run(backend, "knn", 8, (pd.DataFrame({"split": split, "user_id": users, **metrics}),))


def test_tables_put_each_backend_next_to_its_control():
    rng = np.random.default_rng(2)
    content = (rng.random(200) < 0.7).astype(float)
    no_content = np.where(rng.random(200) < 0.6, 0.0, content)
    noise = (rng.random(200) < 0.2).astype(float)
    runs = [_run("oracle", content, "cold"), _run("random", noise, "cold")]
    controls = [_run(control_name("oracle"), no_content, "cold")]
    table = model_table(runs, k=10, split="cold", controls=controls).set_index("backend")
    assert table.loc["oracle", "shuffled_HitRate@10"] == pytest.approx(no_content.mean())
    assert table.loc["oracle", "p_t_shuffled_holm"] < 1e-6
    assert np.isnan(table.loc["random", "shuffled_HitRate@10"])
    markdown = to_markdown({"knn": table.reset_index()}, k=10)
    header, _, oracle_row, random_row = markdown.splitlines()[2:6]
    assert "shuffled HitRate@10" in header and "vs shuffled" in header
    assert f"{no_content.mean():.4f}" in oracle_row and "0.000*" in oracle_row.split("|")[-2]
    assert random_row.split("|")[-3].strip() == "—"


def test_the_order_control_gets_its_own_columns():
    rng = np.random.default_rng(3)
    ordered = (rng.random(200) < 0.5).astype(float)
    unordered = np.where(rng.random(200) < 0.5, 0.0, ordered)
    runs = [_run("oracle", ordered, "test"), _run("random", ordered, "test")]
    controls = [
        _run(control_name("oracle", "unordered"), unordered, "test"),
        _run(control_name("oracle"), ordered, "test"),
    ]
    table = model_table(runs, k=10, split="test", controls=controls).set_index("backend")
    assert table.loc["oracle", "unordered_HitRate@10"] == pytest.approx(unordered.mean())
    assert table.loc["oracle", "shuffled_HitRate@10"] == pytest.approx(ordered.mean())
    assert table.loc["oracle", "p_t_unordered_holm"] < 1e-6 and table.loc["oracle", "p_t_shuffled_holm"] == 1.0
    header = to_markdown({"bert4rec": table.reset_index()}, k=10).splitlines()[2]
    assert "unordered HitRate@10" in header and "vs unordered" in header
