"""``tensorcore train`` with ``--checkpoint-dir``, ``--resume`` and ``--logdir``: checkpoints after
each epoch that other tools read, a resumed run that trains only the epochs left, and scalars that
TensorBoard's own reader shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy


def train(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TENSORCORE_DEVICE="cpu")
    env.pop("TENSORCORE_DEVICES", None)
    return subprocess.run([sys.executable, "-m", "tensorcore", "train", "--no-progress", *args],
                          capture_output=True, text=True, timeout=600, env=env)


def test_resume_trains_only_the_epochs_after_the_latest_checkpoint(tmp_path: Path) -> None:
    ckpts = tmp_path / "ckpts"
    first = train("--epochs", "3", "--checkpoint-dir", str(ckpts))
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.name for p in ckpts.iterdir()) == [f"ckpt-{i}.safetensors" for i in (1, 2, 3)]
    tensors = safetensors.numpy.load_file(str(ckpts / "ckpt-3.safetensors"))  # another tool reads them
    assert {"model/0.weight", "epochs_done"} <= set(tensors) and int(tensors["epochs_done"]) == 3
    assert any(k.startswith("optimizer/") for k in tensors)

    second = train("--epochs", "4", "--checkpoint-dir", str(ckpts), "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    out = second.stdout
    assert f"resumed from {ckpts / 'ckpt-3.safetensors'} (3 epochs trained): training epochs 4 to 4" in out
    assert "epoch 4:" in out and "epoch 1:" not in out and "epoch 3:" not in out
    assert "after 1 epochs (from epoch 4)" in out
    assert sorted(p.name for p in ckpts.iterdir()) == [f"ckpt-{i}.safetensors" for i in (2, 3, 4)]  # newest 3
    # The resumed run started from epoch 3's weights, not from fresh ones.
    before = safetensors.numpy.load_file(str(ckpts / "ckpt-3.safetensors"))["model/0.weight"]
    after = safetensors.numpy.load_file(str(ckpts / "ckpt-4.safetensors"))["model/0.weight"]
    assert 0 < np.abs(after - before).max() < 0.5 * np.abs(before).max()


def test_resume_without_a_checkpoint_starts_at_epoch_1_and_resume_needs_a_directory(tmp_path: Path) -> None:
    alone = train("--epochs", "1", "--resume")
    assert alone.returncode == 2 and "--resume continues from the latest checkpoint" in alone.stderr
    empty = train("--epochs", "1", "--checkpoint-dir", str(tmp_path / "new"), "--resume")
    assert empty.returncode == 0, empty.stderr[-3000:]
    assert "no checkpoint in" in empty.stdout and "epoch 1:" in empty.stdout


def test_logdir_writes_scalars_that_tensorboard_reads(tmp_path: Path) -> None:
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    done = train("--epochs", "2", "--logdir", str(tmp_path / "logs"))
    assert done.returncode == 0, done.stderr[-3000:]
    acc = event_accumulator.EventAccumulator(str(tmp_path / "logs"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"loss", "accuracy", "learning_rate", "examples_per_second"} <= tags
    losses = acc.Scalars("loss")
    assert [e.step for e in losses] == [1, 2] and losses[1].value < losses[0].value
    printed = [float(line.split("loss ")[1].split(",")[0]) for line in done.stdout.splitlines() if line.startswith("epoch ")]
    assert np.allclose([e.value for e in losses], printed, atol=1e-4)
    assert all(0 < e.value <= 1 for e in acc.Scalars("accuracy"))
    lrs = [e.value for e in acc.Scalars("learning_rate")]
    assert lrs[0] == pytest.approx(3e-3) and lrs[1] < lrs[0]  # the cosine decay


def test_train_help_gives_every_flag_a_default() -> None:
    done = subprocess.run([sys.executable, "-m", "tensorcore", "train", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for flag in ("--epochs", "--seed", "--device", "--devices", "--batch-size", "--lr", "--checkpoint-dir",
                 "--resume", "--logdir", "--no-progress"):
        assert flag in text, flag
    assert text.count("(default:") >= 10
