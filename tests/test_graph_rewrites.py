"""The pattern rewrites (tensorcore/graph/rewrite_linear.py, rewrite_sgd.py): each fires where
it computes the same as the traced nodes (compared with eager mode on every device: bitwise on
cpu, within float32 rounding elsewhere, gradients and updates included), and not where that
would be wrong."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import tensorcore as tc
from tensorcore.graph import rewrite_sgd
from tensorcore.nn import functional as F

from support import assert_same_as_eager

rng = np.random.default_rng(13)


def data(*shape: int, device: str) -> tc.Tensor:
    return tc.asarray(rng.standard_normal(shape).astype(np.float32), device=device)


def ops_of(fn, *args) -> list[str]:
    return [n.op_name for n in fn.graph(*args).nodes]


@pytest.fixture
def sgd_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SGD rewrite on cpu too (the pipeline leaves cpu alone, where it costs more than it saves)."""
    original = rewrite_sgd.updates_to_sgd_step
    monkeypatch.setattr(rewrite_sgd, "updates_to_sgd_step", lambda graph: original(graph, on_cpu=True))


# --- matmul + bias -> linear ---------------------------------------------------------------

FORMS = {
    "x @ w + b": lambda x, w, b: x @ w + b,
    "b + x @ w": lambda x, w, b: b + x @ w,
    "x @ w.T.T + b": lambda x, w, b: x @ tc.matrix_transpose(tc.matrix_transpose(w)) + b,
    "relu(x @ w + b)": lambda x, w, b: F.relu(x @ w + b),
}


@pytest.mark.parametrize("form", FORMS)
def test_matmul_and_bias_become_one_linear(device: str, form: str) -> None:
    x, w, b = data(6, 5, device=device), data(5, 3, device=device), data(3, device=device)
    fn = tc.function(FORMS[form])
    assert_same_as_eager(fn(x, w, b), FORMS[form](x, w, b))
    names = ops_of(fn, x, w, b)
    assert "linear" in names and "matmul" not in names and "add" not in names
    assert "replaces matmul_" in fn.placement_report(x, w, b)
    assert "= linear(" in fn.code(x, w, b)
    assert fn.stats(x, w, b)["matmul+bias -> linear"] == 1


@pytest.mark.parametrize("shape", [(5,), (2, 6, 5)])
def test_vectors_and_batches_of_rows_become_linear(device: str, shape: tuple[int, ...]) -> None:
    x, w, b = data(*shape, device=device), data(5, 3, device=device), data(3, device=device)
    fn = tc.function(lambda x, w, b: x @ w + b)
    assert_same_as_eager(fn(x, w, b), x @ w + b)
    assert "linear" in ops_of(fn, x, w, b)


def test_a_transposed_weight_is_read_untransposed(device: str) -> None:
    """``x @ w.T + b`` (PyTorch's layout): linear reads w itself, no transpose is left."""
    x, w, b = data(6, 5, device=device), data(3, 5, device=device), data(3, device=device)
    fn = tc.function(lambda x, w, b: x @ w.T + b)
    assert_same_as_eager(fn(x, w, b), x @ w.T + b)
    assert ops_of(fn, x, w, b) == ["linear"]


def test_gradients_through_a_rewritten_forward_stay_equal(device: str) -> None:
    """The tape recorded matmul and add, so the traced backward is theirs; only the forward
    runs as linear. (A gradient accumulation adds tensors of one shape, so a backward graph
    rarely holds the pattern; where it does, the same checks apply.)"""
    x, w, b = data(6, 5, device=device), data(5, 4, device=device), data(4, device=device)

    def grads(x, w, b):
        with tc.GradientTape() as tape:
            tape.watch(x)
            tape.watch(w)
            tape.watch(b)
            loss = tc.sum(tc.tanh(x @ w + b))
        return tape.gradient(loss, [x, w, b])

    fn = tc.function(grads)
    assert_same_as_eager(fn(x, w, b), grads(x, w, b))
    assert fn.stats(x, w, b)["matmul+bias -> linear"] == 1


def test_linear_is_not_made_where_it_would_be_wrong(device: str) -> None:
    x, w = data(6, 5, device=device), data(5, 3, device=device)
    b, b2 = data(3, device=device), data(6, 3, device=device)
    v = tc.Variable(w.numpy(), device=device)

    def used_twice(x):
        y = x @ w
        return y + b, y * 2.0

    def updated_between(x):
        y = x @ v
        v.assign(v * 2.0)  # linear at the add would read the new v
        return y + b

    cases = {"used twice": used_twice, "2-D bias": lambda x: x @ w + b2, "update between": updated_between}
    for name, f in cases.items():
        fn = tc.function(f)
        if name == "update between":
            got, v_graph = fn(x), v.numpy().copy()
            v.assign(tc.asarray(w.numpy(), device=device))
            assert_same_as_eager(got, f(x), name)
            np.testing.assert_array_equal(v.numpy(), v_graph)
        else:
            assert_same_as_eager(fn(x), f(x), name)
        assert "linear" not in ops_of(fn, x), name
        assert fn.stats(x)["matmul+bias -> linear"] == 0, name


# --- the hand-written SGD update -> sgd_step --------------------------------------------------

