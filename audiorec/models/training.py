"""What the models trained with PyTorch share: device choice, early stopping, per-epoch logs, param checks."""
from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from dvclive import Live

logger = logging.getLogger(__name__)


class EarlyStopping:
    """The best state dict by a validation score, and whether `patience` epochs have passed without a gain."""

    def __init__(self, patience: int):
        self.patience, self.best, self.stale = patience, -np.inf, 0
        self.state: dict[str, torch.Tensor] | None = None

    def improved(self, score: float, net: nn.Module) -> bool:
        if score <= self.best:
            self.stale += 1
            return False
        self.best, self.stale = score, 0
        self.state = {name: tensor.detach().clone() for name, tensor in net.state_dict().items()}
        return True

    @property
    def exhausted(self) -> bool:
        return self.stale >= self.patience


def restore_best(net: nn.Module, stopping: EarlyStopping, epoch: int, metric: str, live: Live | None) -> None:
    """Load the best epoch's weights into `net`; dvclive's per-step values end at the last
    epoch, so its summary also says which `epoch` the saved model comes from."""
    if stopping.state is None:
        return
    net.load_state_dict(stopping.state)
    logger.info("restored epoch %d, %s %.4f", epoch, metric, stopping.best)
    if live is not None:
        live.summary.update({"best_epoch": epoch, f"best_{metric}": stopping.best})


def constructor_config(model: object) -> dict:
    """The keyword arguments of `model`'s constructor, read back from its attributes (for checkpoints)."""
    return {name: getattr(model, name) for name in inspect.signature(type(model).__init__).parameters if name != "self"}


def log_epoch(live: Live | None, metrics: dict[str, float]) -> None:
    if live is None:
        return
    for name, value in metrics.items():
        live.log_metric(name, value)
    live.next_step()


def check_choice(model: str, name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{model}.{name}={value!r}; allowed: {', '.join(allowed)}")


def check_at_least(model: str, name: str, value: float, minimum: float) -> None:
    if value < minimum:
        raise ValueError(f"{model}.{name}={value!r}; must be >= {minimum}")


def resolve_device(model: str, device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"{model}.device={device!r}; allowed: auto, cpu, cuda, cuda:<index>") from error
