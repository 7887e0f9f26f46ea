"""The main job: train a small CNN on scikit-learn's bundled digits dataset (no download)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tensorcore import nn, optim, placement, random
from tensorcore.autodiff.tape import GradientTape
from tensorcore.data import batches
from tensorcore.device import Device, current_device, resolve
from tensorcore.nn import functional as F
from tensorcore.ops.searching import argmax


@dataclass
class TrainResult:
    """What a training run reports."""

    device: Device
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    accuracies: list[float] = field(default_factory=list)  # test accuracy per epoch
    seconds: float = 0.0


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
          progress: bool = True, log: Any = print) -> TrainResult:
    """Train the digits CNN with Adam; return per-epoch losses and test accuracies."""
    from tqdm import tqdm

    dev = current_device() if device is None else resolve(device)
    random.seed(seed)
    x_tr, x_te, y_tr, y_te = load_digits_split(seed)
    model = digits_cnn(device=dev)
    params = model.parameters()
    opt = optim.Adam(params, lr=lr)
    result = TrainResult(dev)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        opt.lr = lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))  # cosine decay
        total, count = 0.0, 0
        steps = batches([x_tr, y_tr], batch_size, seed=seed + epoch, device=dev)
        bar = tqdm(steps, total=-(-len(y_tr) // batch_size), desc=f"epoch {epoch}/{epochs}", disable=not progress, leave=False)
        for xb, yb in bar:
            with GradientTape() as tape:
                loss = F.cross_entropy(model(xb), yb)
            opt.step(tape.gradient(loss, params))
            total += float(loss.item()) * len(yb)
            count += len(yb)
        result.losses.append(total / count)
        result.accuracies.append(evaluate(model, x_te, y_te, dev))
        log(f"epoch {epoch}: loss {result.losses[-1]:.4f}, test accuracy {result.accuracies[-1]:.2%}")
    result.seconds = time.perf_counter() - start
    return result



def summary(result: TrainResult) -> str:
    """The closing lines of ``tensorcore train``: device, accuracy, time and placement."""
    return (
        f"device: {result.device}\n"
        f"final test accuracy: {result.accuracies[-1]:.2%} after {len(result.accuracies)} epochs "
        f"in {result.seconds:.1f} s\n"
        f"placement: {placement.summary()}"
    )
