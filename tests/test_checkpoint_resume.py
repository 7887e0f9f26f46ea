"""Exact resume: N steps, save, M more, equals restoring in a new process and training the same M
steps, bitwise, on every device (model with dropout, Adam, a learning-rate schedule, shuffled batches)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tensorcore as tc

_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorcore as tc
    from tensorcore.nn import functional as F

    mode, device, directory, out, n, m = sys.argv[1:7]
    n, m = int(n), int(m)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 10)).astype(np.float32)
    y = rng.integers(0, 3, 96)
    tc.random.seed(1 if mode == "full" else 99)  # the resumed run starts from other weights: restore must win
    with tc.device(device):
        model = tc.nn.Sequential(tc.nn.Linear(10, 16), tc.nn.ReLU(), tc.nn.Dropout(0.3), tc.nn.Linear(16, 3))
        opt = tc.optim.Adam(model.parameters(), lr=0.01)
        sched = tc.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        step = tc.Variable(np.int64(0), trainable=False)
    params = model.parameters()
    manager = tc.train.CheckpointManager(tc.train.Checkpoint(model=model, optimizer=opt, scheduler=sched, step=step),
                                         directory)

    def train_step(xb, yb):
        with tc.GradientTape() as tape:
            loss = F.cross_entropy(model(xb), yb)
        opt.step(tape.gradient(loss, params))
        return loss

    fn = tc.function(train_step) if "traced" in mode else train_step

    def run(steps):
        for _ in range(steps):
            s = int(step.numpy())
            rows = np.random.default_rng(s).permutation(96)[:32]  # the batch of step s
            fn(tc.asarray(x[rows], device=device), tc.asarray(y[rows], device=device))
            sched.step()
            step.assign_add(tc.asarray(np.int64(1)))

    if mode.startswith("full"):
        run(n)
        manager.save()
    else:
        assert manager.restore_latest() is not None
        assert int(step.numpy()) == n
    run(m)
    tc.save({str(i): p for i, p in enumerate(params)}, out)
""")


@pytest.mark.parametrize("mode", ["eager", "traced"])
def test_resuming_in_a_new_process_continues_bitwise(device: str, mode: str, tmp_path: Path) -> None:
    def run(kind: str, out: Path) -> dict[str, np.ndarray]:
        done = subprocess.run([sys.executable, "-c", _SCRIPT, f"{kind}-{mode}", device, str(tmp_path / "ckpt"), str(out),
                               "5", "4"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return {k: v.numpy() for k, v in tc.load(out, device="cpu").items()}

    full = run("full", tmp_path / "full.safetensors")
    resumed = run("resume", tmp_path / "resumed.safetensors")
    assert full.keys() == resumed.keys()
    for k in full:
        np.testing.assert_array_equal(resumed[k], full[k], err_msg=f"parameter {k} on {device}")
