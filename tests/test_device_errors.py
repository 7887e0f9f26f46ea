"""Device errors (issue 12, defect 1): a bad index on an asynchronous device.

On ``cpu`` a label or index out of range raises at the call. On a device that runs
asynchronously (``opencl``, ``cuda``) the kernel finds it, and the launching thread raises a
``DeviceError`` at its next read or synchronize on that device. Either way:

- the error names the op, the offending value and its position;
- nothing is half-applied: the in-place updates that thread queued on that device after the
  bad op (optimizer steps and their state, step counters, ``assign*``, ``setitem``) write
  nothing, eagerly and in traced steps, so a training step with a bad batch changes nothing;
- a result built from a bad index never reads as a plausible value afterwards.

Every test runs on every available device (the ``device`` fixture).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import numpy as np
import pytest
from conftest import DEVICES

import tensorcore as tc
from tensorcore.errors import DeviceError, index_position

from support import run_threads

F = tc.nn.functional
TIMEOUT = 60.0
rng = np.random.default_rng(12)
X = np.arange(12, dtype=np.float32).reshape(4, 3)
LOGITS = rng.standard_normal((8, 3)).astype(np.float32)
GOOD_LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1])


def _on(a: np.ndarray, device: str) -> tc.Tensor:
    return tc.asarray(a, device=device)


def _labels(bad: int, at: int) -> np.ndarray:
    labels = GOOD_LABELS.copy()
    labels[at] = bad
    return labels


# (call on a device, the message it must raise): the value and its position are named.
BAD_CALLS: dict[str, tuple[Callable[[str], tc.Tensor], str]] = {
    "cross_entropy 3 of 3 classes": (
        lambda d: F.cross_entropy(_on(LOGITS, d), _on(_labels(3, 2), d)),
        r"cross_entropy: label 3 is out of range for 3 classes \(at position 2\); expected 0 <= label < 3"),
    "cross_entropy 100": (
        lambda d: F.cross_entropy(_on(LOGITS, d), _on(_labels(100, 7), d)),
        r"cross_entropy: label 100 is out of range for 3 classes \(at position 7\)"),
    "cross_entropy -1": (
        lambda d: F.cross_entropy(_on(LOGITS, d), _on(_labels(-1, 0), d), reduction="none"),
        r"cross_entropy: label -1 is out of range for 3 classes \(at position 0\)"),
    "cross_entropy int8 -1 of 300 classes": (  # seen unsigned, -1 is 255: below 300, yet caught
        lambda d: F.cross_entropy(_on(np.zeros((3, 300), np.float32), d), _on(np.array([0, -1, 2], np.int8), d)),
        r"cross_entropy: label -1 is out of range for 300 classes \(at position 1\)"),
    "embedding": (
        lambda d: F.embedding(_on(np.array([[0, 1], [2, 9]]), d), _on(X, d)),
        r"embedding: index 9 is out of range for a weight with 4 rows \(at position \(1, 1\)\); "
        r"expected 0 <= index < 4"),
    "embedding negative": (
        lambda d: F.embedding(_on(np.array([3, -1, 0], np.int32), d), _on(X, d)),
        r"embedding: index -1 is out of range for a weight with 4 rows \(at position 1\)"),
}

# The same for the gathers; the cpu raises NumPy's message (value and axis, not the position).
BAD_GATHERS: dict[str, tuple[Callable[[str], tc.Tensor], str, str]] = {
    "getitem": (lambda d: _on(X, d)[_on(np.array([0, 7]), d)],
                r"(?s)getitem: .*index 7 is out of bounds for axis 0 with size 4", r" \(at position 1\)"),
    "take": (lambda d: tc.take(_on(X, d), _on(np.array([2, -9, 0]), d), axis=0),
             r"(?s)(take|getitem): .*index -9 is out of bounds for axis 0 with size 4", r" \(at position 1\)"),
    "take_along_axis": (lambda d: tc.take_along_axis(_on(X, d), _on(np.array([[0], [2], [3], [1]]), d), axis=1),
                        r"(?s)take_along_axis.*index 3 is out of bounds for axis 1 with size 3", r" \(at position \(2, 0\)\)"),
    "getitem broadcast": (lambda d: _on(X, d)[_on(np.array([[0], [1]]), d), _on(np.array([0, 1, 5]), d)],
                          r"(?s)getitem: .*index 5 is out of bounds for axis 1 with size 3", r" \(at position 2\)"),
}


def _raises_at_call_or_next_read(device: str, make: Callable[[str], tc.Tensor], message: str) -> str:
    """The error's text: on cpu raised by the call, elsewhere a DeviceError at the next read."""
    if device.startswith("cpu"):
        with pytest.raises(tc.OpError, match=message) as caught:
            make(device)
        return str(caught.value)
    result = make(device)  # nothing read back yet: no error either
    with pytest.raises(DeviceError, match=message) as caught:
        result.numpy()
    assert f"found on {tc.Device(device)}" in str(caught.value)
    tc.synchronize(device)  # reported once: nothing is left pending
    return str(caught.value)


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_a_bad_index_error_names_the_op_the_value_and_its_position(name: str, device: str) -> None:
    make, message = BAD_CALLS[name]
    _raises_at_call_or_next_read(device, make, message)


