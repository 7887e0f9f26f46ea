"""Soft and strict placement with a real second backend (the out-of-tree ``sim`` plugin)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import placement

pytestmark = pytest.mark.usefixtures("sim_backend")


def test_third_party_backend_registers_through_entry_points() -> None:
    from tc_sim_backend import SimArray

    infos = {str(i.device): i for i in tc.devices()}
    assert "sim:0" in infos and "sim:1" in infos and infos["sim:0"].backend == "sim"
    x = tc.asarray([1.0, 2.0], device="sim:1")
    assert x.device == "sim:1" and isinstance(x._data, SimArray)
    y = x + x
    assert isinstance(y._data, SimArray) and y.device == "sim:1"
    np.testing.assert_array_equal(y.numpy(), [2.0, 4.0])
    assert tc.placement_stats()["ops_per_device"] == {"sim:1": 1}


def test_backend_that_fails_to_start_is_listed_with_its_reason() -> None:
    broken = [i for i in tc.devices(all=True) if i.backend == "broken"]
    assert len(broken) == 1 and not broken[0].available
    assert "driver version 0.0 is too old" in broken[0].reason
    assert all(i.backend != "broken" for i in tc.devices())
    with pytest.raises(tc.DeviceUnavailableError, match="broken backend is unavailable.*too old"):
        with tc.placement_policy("strict"):
            tc.zeros(1, device="broken")


def test_missing_kernel_falls_back_to_cpu_logged_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    placement._warned.discard(("fallback", "exp", tc.Device("sim:0")))
    x_np = np.array([0.0, 1.0, 2.0], np.float32)
    x = tc.asarray(x_np, device="sim")
    with caplog.at_level(logging.WARNING, logger="tensorcore.placement"):
        y = tc.exp(x)
        tc.exp(x)
    assert y.device == "sim:0"  # the result comes back to the device the op was asked on
    np.testing.assert_allclose(y.numpy(), np.exp(x_np), rtol=1e-6)
    stats = tc.placement_stats()
    assert stats["fallbacks"] == {"exp@sim:0": 2}
    assert stats["bytes_copied"] == 4 * x_np.nbytes  # in and out, twice
    messages = [r.getMessage() for r in caplog.records if "exp" in r.getMessage()]
    assert len(messages) == 1 and "no kernel on sim:0" in messages[0]


def test_missing_kernel_raises_under_strict_naming_op_device_and_where_it_exists() -> None:
    x = tc.asarray([1.0], device="sim")
    with tc.placement_policy("strict"), pytest.raises(tc.PlacementError) as info:
        tc.exp(x)
    msg = str(info.value)
    assert "'exp'" in msg and "sim:0" in msg and "cpu" in msg


def test_inputs_on_two_devices_copy_under_soft_and_raise_under_strict() -> None:
    a = tc.asarray([1.0, 2.0])
    b = tc.asarray([10.0, 20.0], device="sim")
    c = a + b
    assert c.device == "sim:0"  # an accelerator wins over cpu
    np.testing.assert_array_equal(c.numpy(), [11.0, 22.0])
    assert tc.placement_stats()["bytes_copied"] == a.numpy().nbytes
    with tc.placement_policy("strict"), pytest.raises(tc.PlacementError) as info:
        a + b
    assert "cpu:0" in str(info.value) and "sim:0" in str(info.value)


def test_device_scope_wins_over_the_inputs_device() -> None:
    a = tc.asarray([1.0, 2.0])
    with tc.device("sim:1"):
        b = a * 3
        z = tc.zeros((2,))
    assert b.device == "sim:1" and z.device == "sim:1"
    np.testing.assert_array_equal(b.numpy(), [3.0, 6.0])


def test_gradients_flow_across_devices_and_fallbacks() -> None:
    x = tc.asarray(np.array([0.5, 1.0, 1.5]))
    with tc.GradientTape() as tape:
        tape.watch(x)
        on_sim = x.to_device("sim")
        y = tc.sum(tc.exp(on_sim) * on_sim)  # exp falls back to cpu, multiply and sum run on sim
    (g,) = tape.gradient(y, [x])
    assert g.device == "cpu:0"
    xv = np.array([0.5, 1.0, 1.5])
    np.testing.assert_allclose(g.numpy(), np.exp(xv) * (1 + xv), rtol=1e-12)


def test_log_placement_logs_every_op(caplog: pytest.LogCaptureFixture) -> None:
    placement.state.log_every_op = True
    try:
        with caplog.at_level(logging.INFO, logger="tensorcore.placement"):
            a = tc.asarray([1.0], device="sim")
            a + a
            tc.exp(a)
    finally:
        placement.state.log_every_op = False
    lines = [r.getMessage() for r in caplog.records]
    assert "op add placed on sim:0" in lines
    assert "op exp placed on cpu:0" in lines


def test_placement_stats_reset() -> None:
    tc.asarray([1.0]) + 1
    assert tc.placement_stats()["ops_per_device"]["cpu:0"] == 1
    tc.reset_placement_stats()
    assert tc.placement_stats() == {"ops_per_device": {}, "fallbacks": {}, "bytes_copied": 0}


def test_kernels_are_bound_to_their_device() -> None:
    a = tc.asarray([1.0, 2.0], device="sim:1")
    b = a + a  # sim's bind() raises if a sim:1 array reaches a kernel bound to sim:0
    assert b._data.index == 1 and b.device == "sim:1"


def test_backend_whose_name_disagrees_with_its_entry_point_is_refused() -> None:
    entry = [i for i in tc.devices(all=True) if i.backend == "misnamed"]
    assert len(entry) == 1 and not entry[0].available and "misconfigured" in entry[0].reason


def test_in_place_ops_fall_back_and_write_every_buffer_back() -> None:
    v = tc.Variable([1.0, 2.0], device="sim")
    v.assign_add(tc.asarray([10.0, 10.0], device="sim"))  # sim has no assign_add kernel
    assert v.device == "sim:0" and type(v._data).__name__ == "SimArray"
    np.testing.assert_array_equal(v.numpy(), [11.0, 12.0])
    assert tc.placement_stats()["fallbacks"] == {"assign_add@sim:0": 1}
    opt = tc.optim.SGD([v], lr=0.5, momentum=0.9)  # no sgd_step kernel either
    for _ in range(2):
        opt.step([tc.asarray([1.0, 1.0], device="sim")])
    velocity = opt.state[0]["velocity"]
    assert velocity.device == "sim:0"
    np.testing.assert_allclose(velocity.numpy(), [1.9, 1.9])  # the state written back too
    np.testing.assert_allclose(v.numpy(), [11.0 - 0.5 - 0.95, 12.0 - 0.5 - 0.95])
    with tc.placement_policy("strict"), pytest.raises(tc.PlacementError, match="'assign_sub' has no kernel on sim:0"):
        v.assign_sub(tc.asarray([1.0, 1.0], device="sim"))


def test_tensor_indices_work_on_a_backend_with_its_own_array_type() -> None:
    x_np = np.arange(6.0).reshape(2, 3)
    x = tc.asarray(x_np, device="sim")
    idx = tc.asarray([2, 0], device="sim")
    np.testing.assert_array_equal(x[:, idx].numpy(), x_np[:, [2, 0]])
    np.testing.assert_array_equal(x[x > 2.5].numpy(), x_np[x_np > 2.5])
    np.testing.assert_array_equal(tc.take(x, idx, axis=1).numpy(), x_np[:, [2, 0]])
    x[0, idx] = 7.0
    assert x.device == "sim:0"
    np.testing.assert_array_equal(x.numpy()[0], [7.0, 1.0, 7.0])


def test_model_moved_to_another_device_keeps_training_correctly() -> None:
    def run(move: bool) -> tuple[np.ndarray, np.ndarray]:
        tc.random.seed(0)
        model = tc.nn.Linear(3, 2)
        opt = tc.optim.Adam(model.parameters(), lr=0.1)
        x = tc.asarray(np.ones((4, 3), np.float32))
        for step in range(3):
            if move and step == 1:
                model.to_device("sim")
                x = x.to_device("sim")
            with tc.GradientTape() as tape:
                loss = tc.sum(model(x) ** 2)
            opt.step(tape.gradient(loss, model.parameters()))
        assert all(p.device == ("sim:0" if move else "cpu:0") for p in model.parameters())
        assert opt.state[0]["m"].device == model.weight.device
        return model.weight.numpy(), opt.state[0]["m"].numpy()

    (w_cpu, m_cpu), (w_moved, m_moved) = run(False), run(True)
    np.testing.assert_allclose(w_moved, w_cpu, rtol=1e-6)
    np.testing.assert_allclose(m_moved, m_cpu, rtol=1e-6)


def test_numpy_scalars_act_as_python_scalars_on_any_device() -> None:
    x = tc.asarray(np.ones(2, np.float32), device="sim")
    with tc.placement_policy("strict"):
        y = x * np.float64(2.0)
    assert y.dtype == tc.float32 and y.device == "sim:0"


def test_log_placement_environment_variable(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("TENSORCORE_")} | {"TENSORCORE_LOG_PLACEMENT": "1"}
    out = subprocess.run([sys.executable, "-c", "import tensorcore as tc; tc.exp(tc.ones(2))"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "op exp placed on cpu:0" in out.stderr


def test_strict_scope_error_names_the_scope_and_non_arrays_name_the_op() -> None:
    a = tc.asarray([1.0])
    with tc.placement_policy("strict"), tc.device("sim"), pytest.raises(tc.PlacementError, match="the tc.device scope runs it on sim:0"):
        a * 2
    with pytest.raises(tc.OpError, match=r"add: inputs \(float32\[1\] on cpu:0, None\) must be tensors or Python scalars"):
        a + None

