"""Test helpers: compare an op with its NumPy reference, its gradient with finite differences,
and graph mode (``tc.function``) with eager mode.

Every ``check_op`` and ``check_grad`` call also runs its computation through ``tc.function``
on the same device (see :func:`check_graph_matches_eager`), so each op test covers graph mode
with no change to the test.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

import tensorcore as tc
from tensorcore import placement
from tensorcore.ops import sampling


class GraphComparisonSkipped(UserWarning):
    """A check's computation could not be traced (it reads a tensor's value: ``TraceError``),
    so its graph-mode comparison was skipped. Shown in pytest's warnings summary, by test."""


# Graph mode against eager mode, for floating-point results off cpu: the relative tolerance per
# dtype (a few units in the last place). A fused kernel evaluates a chain in one expression
# (in registers, maybe contracted into FMAs), so it may round differently from the chain of
# eager kernels. Integer and bool results are always compared exactly.
GRAPH_RTOL: dict[np.dtype, float] = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 1e-6,
                                     np.dtype(np.float64): 1e-12}


def to_numpy(x: Any) -> Any:
    """Tensors (and tuples of them) as NumPy arrays."""
    if isinstance(x, (tuple, list)):
        return [to_numpy(v) for v in x]  # namedtuple results become plain lists
    return np.asarray(x.numpy()) if isinstance(x, tc.Tensor) else x


def assert_matches(actual: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-6, dtype: bool = True) -> None:
    """``actual`` (tensors) equals ``expected`` (NumPy) in values, shape and (optionally) dtype."""
    actual = to_numpy(actual)
    if isinstance(expected, (tuple, list)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_matches(a, e, rtol, atol, dtype)
        return
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    if dtype:
        assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != expected {expected.dtype}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


def assert_same_as_eager(graph: Any, eager: Any, where: str = "result") -> None:
    """Graph mode's result ``graph`` equals eager mode's ``eager``: the same structure, and per
    tensor the same device, shape, dtype and values.

    Values: on ``cpu`` identical (NaN where NaN, zeros of the same sign), since a fused cpu
    kernel runs the same NumPy ufuncs as eager mode, one after another. On other devices
    integers and bools are identical, and floats agree within ``GRAPH_RTOL`` of their dtype
    (a fused kernel may round differently), relative to each element and, for elements that
    cancel to near zero, to the largest magnitude in the tensor.
    """
    if isinstance(eager, tc.Tensor):
        assert isinstance(graph, tc.Tensor), f"{where}: graph mode gave {type(graph).__name__}, eager a tensor"
        assert str(graph.device) == str(eager.device), f"{where}: graph result on {graph.device}, eager on {eager.device}"
        g, e = graph.numpy(), eager.numpy()
        assert g.shape == e.shape, f"{where}: graph shape {g.shape} != eager {e.shape}"
        assert g.dtype == e.dtype, f"{where}: graph dtype {g.dtype} != eager {e.dtype}"
        if e.dtype.kind != "f" or eager.device.type == "cpu":
            np.testing.assert_array_equal(g, e, err_msg=f"{where}: graph mode differs from eager mode", strict=True)
            if e.dtype.kind == "f":  # identical: zeros of the same sign too (1 / x tells them apart)
                numbers = ~np.isnan(e)
                np.testing.assert_array_equal(np.signbit(g[numbers]), np.signbit(e[numbers]),
                                              err_msg=f"{where}: graph mode gives zeros of another sign")
        else:
            rtol = GRAPH_RTOL[e.dtype]
            finite = np.abs(e[np.isfinite(e)])
            atol = rtol * float(finite.max()) if finite.size else 0.0
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, equal_nan=True,
                                       err_msg=f"{where}: graph mode differs from eager mode")
    elif isinstance(eager, (tuple, list)):
        assert isinstance(graph, (tuple, list)) and len(graph) == len(eager), (
            f"{where}: graph mode gave {type(graph).__name__} of {len(graph) if isinstance(graph, (tuple, list)) else '-'}"
            f", eager {type(eager).__name__} of {len(eager)}")
        for k, (g, e) in enumerate(zip(graph, eager)):
            assert_same_as_eager(g, e, f"{where}[{k}]")
    elif isinstance(eager, dict):
        assert isinstance(graph, dict) and graph.keys() == eager.keys(), f"{where}: graph keys differ from eager's"
        for k in eager:
            assert_same_as_eager(graph[k], eager[k], f"{where}[{k!r}]")
    else:
        assert graph == eager, f"{where}: graph mode gave {graph!r}, eager {eager!r}"


@contextmanager
def _unobserved() -> Iterator[None]:
    """Hide the graph comparison's side effects from the test around it: placement statistics,
    the placement warnings given once, and the random generator's position."""
    ops, fallbacks, copied = dict(placement.ops_per_device), placement.fallbacks.copy(), placement.bytes_copied[0]
    warned = set(placement._warned)
    rng = sampling.state()
    try:
        yield
    finally:
        placement.ops_per_device.clear()
        placement.ops_per_device.update(ops)
        placement.fallbacks.clear()
        placement.fallbacks.update(fallbacks)
        placement.bytes_copied[0] = copied
        placement._warned.clear()
        placement._warned.update(warned)
        sampling.restore(rng)