@pytest.mark.parametrize("name", sorted(BAD_GATHERS))
def test_a_bad_gather_index_is_named_with_its_value_and_position_on_a_device(name: str, device: str) -> None:
    make, message, position = BAD_GATHERS[name]
    text = _raises_at_call_or_next_read(device, make, message)
    if not device.startswith("cpu"):
        assert position.replace("\\", "") in text, text


@pytest.mark.parametrize("name", ["getitem", "take_along_axis", "embedding"])
def test_a_result_built_from_a_bad_index_never_reads_as_a_real_value(name: str, device: str) -> None:
    make = {"getitem": lambda d: _on(X, d)[_on(np.array([1, 7, 2]), d)],
            "take_along_axis": lambda d: tc.take_along_axis(_on(X, d), _on(np.array([[0], [5], [1], [2]]), d), axis=1),
            "embedding": lambda d: F.embedding(_on(np.array([1, 7, 2]), d), _on(X, d))}[name]
    if device.startswith("cpu"):
        with pytest.raises(tc.OpError):
            make(device)  # no result exists at all
        return
    result = make(device)
    with pytest.raises(DeviceError):
        result.numpy()
    values = result.numpy()  # read again, after the error: the bad elements are NaN, not x[0]
    bad = np.zeros(values.shape, bool)
    bad[1] = True
    assert np.isnan(values[bad]).all() and not np.isnan(values[~bad]).any(), values


def test_index_positions_count_in_the_index_tensor_not_in_its_broadcast() -> None:
    assert index_position(7, (8,)) == " (at position 7)"
    assert index_position(5, (2, 3)) == " (at position (1, 2))"
    assert index_position(5, (2, 3), (2, 1)) == " (at position (1, 0))"
    assert index_position(4, (2, 3), (3,)) == " (at position 1)"
    assert index_position(0, (), ()) == ""  # a 0-d index tensor has no position to name


# --- a training step with a bad batch changes nothing ----------------------------------------

OPTIMIZERS: dict[str, Callable[[list], tc.optim.Optimizer]] = {
    "sgd momentum": lambda ps: tc.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "sgd lr(step)": lambda ps: tc.optim.SGD(ps, lr=lambda step: 0.1 / (1.0 + step), momentum=0.5),
    "adam": lambda ps: tc.optim.Adam(ps, lr=0.01, weight_decay=0.1),
    "adamw": lambda ps: tc.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
}


def _model(device: str | None, optimizer: str) -> tuple[list[tc.Variable], tc.optim.Optimizer]:
    """Parameters on ``device`` (None: the default, a strategy's replicas in its scope)."""
    placed = {} if device is None else {"device": device}
    w = tc.Variable(rng.standard_normal((5, 3)).astype(np.float32), name="w", **placed)
    b = tc.Variable(np.zeros(3, np.float32), name="b", **placed)
    return [w, b], OPTIMIZERS[optimizer]([w, b])


