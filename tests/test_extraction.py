"""The extraction engine (shards, resume after a kill, torchrun) and the pretrained backends.

Pretrained weights never come from a hub here: the transformers backends load tiny
randomly initialised HuBERT / Data2VecAudio models saved to a temp folder, through
the same `from_pretrained` path as real weights; the backends whose packages are not
installable here are tested up to their import boundary."""

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from audiorec import backends
from audiorec.backends.base import BackendUnavailable, ExtractionError
from audiorec.io import masked_rows
from audiorec.workflow.worktree import REPO
from model_settings import section

RATE = 16000


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Folders holding a tiny random HuBERT (MERT's architecture) and Data2VecAudio (Music2Vec's)."""
    import torch
    from transformers import (
        Data2VecAudioConfig,
        Data2VecAudioModel,
        HubertConfig,
        HubertModel,
        Wav2Vec2FeatureExtractor,
    )

    small = dict(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
    )
    folders = {}
    for name, config, model in (
        ("hubert", HubertConfig, HubertModel),
        ("data2vec", Data2VecAudioConfig, Data2VecAudioModel),
    ):
        torch.manual_seed(0)
        folder = tmp_path_factory.mktemp(name)
        extra = {"num_conv_pos_embeddings": 5, "conv_pos_kernel_size": 5} if name == "data2vec" else {}
        model(config(**{**small, **extra})).save_pretrained(folder)
        Wav2Vec2FeatureExtractor(sampling_rate=RATE, do_normalize=True).save_pretrained(folder)
        folders[name] = str(folder)
    return folders


def tiny(backend, folder, **overrides):
    """`backend`'s params.yaml section on the tiny model in `folder`, at the tiny model's own rate
    (the old fallback of `sample_rate`); Music2Vec's preprocessing is the folder's own too (its old
    default), not params.yaml's data2vec-audio-base-960h from the hub."""
    own = {"feature_extractor": folder} if backend == "music2vec" else {}
    return section(backend, model=folder, sample_rate=RATE, **own, **overrides)


def clips(folder, lengths, rate=RATE):
    """WAV files of seeded noise with a tone, one per length (seconds); a tracks table for them."""
    rows = []
    for i, seconds in enumerate(lengths):
        t = np.arange(int(seconds * rate)) / rate
        wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.05 * np.random.default_rng(i).standard_normal(len(t))
        path = folder / f"t{i:03d}.wav"
        sf.write(path, wave.astype(np.float32), rate)
        rows.append({"track_id": f"t{i:03d}", "audio_path": str(path)})
    return pd.DataFrame(rows)


@functools.cache
def loaded(folder, model_class):
    return model_class.from_pretrained(folder).eval()


def independent_embedding(folder, model_class, waveform, layer):
    """What the backend must give, computed without it: the feature extractor's per-clip
    normalisation by hand, one clip per forward pass, the hidden state averaged over frames."""
    import torch

    model = loaded(folder, model_class)
    normalised = (waveform - waveform.mean()) / np.sqrt(waveform.var() + 1e-7)
    with torch.no_grad():
        hidden = model(torch.from_numpy(normalised[None]).float(), output_hidden_states=True).hidden_states[layer]
    return hidden[0].mean(dim=0).numpy()


@pytest.mark.parametrize("backend, model", [("mert", "hubert"), ("music2vec", "data2vec")])
def test_transformers_backend_matches_an_independent_forward_pass(tmp_path, tiny_models, backend, model):
    from transformers import Data2VecAudioModel, HubertModel

    model_class = {"hubert": HubertModel, "data2vec": Data2VecAudioModel}[model]
    tracks = clips(tmp_path, [0.5, 0.3, 0.5, 0.5, 0.3])  # two lengths in one batch: grouped, never padded
    for layer in (-1, 1):
        extractor = backends.create(backend, **tiny(backend, tiny_models[model], layer=layer))
        embeddings, stats, _ = backends.extract(extractor, tracks, batch_size=5, device="cpu")
        assert stats["dim"] == 16
        for row, path in enumerate(tracks["audio_path"]):
            waveform = sf.read(path, dtype="float32")[0]
            np.testing.assert_allclose(
                embeddings[row],
                independent_embedding(tiny_models[model], model_class, waveform, layer),
                rtol=1e-4,
                atol=1e-5,
            )


