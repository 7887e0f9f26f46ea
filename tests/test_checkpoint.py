"""``tc.train.Checkpoint`` and ``CheckpointManager``: what they save and restore, what they refuse,
and that a killed writer or a full disk never costs the previous checkpoint."""

from __future__ import annotations

import json
import os
import random as pyrandom
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import tensorcore as tc
import tensorcore.serialization
from tensorcore import nn


def _parts(device: str) -> tuple[nn.Module, tc.Variable, np.random.Generator]:
    model = nn.Sequential(nn.Linear(4, 3, device=device), nn.BatchNorm2d(3, device=device))
    step = tc.Variable(np.int64(0), trainable=False, device=device)
    return model, step, np.random.default_rng(5)


def _values(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_checkpoint_restores_modules_variables_generators_and_tc_random(device: str, tmp_path: Path) -> None:
    model, step, rng = _parts(device)
    ckpt = tc.train.Checkpoint(model=model, step=step, rng=rng)
    step.assign(np.int64(7))
    tc.random.seed(3)
    saved = _values(model)
    path = ckpt.save(tmp_path / "a.safetensors")
    expected_draws = (tc.random.uniform((4,)).numpy(), rng.random(3))
    # Change everything, then restore.
    for v in model.state_dict().values():
        v.assign(tc.zeros(v.shape, dtype=v.dtype, device=device))
    step.assign(np.int64(0))
    rng.random(10)
    assert ckpt.restore(path) == path
    for k, v in model.state_dict().items():
        assert v.device == tc.Device(device)
        np.testing.assert_array_equal(v.numpy(), saved[k])
    assert int(step.numpy()) == 7 and ckpt.save_counter == 1
    np.testing.assert_array_equal(tc.random.uniform((4,)).numpy(), expected_draws[0])
    np.testing.assert_array_equal(rng.random(3), expected_draws[1])
    # The file is plain safetensors: tensors by object, the rest in JSON metadata.
    plain = safetensors.numpy.load_file(path)
    assert set(plain) == {"step"} | {f"model/{k}" for k in saved}


def test_restore_checks_the_whole_file_first_and_names_every_mismatch(tmp_path: Path) -> None:
    model, step, _ = _parts("cpu")
    path = tc.train.Checkpoint(model=model, step=step).save(tmp_path / "a.safetensors")
    other = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm2d(5))
    before = _values(other)
    ckpt = tc.train.Checkpoint(model=other, extra=tc.Variable(1.0))
    with pytest.raises(tc.SerializationError) as info:
        ckpt.restore(path)
    message = str(info.value)
    for expected in ("nothing was restored", "object 'extra' is not in the file",
                     "the file has object 'step', which this Checkpoint does not",
                     "model: '0.weight' is float32[3, 4] in the state but float32[5, 4] in the model"):
        assert expected in message, (expected, message)
    assert "belongs to no object" not in message
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    # A kind mismatch and a shape mismatch of a variable
    with pytest.raises(tc.SerializationError, match="'model' is a state .* but a variable"):
        tc.train.Checkpoint(model=tc.Variable(1.0), step=step).restore(path)
    with pytest.raises(tc.SerializationError, match=r"step: is int64\[\] in the file but float32\[2\] here"):
        tc.train.Checkpoint(model=model, step=tc.Variable(tc.zeros(2))).restore(path)


def test_restore_refuses_a_foreign_safetensors_file_naming_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "hf.safetensors"
    safetensors.numpy.save_file({"encoder.weight": np.zeros(2, np.float32), "decoder.bias": np.ones(1, np.float32)}, str(path))
    model, _, _ = _parts("cpu")
    with pytest.raises(tc.SerializationError, match="not a tensorcore checkpoint.*'decoder.bias', 'encoder.weight'"):
        tc.train.Checkpoint(model=model).restore(path)


