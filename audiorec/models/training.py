"""What the models trained with PyTorch share: device choice, early stopping, per-epoch logs, checkpoints."""

from __future__ import annotations

import hashlib
import typing
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence, TypeVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from audiorec.models.base import VAL_K

if TYPE_CHECKING:
    from dvclive import Live

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT")


def monitored_metric(name: str) -> str:
    """The logged metric a `stop_on` / `schedule_on` value (audiorec.settings.base.Monitored) stands for:
    val NDCG@50 of the ranked lists, or the model's own loss on the val pairs (what the original code watched)."""
    return f"val/ndcg@{VAL_K}" if name == "ndcg" else "val/loss"


def scheduler_mode(name: str) -> Literal["min", "max"]:
    """ReduceLROnPlateau's mode for a monitored name: a loss falls, NDCG rises."""
    return "min" if name == "loss" else "max"


# Written after every epoch when training may resume; removed once training finishes.
RESUME_CHECKPOINT = "last_epoch.pt"
# Settings that do not change what is trained, so a resumed run may differ in them.
NOT_FINGERPRINTED = ("resume", "checkpoint_dir", "device")
# The metric that selects the epoch and stops training, unless a model names another.
VAL_METRIC = f"val/ndcg@{VAL_K}"


class EarlyStopping:
    """The best state dict by a validation score, and whether training may stop: `patience`
    epochs without a gain of more than `min_gain` over the score of the last such gain (a tie
    or NaN is none; with `mode="min"` a gain is a fall), and at least `min_epochs` trained.
    The state kept is the best score's, however small its lead: `min_gain` decides only when
    to stop, so that epoch-to-epoch noise on a small validation set does not keep a finished
    run going, nor a slow climb count as no gain."""

    def __init__(self, patience: int, min_epochs: int = 0, mode: str = "max", min_gain: float = 0.0):
        self.patience, self.min_epochs, self.stale, self.min_gain = patience, min_epochs, 0, min_gain
        self.sign = 1.0 if mode == "max" else -1.0
        self.best = self.reference = -self.sign * np.inf
        self.state: dict[str, torch.Tensor] | None = None

    def improved(self, score: float, net: nn.Module) -> bool:
        """Whether `score` is the best yet (its state is kept); counts towards the patience."""
        if self.sign * score > self.sign * self.reference + self.min_gain:
            self.reference, self.stale = score, 0
        else:
            self.stale += 1
        if not self.sign * score > self.sign * self.best:
            return False
        self.best = score
        self.state = {name: tensor.detach().clone() for name, tensor in net.state_dict().items()}
        return True

    def stops_after(self, epoch: int) -> bool:
        return self.stale >= self.patience and epoch >= self.min_epochs


def restore_best(net: nn.Module, stopping: EarlyStopping, epoch: int, metric: str, live: Live | None) -> None:
    """Load the best epoch's weights into `net`; dvclive's per-step values end at the last
    epoch, so its summary also says which `epoch` the saved model comes from."""
    if stopping.state is None:
        return
    net.load_state_dict(stopping.state)
    logger.info("restored epoch %d, %s %.4f", epoch, metric, stopping.best)
    if live is not None:
        live.summary.update({"best_epoch": epoch, f"best_{metric}": stopping.best})


def saved_config(model: Any) -> dict:
    """What a checkpoint stores to rebuild `model`: its params.yaml section and its seed."""
    return {**model.settings.model_dump(), "seed": model.seed}


def from_saved_config(cls: type[ModelT], config: dict, **inputs: Any) -> ModelT:
    """`cls` built from a checkpoint's `saved_config`, with the frozen `inputs` it also takes.
    The settings class is the one `cls.__init__` declares for its `settings`."""
    settings = dict(config)
    seed = settings.pop("seed", 0)
    settings.pop("checkpoint_dir", None)  # written by checkpoints of older versions
    settings_class = typing.get_type_hints(cls.__init__)["settings"]
    return cls(settings_class.model_validate(settings), seed=seed, **inputs)  # type: ignore[call-arg]


