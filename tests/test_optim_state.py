"""Optimizer state dicts: an exactly resumed run (bitwise on the same device), the flat layout
the checkpoints rely on, refusal of bad states with every problem named and nothing changed,
in-place writes that traced steps keep seeing, and mirrored replicas."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import optim
from tensorcore.distribute import MirroredStrategy

rng = np.random.default_rng(5)
P0 = rng.standard_normal((3, 4)).astype(np.float32)
GRADS = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(6)]
MAKERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.02),
    "sgd, callable lr": lambda ps: optim.SGD(ps, lr=lambda s: 0.1 / (1.0 + s), momentum=0.5),
}


def _host(state: dict) -> dict:
    """What a checkpoint keeps: NumPy arrays, and the rest through JSON."""
    tensors = {k: v.numpy().copy() for k, v in state.items() if isinstance(v, tc.Tensor)}
    return json.loads(json.dumps({k: v for k, v in state.items() if k not in tensors})) | tensors


def _steps(opt: optim.Optimizer, w: tc.Variable, grads: list, run=None) -> None:
    for g in grads:
        (run or (lambda t: opt.step([t])))(tc.asarray(g, device=w.device))


@pytest.mark.parametrize("name", list(MAKERS))
def test_save_train_on_load_and_retrain_is_bitwise_equal(name: str, device: str) -> None:
    w = tc.Variable(P0.copy(), device=device)
    opt = MAKERS[name]([w])
    _steps(opt, w, GRADS[:3])
    opt.lr = opt.lr if callable(opt.lr) else opt.lr * 0.5  # a changed rate is part of the state
    saved_w, state = w.numpy().copy(), opt.state_dict()  # (on cpu numpy() shares the buffer)
    host = _host(state)
    _steps(opt, w, GRADS[3:])
    want = w.numpy().copy()
    # the same optimizer, from its own (device) snapshot
    w.assign(saved_w)
    opt.load_state_dict(state)
    assert opt.iterations == 3
    _steps(opt, w, GRADS[3:])
    np.testing.assert_array_equal(w.numpy(), want)
    # a new optimizer, as in a new process, from host arrays and JSON
    w2 = tc.Variable(saved_w, device=device)
    fresh = MAKERS[name]([w2])
    fresh.load_state_dict(host)
    assert fresh.lr == opt.lr or callable(fresh.lr)
    _steps(fresh, w2, GRADS[3:])
    np.testing.assert_array_equal(w2.numpy(), want)


@pytest.mark.parametrize("name", ["sgd", "adam", "sgd, callable lr"])
def test_a_traced_step_keeps_working_on_the_state_loaded_into_it(name: str, device: str) -> None:
    """load_state_dict writes into the tensors the graph captured: no retrace, the right values."""
    w = tc.Variable(P0.copy(), device=device)
    opt = MAKERS[name]([w])
    step = tc.function(lambda g: opt.step([g]))
    _steps(opt, w, GRADS[:2], step)
    saved_w, state = w.numpy().copy(), _host(opt.state_dict())
    _steps(opt, w, GRADS[2:5], step)
    want = w.numpy().copy()
    w.assign(saved_w)
    opt.load_state_dict(state)
    _steps(opt, w, GRADS[2:5], step)
    np.testing.assert_array_equal(w.numpy(), want)
    assert step.trace_count == 1 and opt.iterations == 5


def test_the_layout_is_flat_tensors_and_json_values(device: str) -> None:
    a = tc.Variable(P0.copy(), device=device)
    b = tc.Variable(np.zeros(2, np.float64), device=device)
    opt = optim.Adam([a, b], lr=0.01, betas=(0.8, 0.9))
    opt.step([tc.asarray(GRADS[0], device=device), None])
    state = opt.state_dict()
    assert {k for k, v in state.items() if isinstance(v, tc.Tensor)} == {
        f"state.{i}.{k}" for i in (0, 1) for k in ("m", "v", "schedule")}
    rest = {k: v for k, v in state.items() if not isinstance(v, tc.Tensor)}
    assert rest == {"type": "Adam", "lr": 0.01, "lr_callable": False, "iterations": 1, "param_shapes": [[3, 4], [2]],
                    "param_dtypes": ["float32", "float64"], "betas": [0.8, 0.9], "eps": 1e-8, "weight_decay": 0.0}
    json.dumps(rest)
    assert all(v.device == tc.Device(device) for v in state.values() if isinstance(v, tc.Tensor))
    np.testing.assert_array_equal(state["state.1.schedule"].numpy(), [1.0, 1.0, 0.0, 0.0])  # b was not stepped
    before = state["state.0.m"].numpy().copy()
    opt.step([tc.asarray(GRADS[1], device=device), None])
    np.testing.assert_array_equal(state["state.0.m"].numpy(), before)  # a snapshot, not the live buffer


def test_a_bad_state_dict_names_every_problem_and_changes_nothing(device: str) -> None:
    w = tc.Variable(P0.copy(), device=device)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    opt.step([tc.asarray(GRADS[0], device=device)])
    good = opt.state_dict()
    velocity, w_before = good["state.0.velocity"].numpy().copy(), w.numpy().copy()
    bad = dict(good)
    bad.update({"type": "Adam", "momentum": 0.5, "lr": -1.0, "iterations": "3",
                "state.0.velocity": np.zeros((4, 3), np.float64), "state.0.m": np.zeros(3)})
    del bad["nesterov"]
    with pytest.raises(ValueError) as info:
        opt.load_state_dict(bad)
    message = str(info.value)
    for part in ("SGD.load_state_dict: 8 problem(s), nothing was loaded", "missing keys: nesterov",
                 "unexpected keys: state.0.m", "type: was saved from 'Adam', but this optimizer has 'SGD'",
                 "momentum: saved 0.5, but this optimizer has 0.9", "lr: the learning rate must be a finite number >= 0",
                 "iterations: must be an int >= 0, got '3'", "state.0.velocity: shape (4, 3), but this optimizer's is (3, 4)",
                 "state.0.velocity: dtype float64, but this optimizer's is float32"):
        assert part in message, part
    assert opt.state_dict_problems(bad) and opt.state_dict_problems(good) == []
    np.testing.assert_array_equal(opt.state[0]["velocity"].numpy(), velocity)
    np.testing.assert_array_equal(w.numpy(), w_before)
    assert opt.lr == 0.1 and opt.iterations == 1
    with pytest.raises(ValueError, match="param_shapes: saved \\[\\[3, 4\\]\\], but this optimizer has \\[\\[2\\]\\]"):
        optim.SGD([tc.Variable(np.zeros(2, np.float32), device=device)], lr=0.1).load_state_dict(good, strict=False)
    with pytest.raises(ValueError, match="lr_callable: saved False, but this optimizer has True"):
        optim.SGD([w], lr=lambda s: 0.1 + 0.0 * s, momentum=0.9).load_state_dict(good)
    with pytest.raises(TypeError, match="takes the dict that state_dict\\(\\) returns"):
        opt.load_state_dict([("lr", 0.1)])


def test_strict_false_loads_what_is_there(device: str) -> None:
    w = tc.Variable(P0.copy(), device=device)
    opt = optim.Adam([w], lr=0.01)
    partial = {"lr": 0.5, "iterations": 7, "state.0.m": np.ones((3, 4), np.float32), "note": "ignored"}
    with pytest.raises(ValueError, match="missing keys: type, lr_callable"):
        opt.load_state_dict(partial)
    opt.load_state_dict(partial, strict=False)
    assert opt.lr == 0.5 and opt.iterations == 7
    np.testing.assert_array_equal(opt.state[0]["m"].numpy(), np.ones((3, 4), np.float32))
    np.testing.assert_array_equal(opt.state[0]["v"].numpy(), np.zeros((3, 4), np.float32))


def test_state_lands_on_the_device_the_parameter_moved_to() -> None:
    devices = [str(i.device) for i in tc.devices()]
    if len(devices) < 2:
        pytest.skip("needs a second device")
    w = tc.Variable(P0.copy(), device=devices[0])
    opt = optim.Adam([w], lr=0.01)
    opt.step([tc.asarray(GRADS[0], device=devices[0])])
    state = _host(opt.state_dict())
    w.move_to_device(devices[1])
    opt.load_state_dict(state)
    assert all(v.device == tc.Device(devices[1]) for v in opt.state[0].values())
    _steps(opt, w, GRADS[1:3])
    assert opt.iterations == 3 and all(c.device == tc.Device(devices[1]) for c in opt._replica_steps[0].values())


PAIRS = [("cpu", "cpu")] + [("cpu", str(i.device)) for i in tc.devices() if i.device.type == "opencl"][:1]


@pytest.mark.parametrize("pair", PAIRS, ids=["+".join(p) for p in PAIRS])
def test_mirrored_replicas_save_the_first_and_load_every_one(pair: tuple[str, str]) -> None:
    strategy = MirroredStrategy(list(pair))
    with strategy.scope():
        w = tc.Variable(P0.copy(), name="w")
        opt = optim.Adam([w], lr=0.05)

    @tc.function
    def step(x: tc.Tensor) -> tc.Tensor:
        with tc.GradientTape() as tape:
            loss = tc.sum((w * x) ** 2)
        opt.step(tape.gradient(loss, [w]))
        return loss

    batches = [rng.standard_normal((4, 3, 4)).astype(np.float32) for _ in range(4)]
    for xb in batches[:2]:
        strategy.run(step, (strategy.split(xb),))
    saved_w, state = w.numpy().copy(), _host(opt.state_dict())
    np.testing.assert_array_equal(state["state.0.m"], opt._replica_states[0][0]["m"].numpy())
    for xb in batches[2:]:
        strategy.run(step, (strategy.split(xb),))
    want = w.numpy().copy()
    w.assign(saved_w)
    opt.load_state_dict(state)
    for r in range(len(pair)):  # every replica got the state, on its own device
        m = opt._replica_states[r][0]["m"]
        assert m.device == tc.Device(pair[r])
        np.testing.assert_array_equal(m.numpy(), state["state.0.m"])
    strategy.check_in_sync()
    for xb in batches[2:]:
        strategy.run(step, (strategy.split(xb),))
    np.testing.assert_array_equal(w.numpy(), want)
    assert opt.iterations == 4