def test_checkpoint_refuses_objects_it_cannot_restore_in_place() -> None:
    with pytest.raises(TypeError, match="step=int cannot be checkpointed.*tc.Variable"):
        tc.train.Checkpoint(step=3)
    with pytest.raises(TypeError, match="a Tensor cannot be restored in place"):
        tc.train.Checkpoint(x=tc.ones(2))
    with pytest.raises(ValueError, match="may not contain '/'"):
        tc.train.Checkpoint(**{"a/b": tc.Variable(1.0)})


def test_manager_numbers_keeps_the_newest_and_restores_the_latest(tmp_path: Path) -> None:
    model, step, _ = _parts("cpu")
    ckpt = tc.train.Checkpoint(model=model, step=step)
    manager = tc.train.CheckpointManager(ckpt, tmp_path / "run", max_to_keep=2)
    assert manager.checkpoints == [] and manager.latest_checkpoint is None and manager.restore_latest() is None
    for i in range(1, 5):
        step.assign(np.int64(i))
        assert manager.save() == str(tmp_path / "run" / f"ckpt-{i}.safetensors")
    assert [Path(p).name for p in manager.checkpoints] == ["ckpt-3.safetensors", "ckpt-4.safetensors"]
    manager.save(step=10)
    assert [Path(p).name for p in manager.checkpoints] == ["ckpt-4.safetensors", "ckpt-10.safetensors"]  # by number
    step.assign(np.int64(0))
    assert manager.restore_latest() == str(tmp_path / "run" / "ckpt-10.safetensors")
    assert int(step.numpy()) == 4 and ckpt.save_counter == 5
    # A new manager over the same directory sees the same files.
    again = tc.train.CheckpointManager(tc.train.Checkpoint(model=model, step=step), tmp_path / "run")
    assert again.latest_checkpoint == manager.latest_checkpoint


def test_manager_ignores_and_then_removes_stray_temporary_files(tmp_path: Path) -> None:
    model, step, _ = _parts("cpu")
    manager = tc.train.CheckpointManager(tc.train.Checkpoint(model=model), tmp_path)
    manager.save()
    stray = tmp_path / ".ckpt-2.safetensors.abc123.tmp"
    stray.write_bytes(b"half a checkpoint")
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("keep me")
    assert [Path(p).name for p in manager.checkpoints] == ["ckpt-1.safetensors"]
    manager.save()
    assert not stray.exists() and unrelated.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-1.safetensors", "ckpt-2.safetensors", "notes.txt"]


def test_a_directory_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    model, _, _ = _parts("cpu")
    manager = tc.train.CheckpointManager(tc.train.Checkpoint(model=model), blocker / "ckpts")
    with pytest.raises(OSError, match=f"checkpoint directory {blocker / 'ckpts'}"):
        manager.save()


# --- faults in a real process -------------------------------------------------------------------
_WRITER = textwrap.dedent("""
    import sys, numpy as np, tensorcore as tc
    big = tc.Variable(tc.zeros(int(sys.argv[2]), dtype=tc.float32), trainable=False)
    step = tc.Variable(np.int64(0), trainable=False)
    manager = tc.train.CheckpointManager(tc.train.Checkpoint(big=big, step=step), sys.argv[1], max_to_keep=2)
    for i in range(1, 10**6):
        big.assign(tc.full(big.shape, float(i), dtype=tc.float32))
        step.assign(np.int64(i))
        manager.save(step=i)
        print(i, flush=True)
""")


def _check_consistent(directory: Path) -> int:
    """Every checkpoint left restores, and its content matches its number; returns the latest number."""
    numbers = []
    for path in tc.train.CheckpointManager(tc.train.Checkpoint(), directory).checkpoints:
        arrays = tc.load(path)
        n = int(Path(path).stem.split("-")[1])
        assert int(arrays["step"].numpy()) == n
        assert np.all(arrays["big"].numpy() == n), path
        numbers.append(n)
    return max(numbers, default=0)