def log_epoch(live: Live | None, metrics: dict[str, float]) -> None:
    if live is None:
        return
    for name, value in metrics.items():
        live.log_metric(name, value)
    live.next_step()


def resolve_device(device: str) -> torch.device:
    """A section's `device` (checked by its settings class) as a torch device; auto: CUDA when torch sees one."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_deterministic(seed: int) -> None:
    """Seed torch and ask for its deterministic kernels (a process-wide switch): some CUDA
    ones (index_add_, scatter) are not deterministic by default, and on the CPU the
    accumulating index backward is not either (BERT4Rec's train losses moved in the 8th
    digit between two runs without it)."""
    # What torch.use_deterministic_algorithms does, less its first line: that one imports the
    # torch.compile stack (torch._inductor, torch._dynamo: about 3 s of CPU in every train
    # stage) only to set a flag of the compiler, which nothing here uses.
    torch._C._set_deterministic_algorithms(True, warn_only=True)
    # Deterministic mode also fills every new tensor with NaN, a debugging aid against kernels
    # that read memory they never wrote; none of ours do, and on the CPU it cost 10-15% of a
    # BERT4Rec epoch.
    # torch's stubs lack it: the module sets it through a property of a module subclass.
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    torch.manual_seed(seed)


def training_fingerprint(
    sources: Sequence[str], config: dict, item_embeddings: np.ndarray, *frames: pd.DataFrame | None
) -> str:
    """What a resumable state must match: the model's code (`sources`, its files: its module and
    the kernels it runs), the settings that shape training, and the data (val too: it chose the
    best epoch so far)."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(Path(source).read_bytes())
    digest.update(repr(sorted((k, v) for k, v in config.items() if k not in NOT_FINGERPRINTED)).encode())
    # The shape too: the bytes alone are empty for the zero-width matrix of an audio-free model
    # at any catalogue size, and equal for (n, d) and (2n, d/2) of the same values.
    digest.update(repr(item_embeddings.shape).encode())
    # The arrays' own buffers, not `.tobytes()` copies: Jukebox's 56,512 x 4,800 vectors are 1 GiB.
    # numpy's stubs declare ndarray's buffer protocol (__buffer__) only for Python >= 3.12.
    digest.update(np.ascontiguousarray(item_embeddings, dtype=np.float32))  # type: ignore[arg-type]
    for frame in frames:
        if frame is not None:
            digest.update(
                np.ascontiguousarray(  # type: ignore[arg-type]  # as above: __buffer__ only for Python >= 3.12
                    pd.util.hash_pandas_object(frame[["user_id", "track_idx"]], index=False).to_numpy()
                )
            )
    return digest.hexdigest()


