"""scripts/stopping.py reads each stopping rule's outcome off one unstopped curve: it must stop and
keep where the training loop's EarlyStopping would have."""

import importlib.util
import sys

import numpy as np
import pytest
import torch.nn as nn

from audiorec.models.training import EarlyStopping
from audiorec.workflow.worktree import REPO


def stopping_script():
    spec = importlib.util.spec_from_file_location("stopping", REPO / "scripts" / "stopping.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["stopping"] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def loop_outcome(curve: np.ndarray, patience: int, min_gain: float, min_epochs: int, mode: str) -> tuple[int, int]:
    """The epochs train_epochs trains and the epoch it keeps, on scripted validation scores."""
    stopping, net, trained, kept = (
        EarlyStopping(patience, min_epochs, mode=mode, min_gain=min_gain),
        nn.Linear(1, 1),
        0,
        0,
    )
    for epoch, score in enumerate(curve, start=1):
        if stopping.stops_after(epoch - 1):
            break
        trained = epoch
        if stopping.improved(float(score), net):
            kept = epoch
    return trained, kept


@pytest.mark.parametrize("seed", range(20))
def test_a_rule_stops_and_keeps_where_the_training_loop_would(seed):
    rng = np.random.default_rng(seed)
    script = stopping_script()
    curve = np.cumsum(rng.normal(0.002, 0.01, 40)) + 0.05  # a noisy climb that flattens out at random
    patience, min_epochs = int(rng.integers(1, 8)), int(rng.integers(0, 10))
    min_gain = float(rng.choice([0.0, 0.005, 0.01]))
    for monitor, mode in (("ndcg", "max"), ("loss", "min")):
        rule = script.Rule("r", monitor, patience, min_gain, min_epochs)
        assert rule.outcome(curve) == loop_outcome(curve, patience, min_gain, min_epochs, mode)


def test_the_noise_estimate_is_the_scatter_at_the_initial_learning_rate():
    rng = np.random.default_rng(0)
    # 400 noisy epochs at lr 1e-3, then 100 nearly flat ones after the scheduler's cut: only the first count.
    curve = np.r_[0.05 + rng.normal(0, 0.003, 400), 0.05 + rng.normal(0, 0.0001, 100)]
    lr = np.r_[np.full(400, 1e-3), np.full(100, 1e-4)]
    assert stopping_script().epoch_noise(curve, lr) == pytest.approx(0.003, rel=0.1)