def test_every_stored_hidden_state_is_the_models_own(tmp_path, tiny_models):
    """`layers` stores each `hidden_states[i]` pooled over time from the same forward pass: every block equals an
    independent forward pass's, and the main layer (`-1`, the last) is named by its index."""
    from transformers import HubertModel

    from audiorec.backends.base import split_layers

    tracks = clips(tmp_path, [0.5, 0.3, 0.5])
    extractor = backends.create("mert", **tiny("mert", tiny_models["hubert"], layer=-1, layers=[0, 1, 2]))
    assert extractor.layer_dims == {"0": 16, "1": 16, "2": 16} and extractor.layer_key("-1") == "2"
    embeddings, stats, _ = backends.extract(extractor, tracks, batch_size=3, device="cpu")
    blocks = split_layers(embeddings, extractor.layer_dims)
    for row, path in enumerate(tracks["audio_path"]):
        waveform = sf.read(path, dtype="float32")[0]
        for layer in (0, 1, 2):
            np.testing.assert_allclose(
                blocks[str(layer)][row],
                independent_embedding(tiny_models["hubert"], HubertModel, waveform, layer),
                rtol=1e-4,
                atol=1e-5,
            )


def test_transformers_weights_errors_say_how_to_get_them(tmp_path, tiny_models):
    with pytest.raises(
        BackendUnavailable,
        match=r"mert: cannot load the weights 'm-a-p/MERT-v1-330M' \(HF_HUB_OFFLINE=1.*hf download m-a-p/MERT-v1-330M",
    ):
        backends.create("mert", **section("mert"))
    with pytest.raises(BackendUnavailable, match="mert.model: the folder .*nowhere does not exist"):
        backends.create("mert", **section("mert", model=str(tmp_path / "nowhere")))
    # A repository whose model class is its own code (as MERT's) loads only with trust_remote_code.
    custom = tmp_path / "custom"
    custom.mkdir()
    shutil.copy(os.path.join(tiny_models["hubert"], "preprocessor_config.json"), custom)
    (custom / "config.json").write_text(
        json.dumps(
            {
                "model_type": "mert_like",
                "auto_map": {"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel"},
            }
        )
    )
    with pytest.raises(BackendUnavailable, match="mert.trust_remote_code: true"):
        backends.create("mert", **section("mert", model=str(custom)))
    with pytest.raises(
        BackendUnavailable, match="music2vec: cannot load the weights 'facebook/data2vec-audio-base-960h'"
    ):
        backends.create(
            "music2vec",
            **section(
                "music2vec", model=tiny_models["data2vec"], feature_extractor="facebook/data2vec-audio-base-960h"
            ),
        )
    with pytest.raises(ValueError, match="mert: hidden state 5 .* hidden states 0..2"):
        backends.create("mert", **tiny("mert", tiny_models["hubert"], layer=5))


def test_reduced_precision_is_refused_off_cuda(tiny_models):
    extractor = backends.create("music2vec", **tiny("music2vec", tiny_models["data2vec"]))
    with pytest.raises(ValueError, match="extract.dtype=float16 runs only on a CUDA device"):
        extractor.use_device("cpu", "float16")


@pytest.mark.parametrize(
    "backend, params, message",
    [
        ("encodecmae", {}, "`encodecmae` is not installed.*pip install git\\+https://github.com/habla-liaa/encodecmae"),
        ("jukebox", {}, "`jukemirlib` is not installed.*rodrigo-castellon/jukemirlib"),
        ("mule", {}, "`mule_torch` is not installed.*pip install mule-torch"),
        ("muq", {}, "`muq` is not installed.*pip install muq"),
        ("muq_mulan", {}, "`muq` is not installed.*pip install muq"),
        ("musicfm", {"repo": "/nonexistent/musicfm"}, "musicfm.repo: /nonexistent/musicfm does not exist.*git clone"),
    ],
)
def test_packages_outside_pypi_fail_at_the_import_boundary_with_the_fix(monkeypatch, backend, params, message):
    for package in ("encodecmae", "jukemirlib", "mule_torch", "muq"):
        monkeypatch.setitem(sys.modules, package, None)  # not importable, even where installed
    with pytest.raises(BackendUnavailable, match=message):
        backends.create(backend, **section(backend, **params))


# --- resume after a kill ---------------------------------------------------------------------

# A backend whose vectors depend on the batch they are computed in (1e-3 x the batch mean is
# added), so a resumed run matches only if every track lands in the same batch as before.
# It logs how many tracks each call embeds, and SIGKILLs its own process at call `kill_at`.
RUNNER = textwrap.dedent(
    """
    import json, os, signal, sys
    import numpy as np, pandas as pd
    from audiorec import backends

    tracks_path, out, resume, kill_at, log = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]

    class BatchCoupled(backends.AudioBackend):
        name = "coupled"
        sample_rate = 8000
        dim = 8
        calls = 0

        def embed(self, waveform):
            return np.abs(np.fft.rfft(waveform, n=256))[:64].reshape(8, 8).mean(axis=1).astype(np.float32)

        def embed_batch(self, waveforms):
            BatchCoupled.calls += 1
            if BatchCoupled.calls == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            with open(log, "a") as handle:
                handle.write(f"{len(waveforms)}\\n")
            single = np.stack([self.embed(w) for w in waveforms])
            return (single + np.float32(1e-3) * single.mean(axis=0)).astype(np.float32)

    result = backends.extract(
        BatchCoupled(), pd.read_parquet(tracks_path), batch_size=2, on_error="skip", shard_batches=2,
        resume_root=resume if resume != "-" else None, identity={"any": 1},
    )
    np.save(out, result[0])
    with open(out + ".json", "w") as handle:
        json.dump(result[2], handle)
    """
)


