"""Graph optimization passes, each alone on a traced graph, and the results they keep equal."""

from __future__ import annotations

import numpy as np

import tensorcore as tc
from tensorcore.graph import passes
from tensorcore.graph.ir import INPLACE

rng = np.random.default_rng(7)


def traced(fn, *args):
    """(the traced graph of ``fn`` on ``args``, a fresh copy to rewrite, the Function)."""
    f = tc.function(fn)
    graph = f.traced_graph(*args)
    return graph, graph.copy(), f


def op_names(graph) -> list[str]:
    return [n.op_name for n in graph.nodes]


def test_dead_code_elimination_drops_unread_nodes_but_keeps_updates(device: str) -> None:
    v = tc.Variable(np.zeros(3), device=device)

    unused = tc.ones(3, device=device)

    def f(x):
        tc.exp(x) + unused  # computed, never used
        v.assign_add(x)  # a side effect: stays
        return x * 2.0

    x = tc.asarray(np.arange(3.0), device=device)
    _, graph, fn = traced(f, x)
    assert len(graph.constants) == 1
    assert passes.eliminate_dead_code(graph) == 2
    assert op_names(graph) == ["assign_add", "multiply"]
    assert graph.constants == {}  # nothing reads the captured tensor any more
    np.testing.assert_array_equal(fn(x).numpy(), [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(v.numpy(), [0.0, 1.0, 2.0])  # the update ran once


def test_common_subexpressions_merge_but_not_across_an_update(device: str) -> None:
    v = tc.Variable(np.ones(2), device=device)

    def f(x):
        a = tc.exp(x) + v
        b = tc.exp(x) + v  # the same as a: merged
        v.assign_add(x)
        c = tc.exp(x) + v  # reads v after the update: not the same value
        return a * b + c

    x = tc.asarray(np.array([0.5, 1.0]), device=device)
    _, graph, fn = traced(f, x)
    # b's exp is merged into a's; b's add is not: b is read after the update, and the pass
    # does not know whether an op's result shares storage with v, so it keeps them apart
    assert passes.eliminate_common_subexpressions(graph) == 1
    assert op_names(graph).count("exp") == 2
    v.assign(tc.ones(2, dtype=tc.float64, device=device))
    xv, e = np.array([0.5, 1.0]), np.exp(np.array([0.5, 1.0]))
    np.testing.assert_allclose(fn(x).numpy(), (e + 1) ** 2 + e + 1 + xv, rtol=1e-12)


def test_constant_folding_computes_constant_subgraphs_once(device: str) -> None:
    def f(x):
        scale = tc.ones(3, device=x.device) * 2.0 + 1.0  # no input involved: folded to [3, 3, 3]
        return x * scale

    x = tc.asarray(np.arange(3.0), device=device)
    _, graph, fn = traced(f, x)
    assert passes.fold_constants(graph) == 2
    assert op_names(graph) == ["multiply"]
    np.testing.assert_array_equal(fn(x).numpy(), [0.0, 3.0, 6.0])


def test_constant_folding_leaves_random_draws_and_updated_state_alone(device: str) -> None:
    state = tc.zeros(3, device=device)  # a plain tensor the function updates in place

    def f(x):
        noise = tc.random.normal((3,), device=x.device) * 0.0 + 1.0  # stateful: never folded
        state[...] = state + 1.0  # an update of a captured tensor
        return x * noise + state

    x = tc.asarray(np.zeros(3), device=device)
    _, graph, fn = traced(f, x)
    assert passes.fold_constants(graph) == 0
    np.testing.assert_array_equal(fn(x).numpy(), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(fn(x).numpy(), [2.0, 2.0, 2.0])  # the update runs on every call


def test_algebraic_simplification_removes_identities(device: str) -> None:
    def f(x):
        y = tc.matrix_transpose(tc.matrix_transpose(x))  # the identity
        return tc.exp(tc.negative(-(y * 1.0 - 0.0)) / 1.0) ** 1.0

    x = tc.asarray(rng.standard_normal((2, 3)), device=device)
    _, graph, fn = traced(f, x)
    assert passes.simplify(graph) > 0
    passes.simplify(graph)
    passes.eliminate_dead_code(graph)
    assert op_names(graph) == ["exp"]
    np.testing.assert_allclose(fn(x).numpy(), np.exp(x.numpy()), rtol=1e-12)


def test_simplification_does_not_alias_a_value_an_update_changes_later(device: str) -> None:
    v = tc.Variable(np.array([1.0, 2.0]), device=device)

    def f(x):
        before = v * 1.0  # must keep v's value from before the update
        v.assign_add(x)
        return before + 0.0

    x = tc.ones(2, dtype=tc.float64, device=device)
    _, graph, fn = traced(f, x)
    passes.simplify(graph)
    assert "multiply" in op_names(graph)
    np.testing.assert_array_equal(fn(x).numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(v.numpy(), [2.0, 3.0])


def test_the_optimized_graph_keeps_update_order(device: str) -> None:
    v = tc.Variable(np.zeros(2), device=device)

    def f(x):
        v.assign(x)
        v.assign_add(x * 2.0)
        return v * 1.0

    x = tc.asarray(np.array([1.0, 2.0]), device=device)
    graph = tc.function(f).graph(x)
    kinds = [n.kind for n in graph.nodes]
    assert kinds.count(INPLACE) == 2
    np.testing.assert_array_equal(tc.function(f)(x).numpy(), [3.0, 6.0])


def test_optimize_reports_what_each_pass_changed() -> None:
    def f(x):
        tc.sin(x)
        return tc.exp(x) + tc.exp(x) * 1.0

    x = tc.asarray(np.arange(3.0))
    _, graph, _ = traced(f, x)
    stats = passes.optimize(graph)
    assert stats["dead code"] >= 1 and stats["simplified"] >= 1 and stats["common subexpressions"] == 1
    assert op_names(graph) == ["exp", "add"]


def test_passes_keep_results_equal_on_a_training_step_with_momentum(device: str) -> None:
    def make():
        tc.random.seed(3)
        model = tc.nn.Sequential(tc.nn.Linear(5, 8, device=device), tc.nn.ReLU(), tc.nn.Linear(8, 2, device=device))
        return model, tc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    x = tc.asarray(rng.standard_normal((6, 5)).astype(np.float32), device=device)
    y = tc.asarray(rng.integers(0, 2, 6), device=device)

    def step_of(model, opt):
        def step(x, y):
            with tc.GradientTape() as tape:
                loss = tc.nn.functional.cross_entropy(model(x), y)
            opt.step(tape.gradient(loss, model.parameters()))
            return loss
        return step

    (m1, o1), (m2, o2) = make(), make()
    eager, graph_step = step_of(m1, o1), tc.function(step_of(m2, o2))
    for _ in range(5):
        np.testing.assert_allclose(graph_step(x, y).numpy(), eager(x, y).numpy(), rtol=1e-5)
    for a, b in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)


def test_two_equal_results_stay_two_tensors(device: str) -> None:
    traced_fn = tc.function(lambda x: (tc.exp(x), tc.exp(x), tc.exp(x) * 1.0))
    x = tc.asarray(np.arange(3.0), device=device)
    a, b, c = traced_fn(x)
    assert a is not b and a is not c
    a[0] = 7.0  # writing into one result leaves the others alone, as in eager mode
    np.testing.assert_allclose(b.numpy(), np.exp(np.arange(3.0)), rtol=1e-15)
    np.testing.assert_allclose(c.numpy(), np.exp(np.arange(3.0)), rtol=1e-15)
