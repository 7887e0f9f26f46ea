"""A small CNN training step against PyTorch on the CPU (issue #13).

Run: ``tensorcore bench cnn`` (``--device`` repeatable, default ``cpu`` and ``opencl:0`` where
there is one; ``--rounds N``, ``--quick``, ``--json FILE``). Needs PyTorch (``pip install
torch``); without it the suite says so and exits non-zero.

The model: conv 3->32 and 32->64 (3x3, padding 1), each followed by ReLU and 2x2 max-pool, then
linear 4096->128, ReLU, linear 128->10, cross-entropy, SGD with momentum 0.9; a batch of 64
images 3x32x32. Both libraries build it from ``nn`` modules holding the same initial weights,
train on the same batch, and their first losses must agree before anything is timed.
tensorcore runs eagerly and traced (``tc.function``) on each device. Every library gets the
machine's threads (PyTorch's intra-op pool, OpenBLAS, PoCL's pool: 2 on this machine), and the
cases take turns round by round with a rest before each (``tc.bench.interleaved``: OpenBLAS's
and PyTorch's workers spin after a call and would take a core from the next case).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("POCL_MAX_PTHREAD_COUNT", str(os.cpu_count() or 1))  # before the OpenCL backend starts

BATCH, CLASSES, LR, MOMENTUM = 64, 10, 0.01, 0.9
SHAPES = {  # name: shape, in PyTorch's layout (which tensorcore's nn shares)
    "conv1.weight": (32, 3, 3, 3), "conv1.bias": (32,), "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,),
    "fc1.weight": (128, 4096), "fc1.bias": (128,), "fc2.weight": (10, 128), "fc2.bias": (10,),
}


def problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """One batch (images, labels) and the initial weights, uniform in +-1/sqrt(fan-in)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, CLASSES, BATCH)
    weights = {}
    for name, shape in SHAPES.items():
        fan_in = int(np.prod(SHAPES[name.replace("bias", "weight")][1:]))
        weights[name] = rng.uniform(-1, 1, shape).astype(np.float32) / np.float32(np.sqrt(fan_in))
    return x, y, weights


def tensorcore_step(weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, device: str,
                    traced: bool) -> Callable[[], float]:
    """One training step of the model in tensorcore on ``device``; returns the loss."""
    import tensorcore as tc
    from tensorcore import nn
    from tensorcore.nn import functional as F

    with tc.device(device):
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(4096, 128), nn.ReLU(), nn.Linear(128, CLASSES))
        model.load_state_dict(dict(zip(_module_names(model), weights.values())))
        opt = tc.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        tx, ty = tc.asarray(x), tc.asarray(y)

    def step(images: Any, labels: Any) -> Any:
        with tc.GradientTape() as tape:
            loss = F.cross_entropy(model(images), labels)
        opt.step(tape.gradient(loss, model.parameters()))
        return loss

    run = tc.function(step) if traced else step
    return lambda: float(run(tx, ty).item())


def _module_names(model: Any) -> list[str]:
    """The model's state_dict keys in SHAPES' order (Sequential numbers its layers)."""
    keys = list(model.state_dict())
    if len(keys) != len(SHAPES):
        raise RuntimeError(f"the model has {len(keys)} tensors, expected {len(SHAPES)}: {keys}")
    return keys


def torch_step(torch: Any, weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """The same step in PyTorch on the CPU; returns the loss."""
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4096, 128), nn.ReLU(), nn.Linear(128, CLASSES))
    model.load_state_dict({k: torch.from_numpy(w.copy()) for k, w in zip(model.state_dict(), weights.values())})
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(tx), ty)
        loss.backward()
        opt.step()
        return float(loss.item())

    return step


def cases(devices: Sequence[str], torch: Any) -> dict[str, Callable[[], float]]:
    """Every timed case, PyTorch first; each checked to start from the same first loss."""
    x, y, weights = problem()
    out = {"pytorch": torch_step(torch, weights, x, y)}
    for device in devices:
        out[f"tensorcore {device}"] = tensorcore_step(weights, x, y, device, traced=False)
        out[f"tensorcore {device} traced"] = tensorcore_step(weights, x, y, device, traced=True)
    first = {name: step() for name, step in out.items()}  # each case's first step, from the same weights
    reference = first["pytorch"]
    if not all(abs(loss - reference) <= 1e-4 * max(1.0, abs(reference)) for loss in first.values()):
        raise RuntimeError(f"the first losses differ, so the cases do not train the same model: {first}")
    return out


def run(devices: Sequence[str], rounds: int, budget: float) -> dict[str, Any]:
    """Time the cases; print the table; the results as ``--json`` writes them."""
    import torch

    import tensorcore as tc

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    timed = cases(devices, torch)
    timings = tc.bench.interleaved(timed, budget=budget, rounds=rounds, rest=0.25, warmup=0.1)
    base = timings["pytorch"].median
    print(f"tensorcore bench cnn: one training step, batch {BATCH} of 3x32x32, {threads} threads each; "
          f"medians of {rounds} interleaved rounds")
    print(f"{'case':>32} {'ms/step':>9} {'IQR':>7} {'vs PyTorch':>11}")
    for name, t in timings.items():
        print(f"{name:>32} {t.median * 1e3:9.2f} {t.iqr * 1e3:7.2f} {base / t.median:10.2f}x")
    return {"threads": threads, "torch": torch.__version__, "seconds": {k: t.median for k, t in timings.items()},
            "iqr": {k: t.iqr for k, t in timings.items()}}


def _default_devices() -> list[str]:
    from tensorcore import registry

    return ["cpu"] + (["opencl:0"] if any(str(d) == "opencl:0" for d in registry.available_devices()) else [])


def main(argv: Sequence[str] | None = None) -> int:
    """The ``tensorcore bench cnn`` command."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", action="append", default=None,
                        help="a device tensorcore trains on (repeatable); None: cpu and opencl:0 where there is one")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of samples per case, over all rounds")
    parser.add_argument("--quick", action="store_true", help="2 rounds and a short budget, for a smoke test")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("tensorcore bench cnn needs PyTorch to compare with: pip install torch", file=sys.stderr)
        return 2
    rounds, budget = (2, 0.5) if args.quick else (args.rounds, args.budget)
    results = run(args.device or _default_devices(), rounds, budget)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