def run_extraction(tmp_path, tracks_path, out, resume="-", kill_at=0):
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tracks_path), str(out), str(resume), str(kill_at), str(log)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    embedded = [int(n) for n in log.read_text().split()] if log.exists() else []
    return result, embedded


def test_a_killed_extraction_resumes_to_the_byte_identical_matrix(tmp_path):
    tracks = clips(
        tmp_path, [0.25 + 0.01 * (i % 3) for i in range(22)], rate=8000
    )  # 6 shards of 4 tracks, the last of 2
    # A corrupted MP3 in shard 0: a real MP3 cut after its first 150 bytes.
    sf.write(tmp_path / "t001.mp3", np.zeros(2000, dtype=np.float32), 8000, format="MP3")
    (tmp_path / "t001.mp3").write_bytes((tmp_path / "t001.mp3").read_bytes()[:150])
    tracks.loc[1, "audio_path"] = str(tmp_path / "t001.mp3")
    tracks_path = tmp_path / "tracks.parquet"
    tracks.to_parquet(tracks_path)
    resume = tmp_path / "resume"

    uninterrupted, _ = run_extraction(tmp_path, tracks_path, tmp_path / "whole.npy")
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-2000:]

    killed, embedded = run_extraction(tmp_path, tracks_path, tmp_path / "resumed.npy", resume, kill_at=5)
    assert killed.returncode == -signal.SIGKILL
    assert embedded == [1, 2, 2, 2]  # shards 0 and 1 (one corrupted track skipped), killed in shard 2
    written = sorted(p.name for p in resume.rglob("*") if p.is_file())
    assert [name[:11] for name in written] == ["shard-00000", "shard-00001"], written

    resumed, embedded = run_extraction(tmp_path, tracks_path, tmp_path / "resumed.npy", resume)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert sum(embedded) == 22 - 8  # only the shards missing after the kill
    whole, again = (tmp_path / "whole.npy").read_bytes(), (tmp_path / "resumed.npy").read_bytes()
    assert whole == again
    # The skipped track of a shard loaded from disk is still reported and masked.
    for out in ("whole.npy", "resumed.npy"):
        skipped = json.loads((tmp_path / f"{out}.json").read_text())
        assert [(entry["row"], entry["track_id"]) for entry in skipped] == [(1, "t001")]
        assert masked_rows(np.load(tmp_path / out)).tolist() == [i == 1 for i in range(22)]


def test_a_shard_skipped_before_still_fails_under_fail(tmp_path):
    """Resuming with on_error: fail stops at a bad track that an earlier `skip` run masked."""
    tracks = clips(tmp_path, [0.25] * 4, rate=8000)
    (tmp_path / "t002.wav").write_bytes(b"")
    extractor = backends.create("mfcc", n_mfcc=4, sample_rate=8000)
    settings = dict(batch_size=2, shard_batches=1, resume_root=tmp_path / "resume", identity={})
    backends.extract(extractor, tracks, on_error="skip", **settings)
    assert len(list((tmp_path / "resume").rglob("shard-*.npz"))) == 2
    with pytest.raises(ExtractionError, match=r"track t002 \(row 2 of tracks.parquet"):
        backends.extract(extractor, tracks, on_error="fail", **settings)


# --- torchrun ----------------------------------------------------------------------------------