def test_killing_the_writer_at_any_moment_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    rng = pyrandom.Random(0)
    elements = 8 * 2**20  # 32 MiB per checkpoint: a write takes long enough to be interrupted in the middle
    latest = 0
    for trial in range(8):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(elements)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # wait for the first complete save of this writer
        assert first.strip().isdigit(), first
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        found = _check_consistent(tmp_path)
        assert found >= int(first), (trial, found, first)
        model_latest = tc.train.CheckpointManager(tc.train.Checkpoint(), tmp_path).latest_checkpoint
        assert model_latest is not None and model_latest.endswith(f"ckpt-{found}.safetensors")
        latest = found
    assert latest > 0
    # The next save cleans up what the killed writers left.
    manager = tc.train.CheckpointManager(tc.train.Checkpoint(x=tc.Variable(1.0)), tmp_path, max_to_keep=10)
    manager.save(step=latest + 1)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


_FULL_DISK = textwrap.dedent("""
    import resource, signal, sys, numpy as np, tensorcore as tc
    big = tc.Variable(tc.ones(1000, dtype=tc.float32), trainable=False)
    manager = tc.train.CheckpointManager(tc.train.Checkpoint(big=big), sys.argv[1])
    manager.save(step=1)
    # A full disk, as the writer sees it: writes past 64 KiB fail (EFBIG instead of ENOSPC).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
    big2 = tc.Variable(tc.zeros(100000, dtype=tc.float32), trainable=False)
    manager2 = tc.train.CheckpointManager(tc.train.Checkpoint(big=big2), sys.argv[1])
    try:
        manager2.save(step=2)
    except OSError as exc:
        print("ERROR", exc)
""")


def test_a_full_disk_names_the_path_and_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", _FULL_DISK, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ERROR cannot write " + str(tmp_path / "ckpt-2.safetensors")), out.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-1.safetensors"]  # no torn file, no temporary
    np.testing.assert_array_equal(tc.load(tmp_path / "ckpt-1.safetensors")["big"].numpy(), np.ones(1000))
    header = json.loads(tc.serialization.load_metadata(tmp_path / "ckpt-1.safetensors")["tensorcore.checkpoint"])
    assert header["objects"]["big"]["kind"] == "variable"


def test_mirrored_models_save_once_and_restore_every_replica(tmp_path: Path) -> None:
    from conftest import DEVICES

    devices = ["cpu", "opencl:0"] if "opencl:0" in DEVICES else ["cpu", "cpu"]
    strategy = tc.distribute.MirroredStrategy(devices)
    with strategy.scope():
        model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        opt = tc.optim.Adam(model.parameters(), lr=0.01)
    x, y = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), np.arange(8) % 2

    def step(xb, yb):
        with tc.GradientTape() as tape:
            loss = tc.nn.functional.cross_entropy(model(xb), yb)
        opt.step(tape.gradient(loss, model.parameters()))

    strategy.run(step, strategy.split(x, y))
    ckpt = tc.train.Checkpoint(model=model, optimizer=opt)
    path = ckpt.save(tmp_path / "m.safetensors")
    assert set(safetensors.numpy.load_file(path)) >= {"model/0.weight", "optimizer/state.0.m"}  # one copy each
    saved = _values(model)
    strategy.run(step, strategy.split(x, y))
    after_one = _values(model)
    for v in model.parameters():  # outside run, assign writes every replica's copy
        v.assign(tc.zeros(v.shape))
    ckpt.restore(path)
    strategy.check_in_sync()  # every replica holds the file's values, optimizer state included
    for k, v in model.state_dict().items():
        for copy in v.copies:
            np.testing.assert_array_equal(copy.numpy(), saved[k])
    strategy.run(step, strategy.split(x, y))
    for k, v in _values(model).items():
        np.testing.assert_array_equal(v, after_one[k])  # and training goes on as before