class EpochResume:
    """The training state after each finished epoch, kept at `directory/last_epoch.pt`, so a
    killed run continues from its last finished epoch to the same result as an uninterrupted
    one; removed once training finishes. Without a `directory` it does nothing."""

    def __init__(
        self,
        directory: str | None,
        fingerprint: str,
        net: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        generator: torch.Generator,
        stopping: EarlyStopping,
    ):
        self.path = Path(directory) / RESUME_CHECKPOINT if directory else None
        self.fingerprint, self.net, self.optimizer, self.scheduler = fingerprint, net, optimizer, scheduler
        self.generator, self.stopping = generator, stopping

    def restore(self) -> tuple[list[dict], dict]:
        """(the metrics of the epochs already trained, the model's own progress values), with
        their state loaded; ([], {}) to start afresh."""
        if self.path is None or not self.path.is_file():
            return [], {}
        state = torch.load(self.path, map_location=next(self.net.parameters()).device, weights_only=True)
        if state["fingerprint"] != self.fingerprint:
            logger.warning("%s was written for other settings or data; training from scratch", self.path)
            return [], {}
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        # Dropout draws from torch's global generators: without them a resumed run would differ.
        torch.set_rng_state(state["torch_rng"])
        if torch.cuda.is_available() and state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.stopping.best, self.stopping.reference, self.stopping.stale, self.stopping.state = (
            state["stopping"][key] for key in ("best", "reference", "stale", "state")
        )
        logger.info("resuming from %s after epoch %d", self.path, len(state["history"]))
        return state["history"], state["progress"]

    def keep(self, history: list[dict], progress: dict) -> None:
        """Save the state after the last epoch of `history`; `progress` is what the model needs back."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "fingerprint": self.fingerprint,
            "history": history,
            "progress": progress,
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "stopping": {
                "best": self.stopping.best,
                "reference": self.stopping.reference,
                "stale": self.stopping.stale,
                "state": self.stopping.state,
            },
        }
        # Written aside and renamed, so a kill during the write leaves the previous epoch's state intact.
        partial = self.path.with_suffix(".partial")
        torch.save(state, partial)
        partial.replace(self.path)

    def finish(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class FixedLearningRate:
    """A scheduler that never changes the learning rate, for models trained without one
    (ELSA's journal runs): `train_epochs` steps and checkpoints any scheduler it is given."""

    def step(self, metric: float | None = None) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def train_epochs(
    name: str,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator,
    patience: int,
    max_epochs: int,
    train_epoch: Callable[[], float],
    validate: Callable[[], dict[str, float]] | None,
    schedule_on: str,
    stop_on: str | None,
    resume_dir: str | None,
    fingerprint: str,
    live: Live | None,
    min_epochs: int = 0,
    min_gain: float = 0.0,
) -> tuple[int, float]:
    """The epoch loop of the torch models: `train_epoch()` returns the train loss; with
    `validate`, the scheduler steps on its `schedule_on` metric, training stops after
    `patience` epochs without a gain of more than `min_gain` in the `stop_on` metric (a tie is
    no gain; a loss gains by falling) and the best epoch's weights are restored.
    The first `min_epochs` epochs run at the initial learning rate and are never the last:
    on a small, noisy val a lucky early epoch would otherwise cut the learning rate and
    stop training before the model has learned much. With a `resume_dir`, a killed run
    continues from its last finished epoch (EpochResume). `stop_on` names the metric
    that selects the epoch and stops training (maximised; one whose name ends in `loss`
    is minimised); None trains all `max_epochs` and keeps the last. Returns the epoch the
    weights come from and its train loss."""
    mode = "min" if stop_on and stop_on.endswith("loss") else "max"
    stopping = EarlyStopping(patience, min_epochs, mode=mode, min_gain=min_gain)
    resume = EpochResume(resume_dir, fingerprint, net, optimizer, scheduler, generator, stopping)
    history, progress = resume.restore()
    best_epoch, best_loss = progress.get("epoch", 0), progress.get("loss", float("nan"))
    for metrics in history:
        log_epoch(live, metrics)
    with tqdm(total=max_epochs, initial=len(history), desc=name, unit="epoch") as bar:
        for epoch in range(len(history) + 1, max_epochs + 1):
            if stopping.stops_after(epoch - 1):
                break
            metrics = {"train/loss": train_epoch()}
            if validate is not None:
                metrics.update(validate())
                if epoch > min_epochs:
                    scheduler.step(metrics[schedule_on])
            metrics["lr"] = optimizer.param_groups[0]["lr"]
            log_epoch(live, metrics)
            bar.update()
            bar.set_postfix({key: f"{value:.4g}" for key, value in metrics.items()})
            if validate is None or stop_on is None or stopping.improved(metrics[stop_on], net):
                best_epoch, best_loss = epoch, metrics["train/loss"]
            elif stopping.stops_after(epoch):
                logger.info("%s: early stop at epoch %d, no %s gain for %d epochs", name, epoch, stop_on, patience)
            history.append(metrics)
            resume.keep(history, {"epoch": best_epoch, "loss": best_loss})
    resume.finish()
    restore_best(net, stopping, best_epoch, (stop_on or VAL_METRIC).replace("/", "_"), live)
    return best_epoch, best_loss
