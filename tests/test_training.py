"""The shared epoch loop (audiorec.models.training.train_epochs) on a scripted val curve."""

import logging
import subprocess
import sys

import pytest
import torch
from torch import nn

from audiorec.models.base import VAL_K
from audiorec.models.training import FixedLearningRate, train_epochs

METRIC = f"val/ndcg@{VAL_K}"


def run(val_scores: list[float], patience: int, min_epochs: int, metric: str = METRIC) -> tuple[int, int, list[float]]:
    """(epochs trained, epoch restored, lr after each epoch) for a model whose val `metric` values are `val_scores`."""
    net = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    mode = "min" if metric.endswith("loss") else "max"
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, patience=0)
    scores, rates = iter(val_scores), []

    def validate() -> dict[str, float]:
        with torch.no_grad():
            net.bias.fill_(len(rates))  # the weights remember which epoch they come from
        rates.append(None)
        return {metric: next(scores)}

    best_epoch, _ = train_epochs(
        "toy",
        net,
        optimizer,
        scheduler,
        torch.Generator(),
        patience,
        len(val_scores),
        train_epoch=lambda: 0.0,
        validate=validate,
        schedule_on=metric,
        stop_on=metric,
        resume_dir=None,
        fingerprint="",
        live=None,
        min_epochs=min_epochs,
    )
    assert net.bias.item() == best_epoch - 1  # the restored weights are the best epoch's
    return len(rates), best_epoch, [group["lr"] for group in optimizer.param_groups]


def test_without_min_epochs_a_lucky_first_epoch_stops_training():
    epochs, best, _ = run([0.5, 0.1, 0.2, 0.6, 0.7, 0.1, 0.1, 0.1], patience=2, min_epochs=0)
    assert (epochs, best) == (3, 1)


def test_min_epochs_keeps_training_and_the_learning_rate_until_then():
    epochs, best, lr = run([0.5, 0.1, 0.2, 0.6, 0.7, 0.1, 0.1, 0.1], patience=2, min_epochs=4)
    # Epochs 1-4 cannot end training; 4 and 5 beat the lucky first epoch; 6 and 7 do not.
    assert (epochs, best) == (7, 5)
    # The scheduler (patience 0, factor 0.1) first steps at epoch 5, so only epochs 6 and 7 cut the lr.
    assert lr == [1.0 * 0.1 * 0.1]


def test_an_early_best_that_is_never_beaten_stops_training_right_after_min_epochs():
    epochs, best, _ = run([0.9, 0.1, 0.2, 0.3, 0.4, 0.5], patience=2, min_epochs=3)
    assert (epochs, best) == (3, 1)


def test_a_tie_is_not_an_improvement():
    epochs, best, _ = run([0.5, 0.5, 0.5, 0.9], patience=2, min_epochs=0)
    assert (epochs, best) == (3, 1)


def test_a_loss_improves_by_falling_and_nan_never_improves():
    """The original's criterion: early stopping and the scheduler watch the val loss."""
    epochs, best, _ = run([3.0, 2.0, float("nan"), 1.5, 1.6, 1.7, 1.0], patience=2, min_epochs=0, metric="val/loss")
    assert (epochs, best) == (6, 4)


def run_on_losses(losses: list[float], stop_on: str | None) -> tuple[int, int]:
    """(epochs trained, epoch restored) for a model whose train losses are `losses` (val scores rise throughout)."""
    net = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    trained = iter(losses)
    epochs = []

    def train_epoch() -> float:
        epochs.append(None)
        with torch.no_grad():
            net.bias.fill_(len(epochs))  # the weights remember which epoch they come from
        return next(trained)

    best_epoch, _ = train_epochs(
        "toy",
        net,
        optimizer,
        FixedLearningRate(),
        torch.Generator(),
        2,
        len(losses),
        train_epoch=train_epoch,
        validate=lambda: {METRIC: float(len(epochs))},
        schedule_on=METRIC,
        resume_dir=None,
        fingerprint="",
        live=None,
        stop_on=stop_on,
    )
    assert net.bias.item() == best_epoch
    return len(epochs), best_epoch


def test_a_loss_as_stopping_metric_is_minimised():
    # The lowest loss is epoch 2; two epochs without a lower one stop training after epoch 4.
    assert run_on_losses([3.0, 1.0, 2.0, 1.5, 0.5, 0.1], stop_on="train/loss") == (4, 2)


