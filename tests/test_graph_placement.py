"""The graph placer (devices, copy nodes, reasons, strict errors), the executor's schedule,
and what tracing warns about or draws."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorcore as tc

needs_opencl = pytest.mark.skipif("opencl:0" not in [str(i.device) for i in tc.devices()], reason="no opencl:0 device")


@needs_opencl
def test_a_graph_spanning_cpu_and_opencl_gets_copy_nodes_and_a_report(capsys) -> None:
    @tc.function
    def f(x):
        with tc.device("cpu"):  # an explicit request inside the traced code wins
            y = tc.exp(x)
        return y + x  # back on opencl: where the inputs are, an accelerator over cpu

    x = tc.asarray(np.arange(4.0), device="opencl:0")
    np.testing.assert_allclose(f(x).numpy(), np.exp(np.arange(4.0)) + np.arange(4.0), rtol=1e-12)
    graph = f.graph(x)
    assert [(n.op_name, str(n.device)) for n in graph.nodes] == [
        ("transfer", "cpu:0"), ("exp", "cpu:0"), ("transfer", "opencl:0"), ("add", "opencl:0")]
    copies = [n for n in graph.nodes if n.kind == "transfer"]
    assert copies[0].args == (graph.inputs[0],)  # x copied to the host for exp
    assert copies[1].args == graph.nodes[1].outs  # exp's result copied back for add
    report = f.placement_report(x)
    assert capsys.readouterr().out == ""  # returned for the caller to print, not printed (shown once in a REPL)
    assert "requested with tc.device('cpu:0') at" in report and "test_graph_placement.py" in report
    assert "copy inserted by the placer: %0 is on opencl:0, exp_1 reads it on cpu:0" in report
    assert "add_2" in report and "where its inputs are" in report
    assert "partitions: cpu:0: 2 nodes, opencl:0: 2 nodes" in report


@needs_opencl
def test_an_op_without_an_opencl_kernel_moves_to_cpu_under_soft_placement() -> None:
    @tc.function
    def f(x):
        return tc.sort(x * 2.0) + 1.0  # sort has no OpenCL kernel

    x = tc.asarray(np.array([3.0, 1.0, 2.0]), device="opencl:0")
    tc.reset_placement_stats()
    np.testing.assert_array_equal(f(x).numpy(), [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(f(x).numpy(), [3.0, 5.0, 7.0])
    sort = next(n for n in f.graph(x).nodes if n.op_name == "sort")
    assert str(sort.device) == "cpu:0" and "soft placement: no kernel on opencl:0" in sort.reason
    assert tc.placement_stats()["fallbacks"] == {"sort@opencl:0": 2}  # counted on each run, as eager


@needs_opencl
def test_strict_placement_fails_before_anything_runs_naming_node_device_and_kernels() -> None:
    v = tc.Variable(np.zeros(3), device="opencl:0")

    @tc.function
    def f(x):
        v.assign_add(x)  # would run first, if anything ran
        return tc.sort(x)

    x = tc.asarray(np.array([3.0, 1.0, 2.0]), device="opencl:0")
    with tc.placement_policy("strict"), pytest.raises(tc.PlacementError) as info:
        f(x)
    message = str(info.value)
    assert "node 'sort_2' (op sort)" in message and "test_graph_placement.py" in message
    assert "asked to run on opencl:0" in message and "devices with its kernel: cpu:0" in message
    np.testing.assert_array_equal(v.numpy(), [0.0, 0.0, 0.0])  # nothing ran


@needs_opencl
def test_updates_are_colocated_with_the_variable_they_update() -> None:
    v = tc.Variable(np.zeros(2), device="opencl:0")

    @tc.function
    def f(x):
        v.assign_add(x * 2.0)  # x lives on cpu: its product is copied to v's device
        return x

    f(tc.asarray(np.array([1.0, 2.0])))
    np.testing.assert_array_equal(v.numpy(), [2.0, 4.0])
    update = next(n for n in f.graph(tc.asarray(np.zeros(2))).nodes if n.kind == "inplace")
    assert str(update.device) == "opencl:0" and update.reason.startswith("colocated with %")


@needs_opencl
def test_accelerator_work_is_issued_before_independent_host_work() -> None:
    @tc.function
    def f(a, b):
        p = tc.sum(tc.exp(b))  # cpu: traced first
        q = tc.sum(tc.exp(a) * 2.0)  # opencl: independent of p
        return p, q

    a = tc.asarray(np.ones(8), device="opencl:0")
    b = tc.asarray(np.ones(8))
    p, q = f(a, b)
    np.testing.assert_allclose([p.numpy(), q.numpy()], [8 * np.e, 16 * np.e], rtol=1e-12)
    devices = [n.device.type for n in f.graph(a, b).nodes]
    assert devices == sorted(devices, key=lambda t: t == "cpu"), devices  # opencl nodes first


def test_changing_a_captured_list_while_tracing_warns_naming_the_line() -> None:
    seen = []

    @tc.function
    def f(x):
        y = x * 2.0
        seen.append(y)  # happens once, at trace time
        return y

    with pytest.warns(UserWarning, match=r"changed list 'seen', captured from outside.*test_graph_placement.py:\d+: seen.append\(y\)"):
        f(tc.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f(tc.ones(2))  # replayed: no trace, no warning
    assert len(seen) == 1


def test_random_draws_in_a_traced_function_are_fresh_each_run_and_match_eager(device: str) -> None:
    def noisy(x):
        return tc.nn.functional.dropout(x, 0.5) + tc.random.normal(x.shape, device=x.device)

    traced = tc.function(noisy)
    x = tc.ones((64,), device=device)
    tc.random.seed(11)
    graph_runs = [traced(x).numpy() for _ in range(3)]
    tc.random.seed(11)
    eager_runs = [noisy(x).numpy() for _ in range(3)]
    for g, e in zip(graph_runs, eager_runs):
        np.testing.assert_allclose(g, e, rtol=1e-6)
    assert not np.array_equal(graph_runs[0], graph_runs[1])  # not a constant frozen at trace time


def test_a_function_called_while_another_traces_joins_its_graph(device: str) -> None:
    inner = tc.function(lambda x: tc.exp(x) * 2.0)

    @tc.function
    def outer(x):
        return inner(x) + 1.0

    x = tc.asarray(np.arange(3.0), device=device)
    np.testing.assert_allclose(outer(x).numpy(), np.exp(np.arange(3.0)) * 2 + 1, rtol=1e-12)
    assert [n.op_name for n in outer.traced_graph(x).nodes] == ["exp", "multiply", "add"]