def _update_forms(lr_tensor: tc.Tensor) -> dict:
    return {
        "assign_sub(lr * g)": lambda p, g: p.assign_sub(0.1 * g),
        "assign_sub(g * lr)": lambda p, g: p.assign_sub(g * 0.1),
        "assign(p - lr * g)": lambda p, g: p.assign(p - 0.1 * g),
        "0-d tensor lr": lambda p, g: p.assign_sub(lr_tensor * g),
    }


@pytest.mark.parametrize("form", list(_update_forms(None)))
def test_hand_written_updates_become_sgd_step(device: str, form: str, sgd_on_cpu: None) -> None:
    update = _update_forms(tc.asarray(np.float32(0.05), device=device))[form]
    start = rng.standard_normal((4, 3)).astype(np.float32)
    p_eager, p_graph = tc.Variable(start, device=device), tc.Variable(start, device=device)
    q_eager, q_graph = tc.Variable(start[0], device=device), tc.Variable(start[0], device=device)
    g = data(4, 3, device=device)

    def step(p, q):
        def run(g):
            update(p, g)
            update(q, g[1])  # a second parameter: the float32 lr tensor is widened once for both
        return run

    eager, fn = step(p_eager, q_eager), tc.function(step(p_graph, q_graph))
    for _ in range(3):
        eager(g)
        fn(g)
        assert_same_as_eager([p_graph, q_graph], [p_eager, q_eager])
    names = ops_of(fn, g)
    assert names.count("sgd_step") == 2 and not {"multiply", "assign_sub", "assign", "subtract"} & set(names)
    widened = form == "0-d tensor lr" and rewrite_sgd.state_dtype(tc.Device(device)) != np.float32
    assert names.count("astype") == int(widened)  # the float32 lr, read in float64: one astype for both
    assert "replaces multiply_" in fn.placement_report(g)
    assert fn.stats(g)["updates -> sgd_step"] == 2


def test_sgd_step_is_not_made_where_it_would_be_wrong(device: str, sgd_on_cpu: None) -> None:
    start = rng.standard_normal(3).astype(np.float32)
    g = data(3, device=device)

    def product_used_twice(p, gv, g):
        u = 0.1 * g
        p.assign_sub(u)
        return u

    def update_between(p, gv, g):
        u = 0.1 * gv
        gv.assign_add(g)  # sgd_step at the assign_sub would read the new gradient
        p.assign_sub(u)

    cases = {
        "product used twice": product_used_twice, "update between": update_between,
        "another tensor's difference": lambda p, gv, g: p.assign(gv - 0.1 * g),  # not a step of p
    }
    for name, body in cases.items():
        p_e, p_g = tc.Variable(start, device=device), tc.Variable(start, device=device)
        gv_e, gv_g = tc.Variable(g.numpy(), device=device), tc.Variable(g.numpy(), device=device)
        fn = tc.function(functools.partial(body, p_g, gv_g))
        out, expected = fn(g), body(p_e, gv_e, g)
        if expected is not None:
            assert_same_as_eager(out, expected, name)
        assert_same_as_eager([p_g, gv_g], [p_e, gv_e], name)
        assert "sgd_step" not in ops_of(fn, g), name
        assert fn.stats(g)["updates -> sgd_step"] == 0, name


def test_sgd_rewrite_leaves_cpu_alone_by_default(device: str) -> None:
    p = tc.Variable(np.ones(3, np.float32), device=device)
    g = data(3, device=device)
    fn = tc.function(lambda g: p.assign_sub(0.1 * g))
    fired = fn.stats(g)["updates -> sgd_step"]
    assert fired == (0 if tc.Device(device).type == "cpu" else 1)


# --- both, on a training step -------------------------------------------------------------------

def test_idiomatic_mlp_training_matches_eager(device: str, sgd_on_cpu: None) -> None:
    """``x @ w + b``, ``F.relu``, ``F.cross_entropy``, a tape and ``p.assign_sub(lr * g)``: traced,
    three linears and six sgd_steps; five steps leave the same parameters as eager mode."""
    sizes = (5, 8, 8, 3)
    start = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        start += [rng.uniform(-0.5, 0.5, (n_in, n_out)).astype(np.float32), rng.uniform(-0.1, 0.1, n_out).astype(np.float32)]

    def make():
        params = [tc.Variable(p, device=device) for p in start]

        def step(x, y):
            w1, b1, w2, b2, w3, b3 = params
            with tc.GradientTape() as tape:
                h = F.relu(x @ w1 + b1)
                h = F.relu(h @ w2 + b2)
                loss = F.cross_entropy(h @ w3 + b3, y)
            for p, g in zip(params, tape.gradient(loss, params)):
                p.assign_sub(0.1 * g)
            return loss

        return params, step

    (p_eager, eager), (p_graph, step) = make(), make()
    traced = tc.function(step)
    for _ in range(5):
        x, y = data(7, 5, device=device), tc.asarray(rng.integers(0, 3, 7), device=device)
        assert_same_as_eager(traced(x, y), eager(x, y), "loss")
    assert_same_as_eager(p_graph, p_eager, "parameters")
    stats = traced.stats(x, y)
    assert stats["matmul+bias -> linear"] == 3 and stats["updates -> sgd_step"] == 6