def _train_step(params: list[tc.Variable], opt: tc.optim.Optimizer, x: tc.Tensor, labels: tc.Tensor) -> tc.Tensor:
    with tc.GradientTape() as tape:
        loss = F.cross_entropy(x @ params[0] + params[1], labels)
    opt.step(tape.gradient(loss, params))
    return loss


def _everything(opt: tc.optim.Optimizer) -> dict[str, np.ndarray]:
    """Host copies of the training state: parameters, per-parameter state (momentum, Adam's
    moments and schedule), the step counters and the lr tensors."""
    out = {f"param {p.name}": p.numpy().copy() for p in opt.params}
    for i, state in enumerate(opt.state):
        out.update({f"state {i} {k}": v.numpy().copy() for k, v in state.items() if isinstance(v, tc.Tensor)})
    out.update({f"step counter on {d}": c.numpy().copy() for d, c in opt._replica_steps[0].items()})
    out.update({f"lr on {d}": t.numpy().copy() for d, t in opt._lr_tensors.items()})
    return out


def _assert_same(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> None:
    assert before.keys() == after.keys()
    for key in before:
        assert before[key].tobytes() == after[key].tobytes(), f"{key} changed: {before[key]} -> {after[key]}"


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
@pytest.mark.parametrize("bad", [(3, 2), (100, 7), (-1, 0)], ids=["3 of 3", "100", "-1"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_a_step_with_a_bad_label_changes_no_parameter_state_counter_or_lr(optimizer: str, bad: tuple, traced: bool,
                                                                          device: str) -> None:
    params, opt = _model(device, optimizer)
    step = tc.function(_train_step) if traced else _train_step
    x = _on(rng.standard_normal((8, 5)).astype(np.float32), device)
    step(params, opt, x, _on(GOOD_LABELS, device))  # state worth protecting: momentum, moments, a count of 1
    before, saved = _everything(opt), opt.state_dict()
    value, at = bad
    with pytest.raises(tc.OpError, match=rf"cross_entropy: label {value} is out of range for 3 classes"):
        loss = step(params, opt, x, _on(_labels(value, at), device))  # cpu: raises here
        loss.numpy()  # an asynchronous device: here, and the update was skipped
    _assert_same(before, _everything(opt))
    assert opt.iterations == 1
    # The next good step trains on as if the bad batch had never come: as a copy of the state
    # from before it does.
    params_ref, opt_ref = _model(device, optimizer)
    for p in params_ref:
        p.assign(before[f"param {p.name}"])
    opt_ref.load_state_dict(saved)
    step(params, opt, x, _on(GOOD_LABELS, device))
    _train_step(params_ref, opt_ref, x, _on(GOOD_LABELS, device))
    for p, q in zip(params, params_ref):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-6, atol=1e-7, err_msg=p.name)
    assert opt.iterations == 2


def test_in_place_ops_write_nothing_while_a_device_error_is_pending(device: str) -> None:
    v = tc.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), device=device)
    before = v.numpy().copy()
    other = _on(np.full((2, 3), 5.0, np.float32), device)
    with pytest.raises(tc.OpError, match=r"(take|getitem): .*index 9 is out of bounds"):
        tc.take(_on(X, device), _on(np.array([9]), device), axis=0)  # cpu: raises here; a device: pending
        v.assign(other)
        v.assign_add(other)
        v.assign_sub(other * 3.0)
        v[...] = 7.0  # a fill: the value travels as a kernel argument
        v[0] = 3.0
        v[:, 1:] = other[:, :2]
        v.numpy()
    np.testing.assert_array_equal(v.numpy(), before)
    v.assign_add(other)  # once the error is raised, updates run again
    np.testing.assert_array_equal(v.numpy(), before + 5.0)