def test_without_a_stopping_metric_every_epoch_runs_and_the_last_is_kept():
    assert run_on_losses([3.0, 1.0, 2.0, 1.5, 0.5, 0.7], stop_on=None) == (6, 6)


class RecordingLive:
    def __init__(self):
        self.history, self.summary = {}, {}

    def log_metric(self, name, value):
        self.history.setdefault(name, []).append(value)

    def next_step(self):
        pass


def toy_training(resume_dir, fail_at=None, fingerprint="data-1"):
    """A real (tiny) training whose every part of the state matters: Adam's moments, the scheduler,
    the batch generator, torch's global generator (the noise), the best score so far."""
    torch.manual_seed(0)
    net = nn.Linear(2, 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", patience=0, factor=0.5)
    generator = torch.Generator().manual_seed(1)
    live, calls = RecordingLive(), []

    def train_epoch():
        calls.append(None)
        if len(calls) == fail_at:
            raise RuntimeError("killed")
        x = torch.randn(16, 2, generator=generator)
        loss = ((net(x) - (x[:, :1] * 3 + torch.rand(16, 1))) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    def validate():
        with torch.no_grad():  # a score that rises and falls with the weights
            return {METRIC: -abs(float(net.weight[0, 0]) - 2.5)}

    best = train_epochs(
        "toy",
        net,
        optimizer,
        scheduler,
        generator,
        2,
        12,
        train_epoch=train_epoch,
        validate=validate,
        schedule_on=METRIC,
        stop_on=METRIC,
        resume_dir=resume_dir,
        fingerprint=fingerprint,
        live=live,
    )
    return best, {k: v.clone() for k, v in net.state_dict().items()}, live, optimizer.param_groups[0]["lr"]


def test_a_killed_training_resumes_to_the_uninterrupted_result(tmp_path, caplog):
    expected = toy_training(None)
    with pytest.raises(RuntimeError, match="killed"):
        toy_training(str(tmp_path), fail_at=5)
    assert (tmp_path / "last_epoch.pt").is_file()  # epochs 1-4 kept
    with caplog.at_level(logging.INFO):
        resumed = toy_training(str(tmp_path))
    assert f"resuming from {tmp_path / 'last_epoch.pt'} after epoch 4" in caplog.messages
    assert resumed[0] == expected[0] and resumed[3] == expected[3]
    for name, tensor in expected[1].items():
        assert torch.equal(resumed[1][name], tensor), name
    assert resumed[2].history == expected[2].history  # the kept epochs are logged again, then the rest
    assert (
        resumed[2].summary
        == expected[2].summary
        == {"best_epoch": expected[0][0], "best_val_ndcg@50": pytest.approx(max(expected[2].history[METRIC]))}
    )
    assert not (tmp_path / "last_epoch.pt").exists()  # removed once training finished


def test_a_resume_state_of_other_settings_or_data_is_not_used(tmp_path, caplog):
    with pytest.raises(RuntimeError, match="killed"):
        toy_training(str(tmp_path), fail_at=5, fingerprint="data-2")
    with caplog.at_level(logging.WARNING):
        fresh = toy_training(str(tmp_path))
    assert (
        f"{tmp_path / 'last_epoch.pt'} was written for other settings or data; training from scratch" in caplog.messages
    )
    expected = toy_training(None)
    assert fresh[0] == expected[0] and fresh[2].history == expected[2].history


def test_the_small_helpers_by_their_definitions():
    from audiorec.models import training

    assert training.monitored_metric("ndcg") == "val/ndcg@50" and training.monitored_metric("loss") == "val/loss"
    assert training.scheduler_mode("loss") == "min" and training.scheduler_mode("ndcg") == "max"
    assert training.resolve_device("cpu") == torch.device("cpu")
    assert training.resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")

    from audiorec.settings.mostpop import MostPopSettings

    class Model:
        def __init__(self, settings: MostPopSettings, *, seed: int = 0):
            self.settings, self.seed = settings, seed

    saved = training.saved_config(Model(MostPopSettings(count_by="users"), seed=3))
    assert saved == {"count_by": "users", "seed": 3}
    # Rebuilt with the settings class its constructor declares; older checkpoints' checkpoint_dir is dropped.
    rebuilt = training.from_saved_config(Model, {**saved, "checkpoint_dir": "x"})
    assert rebuilt.settings == MostPopSettings(count_by="users") and rebuilt.seed == 3


def test_the_resume_fingerprint_changes_with_what_is_trained_and_only_with_it(tmp_path):
    import numpy as np
    import pandas as pd

    from audiorec.models.training import training_fingerprint

    source, kernel = tmp_path / "model.py", tmp_path / "kernels.py"
    source.write_text("code")
    kernel.write_text("kernel")
    sources = (str(source), str(kernel))
    items = np.eye(3, dtype=np.float32)
    train = pd.DataFrame({"user_id": ["a", "b"], "track_idx": [0, 1], "timestamp": 0})
    val = pd.DataFrame({"user_id": ["a"], "track_idx": [2]})
    config = {"lr": 0.1, "resume": True, "checkpoint_dir": "x", "device": "cpu"}
    base = training_fingerprint(sources, config, items, train, val)
    assert len(base) == 64 and base == training_fingerprint(sources, dict(reversed(config.items())), items, train, val)
    # Settings that do not change what is trained may differ; a timestamp column is not hashed.
    assert base == training_fingerprint(
        sources,
        {**config, "resume": False, "checkpoint_dir": "y", "device": "cuda"},
        items,
        train.assign(timestamp=1),
        val,
    )
    # The values count, not their dtype or memory layout (the buffer hashed is a C-ordered float32 one).
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert training_fingerprint(sources, config, values, train, val) == training_fingerprint(
        sources, config, np.asfortranarray(values, dtype=np.float64), train, val
    )
    changed = [
        training_fingerprint(sources, {**config, "lr": 0.2}, items, train, val),
        training_fingerprint(sources, config, items * 2, train, val),
        training_fingerprint(sources, config, items.reshape(9, 1), train, val),  # the same bytes, another shape
        training_fingerprint(sources, config, np.zeros((4, 0), np.float32), train, val),  # no bytes at either size
        training_fingerprint(sources, config, np.zeros((5, 0), np.float32), train, val),
        training_fingerprint(sources, config, items, train.assign(track_idx=[0, 2]), val),
        training_fingerprint(sources, config, items, train, val.assign(track_idx=[1])),
        training_fingerprint(sources, config, items, train, None),
    ]
    source.write_text("other code")
    changed.append(training_fingerprint(sources, config, items, train, val))
    source.write_text("code")
    kernel.write_text("other kernel")  # a kernel the model runs is its code too
    changed.append(training_fingerprint(sources, config, items, train, val))
    assert len({base, *changed}) == 1 + len(changed)


def test_seed_deterministic_seeds_torch_and_asks_for_deterministic_kernels():
    from audiorec.models.training import seed_deterministic

    seed_deterministic(7)
    first = torch.rand(3)
    seed_deterministic(7)
    assert torch.equal(torch.rand(3), first) and torch.are_deterministic_algorithms_enabled()
    assert torch.utils.deterministic.fill_uninitialized_memory is False
    seed_deterministic(8)
    assert not torch.equal(torch.rand(3), first)


def counting_run(resume_dir, kill_at=None):
    """Scripted val scores by epoch; the net's bias counts the epochs (so a resumed run knows where it is)."""
    scores = [0.9, 0.1, 0.2, 0.3, 0.4, 0.5]
    net = nn.Linear(1, 1)
    with torch.no_grad():
        net.bias.fill_(0.0)
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)

    def train_epoch():
        if kill_at is not None and int(net.bias.item()) + 1 == kill_at:
            raise RuntimeError("killed")
        with torch.no_grad():
            net.bias += 1
        return 10.0 * net.bias.item()  # epoch e has train loss 10 e

    best = train_epochs(
        "toy",
        net,
        optimizer,
        FixedLearningRate(),
        torch.Generator(),
        3,
        len(scores),
        train_epoch=train_epoch,
        validate=lambda: {METRIC: scores[int(net.bias.item()) - 1]},
        schedule_on=METRIC,
        stop_on=METRIC,
        resume_dir=resume_dir,
        fingerprint="",
        live=None,
    )
    return best, net.bias.item()


def test_a_best_epoch_before_the_kill_is_still_the_one_restored_after_resuming(tmp_path, caplog):
    # Epoch 1 is the best; epochs 2-4 bring no gain, so training stops after epoch 4 (patience 3).
    assert counting_run(None) == ((1, 10.0), 1.0)
    with pytest.raises(RuntimeError, match="killed"):
        counting_run(str(tmp_path), kill_at=3)
    with caplog.at_level(logging.INFO):
        assert counting_run(str(tmp_path)) == ((1, 10.0), 1.0)  # epoch and train loss kept, its weights restored
    assert "toy: early stop at epoch 4, no val/ndcg@50 gain for 3 epochs" in caplog.messages
    assert "restored epoch 1, val_ndcg@50 0.9000" in caplog.messages


def test_early_stopping_alone_maximises_counts_a_nan_first_epoch_as_stale_and_needs_no_min_epochs():
    """EarlyStopping(patience) with its defaults, on a hand-worked score sequence."""
    from audiorec.models.training import EarlyStopping

    net = nn.Linear(1, 1)
    stopping = EarlyStopping(patience=2)
    assert stopping.stops_after(0) is False  # no epoch trained: nothing is stale yet
    assert stopping.improved(float("nan"), net) is False  # one stale epoch of two allowed
    assert stopping.stops_after(1) is False
    assert stopping.improved(0.2, net) is True and stopping.improved(0.3, net) is True  # rising scores are gains
    assert stopping.improved(0.1, net) is False and stopping.stops_after(4) is False
    assert stopping.improved(0.3, net) is False and stopping.stops_after(5) is True  # two epochs without a gain
    assert stopping.best == 0.3
    # Patience 0 stops at once: without min_epochs even before the first epoch.
    assert EarlyStopping(patience=0).stops_after(0) is True


def test_a_gain_below_min_gain_keeps_the_best_state_but_does_not_reset_the_patience():
    """EarlyStopping(patience=2, min_gain=0.05) on a hand-worked sequence: the patience counts
    epochs since the last gain of more than 0.05 over the score of the gain before it."""
    from audiorec.models.training import EarlyStopping

    net = nn.Linear(1, 1)
    stopping = EarlyStopping(patience=2, min_gain=0.05)
    assert stopping.improved(0.20, net) is True  # the first score is a gain: the reference is 0.20
    assert stopping.improved(0.23, net) is True and stopping.stale == 1  # best yet, but 0.23 <= 0.20 + 0.05
    assert stopping.improved(0.26, net) is True and stopping.stale == 0  # 0.26 > 0.25: the reference moves to 0.26
    assert stopping.improved(0.30, net) is True and stopping.stale == 1  # 0.30 <= 0.31
    assert stopping.improved(0.28, net) is False and stopping.stops_after(5) is True
    assert stopping.best == 0.30  # the state kept is the best score's, not the last reference's
    minimising = EarlyStopping(patience=1, mode="min", min_gain=0.1)
    assert minimising.improved(1.0, net) is True and minimising.improved(0.95, net) is True
    assert minimising.stops_after(2) is True  # a fall of 0.05 is below min_gain


def test_the_epoch_that_ends_min_epochs_does_not_step_the_scheduler():
    # The scheduler (patience 0) first steps at epoch 3; had it stepped at epoch 2 (0.9),
    # epoch 3's 0.5 would cut the lr to 0.1.
    epochs, best, lr = run([0.1, 0.9, 0.5], patience=5, min_epochs=2)
    assert (epochs, best, lr) == (3, 2, [1.0])


def test_by_default_the_scheduler_steps_from_the_first_epoch_and_each_epoch_logs_its_lr():
    net = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", patience=0, factor=0.5)
    scores, live = iter([0.9, 0.5, 0.4]), RecordingLive()
    train_epochs(
        "toy",
        net,
        optimizer,
        scheduler,
        torch.Generator(),
        5,
        3,
        train_epoch=lambda: 1.0,
        validate=lambda: {METRIC: next(scores)},
        schedule_on=METRIC,
        stop_on=METRIC,
        resume_dir=None,
        fingerprint="",
        live=live,
    )
    # Epoch 1 sets the scheduler's best (0.9); epochs 2 and 3 are below it, each halves the lr.
    assert live.history["lr"] == [1.0, 0.5, 0.25]
    assert live.history["train/loss"] == [1.0, 1.0, 1.0]


def test_when_no_epoch_gains_the_result_is_epoch_0_with_nan_loss_and_the_weights_are_the_last():
    import math

    net = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    trained = []

    def train_epoch():
        trained.append(None)
        with torch.no_grad():
            net.bias.fill_(len(trained))
        return 1.0

    best_epoch, best_loss = train_epochs(
        "toy",
        net,
        optimizer,
        FixedLearningRate(),
        torch.Generator(),
        2,
        5,
        train_epoch=train_epoch,
        validate=lambda: {METRIC: float("nan")},
        schedule_on=METRIC,
        stop_on=METRIC,
        resume_dir=None,
        fingerprint="",
        live=None,
    )
    assert len(trained) == 2  # two NaN epochs exhaust patience 2
    assert best_epoch == 0 and isinstance(best_loss, float) and math.isnan(best_loss)
    assert net.bias.item() == 2.0  # nothing to restore


def test_a_resume_state_is_kept_in_a_new_nested_directory_restored_and_removed(tmp_path):
    from audiorec.models.training import EarlyStopping, EpochResume

    def resume(directory):
        torch.manual_seed(0)
        net = nn.Linear(2, 1)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
        return EpochResume(
            directory, "fp", net, optimizer, FixedLearningRate(), torch.Generator(), EarlyStopping(2)
        ), net

    directory = tmp_path / "runs" / "toy"  # neither exists yet
    first, net = resume(str(directory))
    assert first.restore() == ([], {})
    with torch.no_grad():
        net.weight.fill_(3.0)
    first.stopping.best, first.stopping.reference, first.stopping.stale = 0.7, 0.6, 1
    first.keep([{"train/loss": 2.0}], {"epoch": 1, "loss": 2.0})
    second, other = resume(str(directory))
    assert second.restore() == ([{"train/loss": 2.0}], {"epoch": 1, "loss": 2.0})
    assert torch.equal(other.weight, torch.full((1, 2), 3.0))
    assert (second.stopping.best, second.stopping.reference, second.stopping.stale) == (0.7, 0.6, 1)
    second.finish()
    assert not (directory / "last_epoch.pt").exists()
    second.finish()  # nothing left to remove: no error
    resume(None)[0].finish()


def test_a_resume_file_holding_arbitrary_objects_is_refused(tmp_path):
    """The resume state is loaded as weights only: a file that would run code when unpickled is not loaded."""
    import pickle

    from audiorec.models.training import EarlyStopping, EpochResume

    torch.save({"fingerprint": "fp", "history": [Unsafe()]}, tmp_path / "last_epoch.pt")
    net = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    resume = EpochResume(str(tmp_path), "fp", net, optimizer, FixedLearningRate(), torch.Generator(), EarlyStopping(1))
    with pytest.raises(pickle.UnpicklingError):
        resume.restore()


class Unsafe:
    """A class torch's weights-only unpickler does not allow."""


def test_seed_deterministic_only_warns_about_kernels_without_a_deterministic_version():
    from audiorec.models.training import seed_deterministic

    seed_deterministic(0)
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()


def test_seed_deterministic_leaves_the_compiler_unloaded():
    """Every train stage seeds once in a fresh process: loading torch.compile's stack there
    (as torch.use_deterministic_algorithms does) would cost each stage seconds for nothing."""
    script = (
        "import sys, torch\n"
        "from audiorec.models.training import seed_deterministic\n"
        "seed_deterministic(0)\n"
        "assert torch.are_deterministic_algorithms_enabled()\n"
        "print(sorted(name for name in sys.modules if name.startswith(('torch._inductor', 'torch._dynamo'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout[:500]


def test_the_resume_fingerprint_reads_the_rows_not_the_frame_index(tmp_path):
    import numpy as np
    import pandas as pd

    from audiorec.models.training import training_fingerprint

    source, kernel = tmp_path / "model.py", tmp_path / "kernels.py"
    source.write_text("code")
    kernel.write_text("kernel")
    sources = (str(source), str(kernel))
    items = np.eye(3, dtype=np.float32)
    log = pd.DataFrame({"user_id": ["a", "b", "c"], "track_idx": [0, 1, 2]})
    kept = log.iloc[1:]  # a filtered frame keeps its index labels 1, 2
    assert training_fingerprint(sources, {}, items, kept) == training_fingerprint(
        sources, {}, items, kept.reset_index(drop=True)
    )