def _new_values(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Inputs of the same signature with other values: floats with their elements in reverse
    order (``np.flip`` over all axes), so each element still holds a value the test chose (in
    the op's domain, away from kinks) and counts of ties, zeros and signs stay; a square matrix
    ``A`` becomes ``J A J``, still symmetric positive definite if ``A`` was. Integers and bools
    stay as they are: they are often indices, counts or masks."""
    return [np.flip(a).copy() if a.dtype.kind == "f" else a.copy() for a in arrays]


def check_graph_matches_eager(fn: Callable, arrays: Sequence[np.ndarray], device: str,
                              inputs: Sequence[tc.Tensor], eager: Any) -> None:
    """Run ``fn`` through ``tc.function`` and compare with eager mode (:func:`assert_same_as_eager`).

    ``eager`` is ``fn(*inputs)`` in eager mode. The traced function is called on ``inputs``
    (the first call traces, then runs the optimized graph), then on new tensors of the same
    signature with other values (:func:`_new_values`), which must replay the graph without
    tracing again; each result must equal eager mode's on the same inputs, and the graph must
    leave its inputs unchanged. A computation that reads a tensor's value cannot be traced:
    on ``tc.TraceError`` the comparison is skipped with a :class:`GraphComparisonSkipped` warning.
    """
    arrays = [np.asarray(a) for a in arrays]
    before = [x.numpy().copy() for x in inputs]
    with _unobserved():
        traced = tc.function(fn)
        try:
            first = traced(*inputs)
        except tc.TraceError as exc:
            warnings.warn(GraphComparisonSkipped(f"graph comparison skipped: {exc}"), stacklevel=3)
            return
        assert_same_as_eager(first, eager, "graph (first call)")
        for k, (x, b) in enumerate(zip(inputs, before)):
            np.testing.assert_array_equal(x.numpy(), b, err_msg=f"graph mode changed input {k}", strict=True)
        new_inputs = [tc.asarray(a, device=device) for a in _new_values(arrays)]
        expected = fn(*new_inputs)
        second = traced(*new_inputs)
        assert traced.trace_count == 1, "the second call, with the same signature, traced again"
        assert_same_as_eager(second, expected, "graph (replay, new inputs)")


def check_op(fn: Callable, reference: Callable, arrays: Sequence[np.ndarray], device: str, rtol: float = 1e-5, atol: float = 1e-6, **kwargs: Any) -> None:
    """Run ``fn`` on ``arrays`` placed on ``device``; compare with ``reference`` on NumPy, and
    graph mode with eager mode (:func:`check_graph_matches_eager`)."""
    inputs = [tc.asarray(a, device=device) for a in arrays]
    out = fn(*inputs, **kwargs)
    for o in out if isinstance(out, (tuple, list)) else (out,):
        if isinstance(o, tc.Tensor):
            assert str(o.device) == str(tc.Device(device)), f"result on {o.device}, expected {device}"
    assert_matches(out, reference(*arrays, **kwargs), rtol, atol)
    check_graph_matches_eager(lambda *xs: fn(*xs, **kwargs), arrays, device, inputs, out)


def check_grad(fn: Callable, arrays: Sequence[np.ndarray], device: str, eps: float = 1e-6, rtol: float = 1e-4, atol: float = 1e-6, wrt: Sequence[int] | None = None, seed: int = 0) -> None:
    """Compare ``GradientTape`` gradients of ``fn`` with central finite differences in float64.

    The outputs are reduced to a scalar with fixed random weights, so every output element
    is checked. ``wrt`` selects the inputs to differentiate (all floating inputs by default).
    Then the forward value and the gradients, computed with a tape inside ``tc.function``,
    must equal eager mode's (:func:`check_graph_matches_eager`).
    """
    arrays = [np.asarray(a) for a in arrays]
    wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"] if wrt is None else list(wrt)
    for i in wrt:
        assert arrays[i].dtype == np.float64, "gradient checks run in float64"
    rng = np.random.default_rng(seed)
    weights: list[np.ndarray] = []

    def scalar(outs: Any) -> Any:
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        total = None
        for k, o in enumerate(outs):
            if o.dtype.kind != "f":
                continue
            while len(weights) <= k:
                weights.append(rng.standard_normal(outs[len(weights)].shape))
            term = tc.sum(o * tc.asarray(weights[k], device=o.device))
            total = term if total is None else total + term
        return total

    def forward_and_gradient(*xs: tc.Tensor) -> tuple[Any, list[tc.Tensor]]:
        with tc.GradientTape() as tape:
            for i in wrt:
                tape.watch(xs[i])
            outs = fn(*xs)
            target = scalar(outs)
        return outs, tape.gradient(target, [xs[i] for i in wrt], unconnected_gradients="zero")

    inputs = [tc.asarray(a, device=device) for a in arrays]
    eager = forward_and_gradient(*inputs)
    grads = eager[1]

    def value(perturbed: list[np.ndarray]) -> float:
        return float(to_numpy(scalar(fn(*[tc.asarray(a, device=device) for a in perturbed]))))

    for i, g in zip(wrt, grads):
        assert str(g.device) == str(tc.Device(device)), f"gradient on {g.device}, expected {device}"
        numeric = np.zeros_like(arrays[i])
        for idx in np.ndindex(arrays[i].shape):
            plus = [a.copy() for a in arrays]
            minus = [a.copy() for a in arrays]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            numeric[idx] = (value(plus) - value(minus)) / (2 * eps)
        np.testing.assert_allclose(to_numpy(g), numeric, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")
    check_graph_matches_eager(forward_and_gradient, arrays, device, inputs, eager)


def run_threads(*bodies: Callable[[], None], timeout: float = 30.0) -> None:
    """Run each body in its own thread, wait for all of them, re-raise the first error."""
    errors: list[BaseException] = []

    def catching(body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                errors.append(exc)
        return run

    threads = [threading.Thread(target=catching(b), name=f"test-threads-{i}", daemon=True) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    if errors:
        raise errors[0]
