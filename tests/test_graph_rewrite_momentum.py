"""The hand-written heavy-ball momentum update (``v.assign(m * v + g)`` then the parameter's
step along ``v``) becomes one ``sgd_step`` with momentum (tensorcore/graph/rewrite_sgd.py):
the same values as eager mode on every device, bit for bit on cpu, and no rewrite where the
velocity is read or the gradient changed in between."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import tensorcore as tc
from tensorcore.graph import rewrite_sgd

from support import assert_same_as_eager

rng = np.random.default_rng(31)


@pytest.fixture
def sgd_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SGD rewrite on cpu too (the pipeline leaves cpu alone, where it costs more than it saves)."""
    original = rewrite_sgd.updates_to_sgd_step
    monkeypatch.setattr(rewrite_sgd, "updates_to_sgd_step", lambda graph: original(graph, on_cpu=True))


FORMS = {
    "v = m * v + g; p -= lr * v": lambda p, v, g: (v.assign(0.9 * v + g), p.assign_sub(0.05 * v)),
    "v = g + v * m; p -= v * lr": lambda p, v, g: (v.assign(g + v * 0.9), p.assign_sub(v * 0.05)),
    "v = m * v + g; p = p - lr * v": lambda p, v, g: (v.assign(0.9 * v + g), p.assign(p - 0.05 * v)),
}


def ops_of(fn, *args) -> list[str]:
    return [n.op_name for n in fn.graph(*args).nodes]


def variables(device: str, shape: tuple[int, ...] = (4, 3)) -> list[tc.Variable]:
    start = rng.standard_normal(shape).astype(np.float32)
    return [tc.Variable(start, device=device), tc.Variable(np.zeros(shape, np.float32), device=device)]


@pytest.mark.parametrize("form", FORMS)
def test_a_momentum_update_becomes_one_sgd_step(device: str, form: str, sgd_on_cpu: None) -> None:
    (p_e, v_e), (p_g, v_g) = variables(device), variables(device)
    p_g.assign(p_e)
    update = FORMS[form]
    fn = tc.function(lambda g: update(p_g, v_g, g))
    for _ in range(4):  # the first step starts from a zero velocity, as the kernel does
        g = tc.asarray(rng.standard_normal((4, 3)).astype(np.float32), device=device)
        update(p_e, v_e, g)
        fn(g)
        assert_same_as_eager([p_g, v_g], [p_e, v_e])
    names = ops_of(fn, g)
    assert names == ["sgd_step"], names
    node = fn.graph(g).nodes[0]
    assert node.attrs["momentum"] == 0.9 and not node.attrs["nesterov"]
    assert fn.stats(g)["updates -> sgd_step"] == 1
    assert "replaces multiply_" in fn.placement_report(g) and "assign_" in fn.placement_report(g)


def test_momentum_on_cpu_is_bit_for_bit_the_hand_written_update(sgd_on_cpu: None) -> None:
    (p_e, v_e), (p_g, v_g) = variables("cpu", (64,)), variables("cpu", (64,))
    p_g.assign(p_e)
    update = FORMS["v = m * v + g; p -= lr * v"]
    fn = tc.function(lambda g: update(p_g, v_g, g))
    for _ in range(3):
        g = tc.asarray(rng.standard_normal(64).astype(np.float32))
        update(p_e, v_e, g)
        fn(g)
    np.testing.assert_array_equal(p_g.numpy(), p_e.numpy())
    np.testing.assert_array_equal(v_g.numpy(), v_e.numpy())
    assert ops_of(fn, g) == ["sgd_step"]


def test_no_momentum_step_where_it_would_be_wrong(device: str, sgd_on_cpu: None) -> None:
    def velocity_read_between(p, v, w, g):
        v.assign(0.9 * v + g)
        w.assign(v)  # reads the new velocity before the step
        p.assign_sub(0.05 * v)

    def velocity_returned_between(p, v, w, g):
        v.assign(0.9 * v + g)
        seen = v * 2.0  # a plain read of the new velocity, before the step
        p.assign_sub(0.05 * v)
        return seen

    def gradient_changed_between(p, v, w, g):
        v.assign(0.9 * v + w)
        w.assign_add(g)  # the step would read the new gradient
        p.assign_sub(0.05 * v)

    def velocity_is_a_tensor_momentum(p, v, w, g):
        v.assign(w * v + g)  # m is a tensor, not a number: left alone
        p.assign_sub(0.05 * v)

    cases = {"velocity read between": velocity_read_between, "velocity returned between": velocity_returned_between,
             "gradient changed between": gradient_changed_between,
             "tensor momentum": velocity_is_a_tensor_momentum}
    for name, body in cases.items():
        (p_e, v_e), (p_g, v_g) = variables(device), variables(device)
        p_g.assign(p_e)
        w_e, w_g = tc.Variable(np.ones((4, 3), np.float32), device=device), tc.Variable(np.ones((4, 3), np.float32), device=device)
        g = tc.asarray(rng.standard_normal((4, 3)).astype(np.float32), device=device)
        fn = tc.function(functools.partial(body, p_g, v_g, w_g))
        for _ in range(2):
            expected, got = body(p_e, v_e, w_e, g), fn(g)
            assert_same_as_eager([p_g, v_g, w_g, got], [p_e, v_e, w_e, expected], name)
        assert not any(n.op_name == "sgd_step" and n.attrs["momentum"] for n in fn.graph(g).nodes), name
