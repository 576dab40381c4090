"""The shared epoch loop (audiorec.models.training.train_epochs) on a scripted val curve."""
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
        "toy", net, optimizer, scheduler, torch.Generator(), patience, len(val_scores),
        train_epoch=lambda: 0.0, validate=validate, schedule_on=metric, stop_on=metric,
        resume_dir=None, fingerprint="", live=None, min_epochs=min_epochs,
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
        "toy", net, optimizer, FixedLearningRate(), torch.Generator(), 2, len(losses),
        train_epoch=train_epoch, validate=lambda: {METRIC: float(len(epochs))}, schedule_on=METRIC,
        resume_dir=None, fingerprint="", live=None, stop_on=stop_on,
    )
    assert net.bias.item() == best_epoch
    return len(epochs), best_epoch


def test_a_loss_as_stopping_metric_is_minimised():
    # The lowest loss is epoch 2; two epochs without a lower one stop training after epoch 4.
    assert run_on_losses([3.0, 1.0, 2.0, 1.5, 0.5, 0.1], stop_on="train/loss") == (4, 2)


def test_without_a_stopping_metric_every_epoch_runs_and_the_last_is_kept():
    assert run_on_losses([3.0, 1.0, 2.0, 1.5, 0.5, 0.7], stop_on=None) == (6, 6)
