"""What the models trained with PyTorch share: device choice, early stopping, per-epoch logs, param checks."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from dvclive import Live


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
