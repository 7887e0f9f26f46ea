"""An optimizer step that raises changes nothing: no parameter, no state, no lr tensor, no step
counter (issue 12, defect 3). NumPy gradients are uploaded before anything changes; under
strict placement a gradient on another device, or a parameter whose device kernels decline
its dtype, raises before the first write. On every device."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import optim

OTHER = {str(i.device) for i in tc.devices()}


def _snapshot(opt: optim.Optimizer) -> list[np.ndarray]:
    """Copies of everything a step may write: parameters, per-parameter state, lr tensors and
    step counters (every replica's), plus the step count."""
    tensors = list(opt.params)
    for states in opt._replica_states:
        for state in states:
            tensors += [v for v in state.values() if isinstance(v, tc.Tensor)]
    tensors += list(opt._lr_tensors.values())
    for steps in opt._replica_steps:
        tensors += list(steps.values())
    return [np.array(t.numpy(), copy=True) for t in tensors] + [np.array(opt.iterations)]


def _assert_unchanged(opt: optim.Optimizer, before: list[np.ndarray]) -> None:
    after = _snapshot(opt)
    assert len(after) == len(before)
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)


def test_numpy_gradients_are_uploaded_to_the_parameters_device(device: str) -> None:
    w = tc.Variable(np.zeros(3, np.float32), device=device, name="w")
    b = tc.Variable(np.zeros(3, np.float32), device=device, name="b")
    opt = optim.SGD([w, b], lr=0.1, momentum=0.9)
    opt.step([tc.ones(3, device=device), np.ones(3, np.float32)])  # the call: it raised after updating w
    opt.step([np.full(3, 2.0, np.float32), tc.full((3,), 2.0, device=device)])
    for p in (w, b):
        assert p.device == tc.Device(device)
        np.testing.assert_allclose(p.numpy(), [-0.1 - 0.1 * (2.0 + 0.9)] * 3, rtol=1e-6)
    assert opt.state[1]["velocity"].device == tc.Device(device) and opt.iterations == 2


@pytest.mark.parametrize("bad, error, match", [
    ([1.0, 2.0, 3.0], TypeError, r"gradient 1 \(of parameter 'b'\) is a list; pass a tc.Tensor, a NumPy array"),
    (np.ones(3, np.float64), tc.OpError, r"gradient 1 is float64\[3\] but parameter 'b' is float32\[3\]"),
    (np.ones(4, np.float32), tc.OpError, r"gradient 1 is float32\[4\] but parameter 'b' is float32\[3\]"),
])
def test_a_bad_gradient_after_a_good_one_changes_nothing(device: str, bad: object, error: type, match: str) -> None:
    w = tc.Variable(np.ones(3, np.float32), device=device, name="w")
    b = tc.Variable(np.ones(3, np.float32), device=device, name="b")
    for opt in (optim.SGD([w, b], lr=0.1, momentum=0.9), optim.Adam([w, b], lr=0.1)):
        opt.step([tc.ones(3, device=device), tc.ones(3, device=device)])  # state and counters in play
        before = _snapshot(opt)
        with pytest.raises(error, match=match):
            opt.step([tc.ones(3, device=device), bad])
        _assert_unchanged(opt, before)


def test_strict_placement_refuses_a_gradient_on_another_device(device: str) -> None:
    other = next((d for d in sorted(OTHER) if d != device), None)
    if other is None:
        pytest.skip("one device only: no other device to hold the gradient")
    w = tc.Variable(np.ones(3, np.float32), device=device, name="w")
    b = tc.Variable(np.ones(3, np.float32), device=device, name="b")
    opt = optim.Adam([w, b], lr=0.1)
    before = _snapshot(opt)
    with tc.placement_policy("strict"), pytest.raises(tc.PlacementError) as info:
        opt.step([tc.ones(3, device=device), tc.ones(3, device=other)])
    message = str(info.value)
    assert f"gradient 1 is on {tc.Device(other)} but parameter 'b' is on {tc.Device(device)}" in message
    assert f".to_device('{tc.Device(device)}')" in message
    _assert_unchanged(opt, before)
    opt.step([tc.ones(3, device=device), tc.ones(3, device=other)])  # soft: copied, counted
    np.testing.assert_allclose(b.numpy(), w.numpy())
    assert tc.placement_stats()["bytes_copied"] >= 12