def test_opt_lr_and_iterations_stay_true_to_the_devices_after_a_device_error(device: str) -> None:
    params, opt = _model(device, "sgd momentum")
    x = _on(rng.standard_normal((8, 5)).astype(np.float32), device)
    _train_step(params, opt, x, _on(GOOD_LABELS, device))
    with pytest.raises(tc.OpError, match="cross_entropy: label 100"):
        loss = _train_step(params, opt, x, _on(_labels(100, 7), device))
        opt.lr = 0.5  # queued while the error is pending: skipped on the device
        loss.numpy()
    assert opt.iterations == 1  # the device's count: the bad step did not count
    opt.lr = 0.5  # the same value again is written again: the host's copy may be stale
    assert [float(t.numpy()) for t in opt._lr_tensors.values()] == [0.5]
    assert opt.iterations == 1


def test_a_threads_pending_error_stops_only_that_threads_updates(device: str) -> None:
    a = tc.Variable(np.zeros(3, np.float32), device=device)
    b = tc.Variable(np.zeros(3, np.float32), device=device)
    launched, b_done = threading.Event(), threading.Event()
    out: dict[str, object] = {}

    def thread_a() -> None:
        try:
            with pytest.raises(tc.OpError, match=r"embedding: index 4 is out of range"):
                F.embedding(_on(np.array([4]), device), _on(X, device))  # pending on a device
                a.assign_add(_on(np.ones(3, np.float32), device))  # skipped
                launched.set()
                assert b_done.wait(TIMEOUT)
                a.numpy()
        finally:
            launched.set()

    def thread_b() -> None:
        try:
            assert launched.wait(TIMEOUT)
            b.assign_add(_on(np.ones(3, np.float32), device))  # A's error is not B's
            out["b"] = b.numpy().copy()
        finally:
            b_done.set()

    run_threads(thread_a, thread_b)
    np.testing.assert_array_equal(out["b"], [1, 1, 1])
    np.testing.assert_array_equal(a.numpy(), [0, 0, 0])


MIXED = [("cpu", d) for d in DEVICES if not d.startswith("cpu")][:1]


@pytest.mark.skipif(not MIXED, reason="no asynchronous device here")
@pytest.mark.parametrize("bad_replica", [0, 1])
@pytest.mark.parametrize("mode", ["eager", "traced"])
def test_a_bad_label_in_one_replica_changes_no_replica(bad_replica: int, mode: str) -> None:
    """The failing replica's own error reaches the caller (traced too: the other replica's
    abort inside its graph's all-reduce is not what run raises), and no replica changed."""
    strategy = tc.distribute.MirroredStrategy(list(MIXED[0]))
    with strategy.scope():
        params, opt = _model(None, "adam")

    def step(x: tc.Tensor, labels: tc.Tensor) -> tc.Tensor:
        return _train_step(params, opt, x, labels)

    step = tc.function(step) if mode == "traced" else step
    x = rng.standard_normal((16, 5)).astype(np.float32)
    good = np.concatenate([GOOD_LABELS, GOOD_LABELS])
    xs, ys = strategy.split(x, good)
    strategy.run(step, (xs, ys))
    before = [[c.numpy().copy() for c in p.copies] for p in params]
    bad = good.copy()
    bad[8 * bad_replica + 7] = 100
    xs, ys = strategy.split(x, bad)
    with pytest.raises(tc.OpError, match=r"^cross_entropy: label 100 is out of range for 3 classes \(at position 7\)") as info:
        strategy.run(step, (xs, ys))
    if sys.version_info >= (3, 11):
        assert f"(raised in replica {bad_replica}, on {strategy.devices[bad_replica]}, inside strategy.run)" in info.value.__notes__
    for p, copies in zip(params, before):
        for c, old in zip(p.copies, copies):
            assert c.numpy().tobytes() == old.tobytes(), f"{p.name} changed on {c.device}"
    strategy.check_in_sync()
    assert opt.iterations == 1
