"""tc.custom_op: a new op from NumPy, with a gradient, kernels per backend and a composite form."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc

from support import check_grad, check_op


@tc.custom_op("test_softplus", grad=lambda ctx, g: (g * tc.exp(ctx.inputs[0]) / (1 + tc.exp(ctx.inputs[0])),))
def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)), stably."""
    return np.logaddexp(0, x)


@tc.custom_op("test_scale", grad=lambda ctx, g: (g * ctx.attrs["factor"],),
              composite=lambda x, factor: x * factor)
def scale(x: np.ndarray, factor: float) -> np.ndarray:
    """x * factor."""
    return x * factor


def test_custom_op_runs_eagerly_on_every_device_with_gradient(device: str) -> None:
    x = np.random.default_rng(0).standard_normal((3, 4))
    check_op(softplus, lambda a: np.logaddexp(0, a), [x], device, rtol=1e-12)
    check_grad(softplus, [x], device)
    check_op(lambda a: scale(a, factor=2.5), lambda a: a * 2.5, [x], device)
    check_grad(lambda a: scale(a, factor=2.5), [x], device)
    assert softplus.__doc__ == "log(1 + exp(x)), stably."


@pytest.mark.usefixtures("sim_backend")
def test_custom_op_without_a_kernel_falls_back_and_with_one_runs_natively() -> None:
    from tc_sim_backend import SimArray

    x = tc.asarray([0.0, 1.0], device="sim")
    y = softplus(x)
    assert y.device == "sim:0"
    assert tc.placement_stats()["fallbacks"] == {"test_softplus@sim:0": 1}
    softplus.register_kernel("sim")(lambda a, _index: SimArray(np.logaddexp(0, a.host), _index))
    tc.reset_placement_stats()
    y2 = softplus(x)
    assert tc.placement_stats()["fallbacks"] == {} and isinstance(y2._data, SimArray)
    np.testing.assert_allclose(y2.numpy(), np.logaddexp(0, [0.0, 1.0]))


@pytest.mark.usefixtures("sim_backend")
def test_custom_op_with_a_composite_runs_on_the_device_without_fallback() -> None:
    x = tc.asarray([1.0, 2.0], device="sim")
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = tc.sum(scale(x, factor=3.0))
    assert tc.placement_stats()["fallbacks"] == {}
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [3.0, 3.0])


def test_defining_an_op_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="already defined"):
        tc.custom_op("test_softplus")(lambda x: x)
