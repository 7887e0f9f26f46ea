"""The main job: train a small CNN on scikit-learn's bundled digits dataset (no download)."""

from __future__ import annotations

import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tensorcore import nn, optim, placement, random
from tensorcore.autodiff.tape import GradientTape
from tensorcore.autodiff.variable import Variable
from tensorcore.data import batches
from tensorcore.device import Device, current_device, resolve
from tensorcore.nn import functional as F
from tensorcore.ops.searching import argmax


@dataclass
class TrainResult:
    """What a training run reports."""

    device: Device  # the (primary) replica's device
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    accuracies: list[float] = field(default_factory=list)  # test accuracy per epoch (under MPI: rank 0's only)
    seconds: float = 0.0
    strategy: Any = None  # the tensorcore.distribute strategy, when training is distributed
    steps: int = 0
    first_epoch: int = 1  # after --resume, the first epoch this run trained


def load_digits_split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits as float32 NCHW images in [0, 1] with int64 labels, split 80/20 (stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return x_tr, x_te, y_tr, y_te


def digits_cnn(device: Any = None) -> nn.Module:
    """A small CNN for 8x8 digits: two conv blocks, then a linear classifier."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, device=device), nn.ReLU(), nn.MaxPool2d(2),   # 32 x 4 x 4
        nn.Conv2d(32, 64, 3, padding=1, device=device), nn.ReLU(), nn.MaxPool2d(2),  # 64 x 2 x 2
        nn.Flatten(), nn.Linear(256, 128, device=device), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(128, 10, device=device),
    )


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, device: Device, batch_size: int = 256) -> float:
    """Accuracy of ``model`` on (x, y)."""
    model.eval()
    correct = 0
    for xb, yb in batches([x, y], batch_size, shuffle=False, device=device):
        correct += int((argmax(model(xb), axis=1) == yb).sum().item())
    model.train()
    return correct / len(y)


def train(epochs: int = 20, seed: int = 0, device: Any = None, batch_size: int = 32, lr: float = 3e-3,
          progress: bool = True, log: Any = print, devices: Any = None, checkpoint_dir: str | None = None,
          resume: bool = False, logdir: str | None = None) -> TrainResult:
    """Train the digits CNN with Adam; return per-epoch losses and test accuracies.

    ``devices`` (a list or ``"opencl:0,opencl:1"``; default ``TENSORCORE_DEVICES``) trains
    data-parallel over those devices with ``tensorcore.distribute``; under ``mpiexec`` it
    trains over the MPI processes, and rank 0 alone evaluates, logs and writes summaries.
    ``batch_size`` is the global batch either way.
    ``checkpoint_dir`` saves a checkpoint after each epoch; ``resume`` first restores the
    latest one there and trains the epochs after it, up to ``epochs``. ``logdir`` writes loss,
    accuracy, learning rate and examples/s per epoch for TensorBoard.
    """
    from tqdm import tqdm

    if resume and not checkpoint_dir:
        raise ValueError("--resume continues from the latest checkpoint in --checkpoint-dir: give --checkpoint-dir too")
    strategy = make_strategy(devices)
    chief = strategy is None or strategy.is_chief
    say = log if chief else (lambda _: None)
    dev = (current_device() if device is None else resolve(device)) if strategy is None else strategy.devices[0]
    random.seed(seed)
    x_tr, x_te, y_tr, y_te = load_digits_split(seed)
    with nullcontext() if strategy is None else strategy.scope():  # in a scope: mirrored
        model = digits_cnn(device=dev)
        opt = optim.Adam(model.parameters(), lr=lr)
    if strategy is not None:
        describe_strategy(strategy, batch_size, log if chief else None)
    epochs_done = Variable(np.int64(0), trainable=False, device=dev)  # made outside the scope: one plain Variable
    manager = _checkpoints(checkpoint_dir, model, opt, epochs_done)
    start = 1
    if resume:
        start = _resume(manager, epochs_done, checkpoint_dir, epochs, say)
    writer = _summary_writer(logdir) if chief else None  # one event file per job, not per rank
    params = model.parameters()

    def step(xb: Any, yb: Any) -> Any:
        with GradientTape() as tape:
            loss = F.cross_entropy(model(xb), yb)
        opt.step(tape.gradient(loss, params))
        return loss

    result = TrainResult(dev, strategy=strategy, first_epoch=start)
    began = time.perf_counter()
    for epoch in range(start, epochs + 1):
        opt.lr = lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))  # cosine decay
        total, count = 0.0, 0
        if strategy is None:
            steps = batches([x_tr, y_tr], batch_size, seed=seed + epoch, device=dev)
        else:
            steps = strategy.batches([x_tr, y_tr], batch_size, seed=seed + epoch)
        bar = tqdm(steps, total=-(-len(y_tr) // batch_size), desc=f"epoch {epoch}/{epochs}", disable=not (progress and chief), leave=False)
        epoch_began = time.perf_counter()
        for xb, yb in bar:
            if strategy is None:
                loss, rows = step(xb, yb), len(yb)
            else:
                loss, rows = strategy.reduce("mean", strategy.run(step, (xb, yb))), sum(yb.sizes)
            total += float(loss.item()) * rows
            count += rows
            result.steps += 1
        examples_per_second = count / (time.perf_counter() - epoch_began)
        result.losses.append(total / count)
        if chief:  # the replicas are in sync: one evaluation speaks for all
            result.accuracies.append(evaluate(model, x_te, y_te, dev))
            say(f"epoch {epoch}: loss {result.losses[-1]:.4f}, test accuracy {result.accuracies[-1]:.2%}")
        if writer is not None:
            _log_epoch(writer, epoch, result.losses[-1], result.accuracies[-1], opt.lr, examples_per_second)
        if manager is not None:
            epochs_done.assign(np.int64(epoch))
            manager.save(step=epoch)
    if writer is not None:
        writer.close()
    if start > epochs and chief:  # resumed past the end: report the model as it is
        result.accuracies.append(evaluate(model, x_te, y_te, dev))
    result.seconds = time.perf_counter() - began
    return result


def _checkpoints(directory: str | None, model: nn.Module, opt: Any, epochs_done: Any) -> Any:
    """A manager of the run's checkpoints, numbered by epoch (None without a directory)."""
    if not directory:
        return None
    from tensorcore.train.checkpoint import Checkpoint, CheckpointManager

    return CheckpointManager(Checkpoint(model=model, optimizer=opt, epochs_done=epochs_done), directory, max_to_keep=3)


def _resume(manager: Any, epochs_done: Any, directory: str, epochs: int, say: Any) -> int:
    """Restore the latest checkpoint; the first epoch still to train."""
    path = manager.restore_latest()
    if path is None:
        say(f"no checkpoint in {directory}: starting from epoch 1")
        return 1
    done = int(epochs_done.numpy())
    if done >= epochs:
        say(f"resumed from {path}: {done} epochs already trained, --epochs {epochs}: nothing to train")
    else:
        say(f"resumed from {path} ({done} epochs trained): training epochs {done + 1} to {epochs}")
    return done + 1


def _summary_writer(logdir: str | None) -> Any:
    if not logdir:
        return None
    from tensorcore import summary

    return summary.create_file_writer(logdir)


def _log_epoch(writer: Any, epoch: int, loss: float, accuracy: float, lr: float, examples_per_second: float) -> None:
    from tensorcore import summary

    with writer.as_default(step=epoch):
        summary.scalar("loss", loss)
        summary.scalar("accuracy", accuracy)
        summary.scalar("learning_rate", lr)
        summary.scalar("examples_per_second", examples_per_second)
    writer.flush()


def make_strategy(devices: Any) -> Any:
    """The distribute strategy for ``devices`` (else ``TENSORCORE_DEVICES``): multi-worker under
    an MPI launcher, mirrored over several local devices, or None for one device."""
    import os

    from tensorcore import distribute

    if distribute.launched_by_mpi():
        return distribute.MultiWorkerMirroredStrategy(devices)
    if devices is None and not os.environ.get("TENSORCORE_DEVICES", "").strip():
        return None
    return distribute.MirroredStrategy(devices)


def describe_strategy(strategy: Any, batch_size: int, log: Any) -> None:
    """Say where each replica runs and its share of a global batch; every MPI rank says its devices."""
    shares = ", ".join(f"{w:.0%}" for w in strategy.weights)
    rank = getattr(strategy, "rank", None)
    where = ", ".join(str(d) for d in strategy.devices)
    if rank is not None:
        # One write with its newline: mpiexec forwards each rank's writes as they come, and a
        # print's text and newline apart could interleave with another rank's line.
        sys.stdout.write(f"rank {rank} of {strategy.num_workers}: replicas on {where}\n")
        sys.stdout.flush()
    if log is not None:
        log(f"data-parallel over {strategy.num_replicas_in_sync} replicas ({where}{' on rank 0' if rank is not None else ''}); "
            f"shares of each global batch of {batch_size}: {shares}")


def summary(result: TrainResult) -> str:
    """The closing lines of ``tensorcore train``: device(s), accuracy, time, collectives and placement."""
    s = result.strategy
    if s is None:
        where = f"device: {result.device}\n"
    else:
        stats = s.collective_stats()
        steps = max(result.steps, 1)
        where = (f"replicas: {', '.join(str(d) for d in s.devices)}"
                 f"{f' (rank {s.rank} of {s.num_workers})' if hasattr(s, 'rank') else ''}; "
                 f"shares {', '.join(f'{w:.0%}' for w in s.weights)}\n"
                 f"all-reduced per step: {stats['bytes'] / steps / 2**20:.2f} MiB in {stats['collectives'] / steps:.1f} "
                 f"collective(s); time in collectives: {stats['seconds']:.2f} s of {result.seconds:.1f} s\n")
    trained = len(result.losses)
    epochs = f"{trained} epochs" + (f" (from epoch {result.first_epoch})" if result.first_epoch > 1 and trained else "")
    accuracy = f"{result.accuracies[-1]:.2%}" if result.accuracies else "(rank 0 evaluates)"
    return (
        where +
        f"final test accuracy: {accuracy} after {epochs} in {result.seconds:.1f} s\n"
        f"placement: {placement.summary()}"
    )