def test_torchrun_shards_equal_the_single_process_matrix(tmp_path, tiny_models):
    """The real stage under `torchrun --nproc_per_node 2` (gloo, CPU) against one process
    here: the same bytes. One torch thread in both, so the kernels round alike."""
    import torch

    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    tracks = clips(tmp_path, [0.3] * 7 + [0.2] * 3)
    tracks.to_parquet(work / "data" / "tracks.parquet")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["mert"].update(model=tiny_models["hubert"], sample_rate=RATE)
    params["extract"].update(batch_size=2, shard_batches=1, on_error="fail")
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "stages.extract",
    ]
    result = subprocess.run([*launcher, "--backend", "mert"], cwd=work, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((work / "metrics" / "extract" / "mert.json").read_text())["tracks"] == 10
    assert not (work / "data" / "resume" / "extract" / "mert").exists()  # cleared once the outputs were written

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single, _, _ = backends.extract(
            backends.create("mert", **params["mert"]), tracks, batch_size=2, shard_batches=1, device="cpu"
        )
    finally:
        torch.set_num_threads(threads)
    np.save(tmp_path / "single.npy", single)
    assert (tmp_path / "single.npy").read_bytes() == (work / "data" / "embeddings" / "mert.npy").read_bytes()
    assert np.isfinite(single).all()


def test_assemble_puts_every_ranks_shards_in_shard_order_and_names_a_lost_shard():
    from audiorec.backends.engine import ExtractionError, assemble

    row = lambda *values: np.array([values], dtype=np.float32)  # noqa: E731
    # Rank 0 holds shards 0 and 2, rank 1 shard 1: the matrix is shard 0, 1, 2 whatever the ranks' order.
    gathered = [
        {"shards": {1: np.concatenate([row(3, 3), row(4, 4)])}, "failures": {3: "unreadable"}},
        {"shards": {2: row(5, 5), 0: np.concatenate([row(1, 1), row(2, 2)])}, "failures": {}},
    ]
    embeddings, failures = assemble(gathered, 5, 2)
    np.testing.assert_array_equal(embeddings, np.array([[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]], np.float32))
    assert failures == {3: "unreadable"}
    empty, none = assemble([{"shards": {}, "failures": {}}], 0, 4)  # no tracks at all
    assert empty.shape == (0, 4) and empty.dtype == np.float32 and none == {}
    del gathered[1]["shards"][2]
    with pytest.raises(ExtractionError, match=r"^the gathered shards hold 4 rows for 5 tracks: a rank lost its work$"):
        assemble(gathered, 5, 2)


def test_ranks_from_torchruns_environment_and_which_shards_each_owns(monkeypatch):
    from audiorec.backends.engine import Ranks

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    alone = Ranks.from_env()
    assert (alone.rank, alone.size, alone.local_rank) == (0, 1, 0) and alone.is_main
    assert alone.gather({"shards": {}}) == [{"shards": {}}]  # one process: its own payload, no rendezvous
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    third = Ranks.from_env()
    assert (third.rank, third.size, third.local_rank) == (2, 3, 1) and not third.is_main
    assert [shard for shard in range(9) if third.owns(shard)] == [2, 5, 8]  # round robin


class FakeBackend:
    name, dim = "fake", 2

    def summary(self):
        return {"model": "none"}


def test_checked_refuses_a_wrong_shape_or_nan_outside_the_failed_rows_and_lists_the_skipped_ones():
    from audiorec.backends.engine import ExtractionError, checked

    tracks = pd.DataFrame({"track_id": ["a", "b", "c", "d"], "audio_path": ["a.mp3", "b.mp3", "c.mp3", "d.mp3"]})
    embeddings = np.ones((4, 2), np.float32)
    embeddings[[1, 3]] = np.nan  # the failed tracks' rows
    with pytest.raises(ValueError, match=r"^backend fake returned shape \(4, 3\); expected \(4, 2\)$"):
        checked(FakeBackend(), tracks, np.ones((4, 3), np.float32), {}, 1.0)
    with pytest.raises(
        ExtractionError, match=r"^backend fake produced NaN/Inf for 1 tracks, first d \(row 3 of tracks.parquet\)$"
    ):
        checked(FakeBackend(), tracks, embeddings, {1: "unreadable"}, 1.0)
    embeddings[2, 0] = np.inf
    with pytest.raises(
        ExtractionError, match=r"^backend fake produced NaN/Inf for 2 tracks, first c \(row 2 of tracks.parquet\)$"
    ):
        checked(FakeBackend(), tracks, embeddings, {1: "unreadable"}, 1.0)
    embeddings[2, 0] = 1.0
    kept, stats, skipped = checked(FakeBackend(), tracks, embeddings, {3: "too short", 1: "unreadable"}, 2.504)
    assert kept is embeddings
    assert skipped == [
        {"row": 1, "track_id": "b", "audio_path": "b.mp3", "reason": "unreadable"},
        {"row": 3, "track_id": "d", "audio_path": "d.mp3", "reason": "too short"},
    ]
    assert stats == {
        "dim": 2,
        "tracks": 4,
        "skipped_tracks": 2,
        "model": "none",
        "timing": {"seconds": 2.5, "tracks_per_second": 1.6},
    }  # 4 / 2.504 = 1.597...
    assert checked(FakeBackend(), tracks, embeddings, {3: "too short", 1: "unreadable"}, 0.5)[1]["timing"] == {
        "seconds": 0.5,
        "tracks_per_second": 8.0,
    }