@pytest.mark.parametrize("shape", [(4,), (2, 2), (3,)])
def test_strict_placement_takes_adam_on_a_parameter_the_size_of_its_schedule(device: str, shape: tuple) -> None:
    """Adam's schedule has 4 elements: the strict check's scratch tensors shrank it with a
    4-element parameter (it took it for elementwise state), and the step was refused."""
    w = tc.Variable(np.ones(shape, np.float32), device=device, name="w")
    opt = optim.Adam([w], lr=0.1)
    with tc.placement_policy("strict"):
        opt.step([tc.ones(shape, device=device)])
    np.testing.assert_allclose(w.numpy(), np.full(shape, 0.9), rtol=1e-5)


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam])
def test_strict_step_whose_kernel_declines_a_dtype_updates_nothing(device: str, cls: type) -> None:
    """A float32 parameter, then a float16 one: on a device whose update kernels lack float16
    (opencl), strict placement raises before the float32 one is written, and Adam's schedule
    of neither advances; where they take it (cpu), the step runs. Soft placement runs it."""
    w32 = tc.Variable(np.ones(3, np.float32), device=device, name="w32")
    w16 = tc.Variable(np.ones(3, np.float16), device=device, name="w16")
    kwargs = {"lr": 0.1, "momentum": 0.9} if cls is optim.SGD else {"lr": 0.1}
    opt = cls([w32, w16], **kwargs)
    grads = [tc.ones(3, device=device), tc.ones(3, dtype=tc.float16, device=device)]
    before = _snapshot(opt)
    try:
        with tc.placement_policy("strict"):
            opt.step(grads)
    except tc.PlacementError as exc:
        message = str(exc)
        assert "parameter 1 ('w16', float16[3]" in message and "updated nothing" in message
        assert "float16" in message and "TENSORCORE_PLACEMENT=soft" in message
        _assert_unchanged(opt, before)
        with tc.placement_policy("strict"), pytest.raises(tc.PlacementError):
            opt.step(grads)  # the verdict is remembered, and still nothing changes
        _assert_unchanged(opt, before)
        opt.step(grads)  # soft: the float16 update runs on cpu and is written back
    else:
        assert tc.Device(device).type != "opencl", "opencl's update kernels have no float16: strict must raise"
    np.testing.assert_allclose(w32.numpy(), [0.9] * 3, rtol=1e-6)  # one step of 0.1 (SGD, and Adam's first)
    np.testing.assert_allclose(w16.numpy().astype(np.float32), [0.9] * 3, rtol=1e-3)
    assert opt.iterations == 1


def test_strict_steps_that_every_kernel_takes_run_and_count_once_each(device: str) -> None:
    """The kernel check of strict placement runs on scratch tensors: the real parameters, state
    and counters see each step exactly once."""
    w = tc.Variable(np.ones((2, 3)), device=device, name="w")
    opt = optim.Adam([w], lr=0.1)
    with tc.placement_policy("strict"):
        for _ in range(3):
            opt.step([tc.ones((2, 3), dtype=tc.float64, device=device)])
    np.testing.assert_allclose(opt.state[0]["schedule"].numpy()[:2], [0.9**3, 0.999**3], rtol=1e-12)
    assert opt.iterations == 3 and float(opt._replica_steps[0][tc.Device(device)].numpy()) == 3.0
    np.testing.assert_allclose(w.numpy(), np.full((2, 3), 0.7), rtol=1e-6)  # Adam moves lr per step on a constant gradient
