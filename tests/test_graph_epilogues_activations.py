"""GEMM epilogues beyond relu: ``linear``'s and ``conv2d``'s ``activation`` attribute set to
``gelu``, ``gelu_tanh``, ``sigmoid`` or ``tanh`` (applied as the kernel stores its result) on
every device: against NumPy, against the separate activation kernel (bit for bit on cpu), its
gradient against finite differences, and the graph rewrite that folds the activation op of a
``linear`` or ``conv2d`` into it, where that is sound (tensorcore/graph/rewrite_linear.py).
relu's own cases are in tests/test_graph_epilogues.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tensorcore as tc
from tensorcore.dispatch import apply
from tensorcore.nn import functional as F
from tensorcore.ops._nn import EPILOGUES
from tensorcore.ops.registry import OPS

from support import GRAPH_RTOL, assert_same_as_eager, check_grad, check_op

rng = np.random.default_rng(31)
_erf = np.vectorize(math.erf, otypes=[np.float64])


def same_dtype(formula):
    """``formula`` with its result in its argument's dtype (math.erf computes in float64)."""
    return lambda v: np.asarray(formula(v)).astype(v.dtype)


# each new epilogue: the separate op it stands for, and a NumPy formula of it
ACTIVATIONS = {
    "gelu": (F.gelu, lambda v: 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0)))),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"),
                  lambda v: 0.5 * v * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v**3)))),
    "sigmoid": (F.sigmoid, lambda v: 1.0 / (1.0 + np.exp(-v))),
    "tanh": (tc.tanh, np.tanh),
}
CONV = {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "groups": 1}


def fused_linear(activation: str):
    return lambda *args: apply(OPS["linear"], args, {"activation": activation})


def fused_conv(activation: str, **attrs):
    return lambda *args: apply(OPS["conv2d"], args, {**CONV, **attrs, "activation": activation})


def data(*shape: int, device: str, scale: float = 1.0) -> tc.Tensor:
    return tc.asarray((scale * rng.standard_normal(shape)).astype(np.float32), device=device)


def assert_same_as_separate(fused: np.ndarray, separate: np.ndarray, device: str) -> None:
    """Bit for bit on cpu (the epilogue is the op's reference); elsewhere the same formula as
    the op's own kernel, within rounding (a vector exp may round the last bit differently)."""
    if device.startswith("cpu"):
        np.testing.assert_array_equal(fused, separate, strict=True)
    else:
        np.testing.assert_allclose(fused, separate, rtol=4 * GRAPH_RTOL[fused.dtype], atol=1e-30, equal_nan=True)


def test_every_activation_has_an_epilogue() -> None:
    assert set(EPILOGUES) == {"relu", *ACTIVATIONS}


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(6, 5, 3), (33, 70, 20), (2, 4, 5, 9)], ids=["small", "tiles", "3-d input"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_with_epilogue_matches_numpy(device: str, activation: str, shape: tuple[int, ...], dtype: type) -> None:
    *lead, n_in, n_out = shape
    x = rng.standard_normal((*lead, n_in)).astype(dtype)
    w, b = rng.standard_normal((n_out, n_in)).astype(dtype), rng.standard_normal(n_out).astype(dtype)
    formula = same_dtype(ACTIVATIONS[activation][1])
    tol = 1e-4 if dtype == np.float32 else 1e-10
    check_op(fused_linear(activation), lambda x, w, b=None: formula(x @ w.T + (0 if b is None else b)),
             [x, w, b], device, rtol=tol, atol=tol)
    check_op(fused_linear(activation), lambda x, w: formula(x @ w.T), [x, w], device, rtol=tol, atol=tol)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_epilogue_is_the_activation_kernel(device: str, activation: str, dtype: type) -> None:
    """Large sums of either sign (saturating), zeros of either sign, NaN and infinities: the
    separate activation kernel's values, on the same device, also through the transposed
    store of the OpenCL GEMM (32 x 64 @ 64 x 256: it computes C.T and stores columns)."""
    for rows, n_in, n_out in ((9, 17, 24), (32, 64, 256)):
        x = (20 * rng.standard_normal((rows, n_in)) / np.sqrt(n_in)).astype(dtype)
        x[0] = np.nan
        x[1, 0], x[2, 0] = np.inf, -np.inf
        w = rng.standard_normal((n_out, n_in)).astype(dtype)
        w[3] = 0.0  # column 3 of the product: zeros, negated below to -0.0
        b = rng.standard_normal(n_out).astype(dtype)
        b[3] = -0.0
        args = [tc.asarray(a, device=device) for a in (x, w, b)]
        fused = fused_linear(activation)(*args).numpy()
        separate = ACTIVATIONS[activation][0](F.linear(*args)).numpy()
        assert_same_as_separate(fused, separate, device)
        assert np.isnan(fused[0]).all()


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_conv2d_with_epilogue_matches_numpy_and_the_separate_kernels(device: str, activation: str) -> None:
    attrs = {"stride": (2, 1), "groups": 2}
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    w, b = rng.standard_normal((6, 2, 3, 3)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    formula = same_dtype(ACTIVATIONS[activation][1])
    check_op(fused_conv(activation, **attrs), lambda *a: formula(OPS["conv2d"].reference(*a, **{**CONV, **attrs})),
             [x, w, b], device, rtol=1e-4, atol=1e-4)
    args = [tc.asarray(a, device=device) for a in (x, w, b)]
    fused = fused_conv(activation, **attrs)(*args).numpy()
    separate = ACTIVATIONS[activation][0](apply(OPS["conv2d"], tuple(args), {**CONV, **attrs})).numpy()
    assert_same_as_separate(fused, separate, device)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_linear_with_epilogue_gradient(device: str, activation: str) -> None:
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    check_grad(fused_linear(activation), [x, w, b], device)
    check_grad(fused_linear(activation), [x[0], w], device)  # a 1-D input, no bias


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_conv2d_with_epilogue_gradient(device: str, activation: str) -> None:
    x, w, b = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    check_grad(fused_conv(activation), [x, w, b], device)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_the_epilogue_gradient_is_the_separate_ops_gradient(device: str, activation: str) -> None:
    """The activation's own gradient runs, on the fused output (gelu: on the pre-activation,
    computed again): bit for bit the separate ops' gradients on cpu; second order too, except
    gelu's, which sums the same terms in another order (the recomputed pre-activation is a
    second path back to the inputs)."""
    x, w, b = data(6, 5, device=device), data(4, 5, device=device), data(4, device=device)
    separate_op = ACTIVATIONS[activation][0]

    def grads(f):
        with tc.GradientTape() as outer:
            outer.watch(x)
            with tc.GradientTape() as tape:
                tape.watch([x, w, b])
                loss = tc.sum(f(x, w, b) ** 2)
            gx, gw, gb = tape.gradient(loss, [x, w, b])
            total = tc.sum(gx * gx)
        return [gx, gw, gb, outer.gradient(total, x)]

    fused = grads(fused_linear(activation))
    separate = grads(lambda *a: separate_op(F.linear(*a)))
    for got, want in zip(fused[:3], separate[:3]):
        assert_same_as_separate(got.numpy(), want.numpy(), device)
    if activation.startswith("gelu"):
        np.testing.assert_allclose(fused[3].numpy(), separate[3].numpy(), rtol=1e-5, atol=1e-5)
    else:
        assert_same_as_separate(fused[3].numpy(), separate[3].numpy(), device)


# --- the rewrite ---------------------------------------------------------------------------

FORMS = {
    "gelu": {"F.gelu(F.linear)": lambda x, w, b: F.gelu(F.linear(x, w, b)),
             "nn.GELU after x @ w.T + b": lambda x, w, b: tc.nn.GELU()(x @ w.T + b)},
    "gelu_tanh": {"F.gelu(tanh form) of F.linear": lambda x, w, b: F.gelu(F.linear(x, w, b), approximate="tanh"),
                  "nn.GELU('tanh') after linear": lambda x, w, b: tc.nn.GELU(approximate="tanh")(F.linear(x, w))},
    "sigmoid": {"F.sigmoid(x @ w.T + b)": lambda x, w, b: F.sigmoid(x @ w.T + b),
                "nn.Sigmoid after linear": lambda x, w, b: tc.nn.Sigmoid()(F.linear(x, w, b))},
    "tanh": {"tc.tanh(F.linear)": lambda x, w, b: tc.tanh(F.linear(x, w, b)),
             "nn.Tanh after x @ w.T + b": lambda x, w, b: tc.nn.Tanh()(x @ w.T + b)},
}
CASES = [(act, form) for act, forms in FORMS.items() for form in forms]


def folded(fn, *args) -> dict[str, int]:
    """The activations ``fn``'s compiled graph folded into epilogues (``fn.stats``: one
    ``"linear+<activation> -> epilogue"`` count per activation), those that were."""
    return {k: v for k, v in fn.stats(*args).items() if k.startswith("linear+") and v}


@pytest.mark.parametrize(("activation", "form"), CASES, ids=[form for _, form in CASES])
def test_an_activation_after_linear_becomes_its_epilogue(device: str, activation: str, form: str) -> None:
    x, w, b = data(6, 5, device=device, scale=3.0), data(3, 5, device=device), data(3, device=device)
    f = FORMS[activation][form]
    fn = tc.function(f)
    assert_same_as_eager(fn(x, w, b), f(x, w, b))
    graph = fn.graph(x, w, b)
    assert [n.op_name for n in graph.nodes] == ["linear"], [n.op_name for n in graph.nodes]
    assert graph.nodes[0].attrs["activation"] == activation
    assert f"{activation} as its epilogue; replaces " in fn.code(x, w, b)
    assert folded(fn, x, w, b) == {f"linear+{activation} -> epilogue": 1}


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_an_activation_after_conv2d_becomes_its_epilogue(device: str, activation: str) -> None:
    x = data(2, 3, 8, 8, device=device)
    conv = tc.nn.Conv2d(3, 4, 3, padding=1, device=device)
    separate_op = ACTIVATIONS[activation][0]
    fn = tc.function(lambda x: separate_op(conv(x)))
    assert_same_as_eager(fn(x), separate_op(conv(x)))
    assert [(n.op_name, n.attrs.get("activation")) for n in fn.graph(x).nodes] == [("conv2d", activation)]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_training_through_an_output_read_epilogue_matches_eager(device: str, activation: str) -> None:
    """sigmoid's and tanh's backward read the activated output, which the fused linear writes:
    in a traced training step the activation is folded and the gradients equal eager mode's."""
    x, w1, b1 = data(7, 5, device=device), data(6, 5, device=device), data(6, device=device)
    w2 = data(2, 6, device=device)
    separate_op = ACTIVATIONS[activation][0]

    def grads(x, w1, b1, w2):
        with tc.GradientTape() as tape:
            tape.watch([w1, b1, w2])
            loss = tc.sum(F.linear(separate_op(F.linear(x, w1, b1)), w2) ** 2)
        return loss, tape.gradient(loss, [w1, b1, w2])

    fn = tc.function(grads)
    assert_same_as_eager(fn(x, w1, b1, w2), grads(x, w1, b1, w2))
    assert [n.attrs.get("activation") for n in fn.graph(x, w1, b1, w2).nodes if n.op_name == "linear"].count(activation) == 1


@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh"])
def test_no_gelu_epilogue_in_a_traced_training_step(device: str, activation: str) -> None:
    """gelu's backward reads the pre-activation: a second reader of the linear's result, so the
    rewrite leaves the two nodes (fusing would compute the product again in the backward)."""
    x, w1, b1 = data(7, 5, device=device), data(6, 5, device=device), data(6, device=device)
    separate_op = ACTIVATIONS[activation][0]

    def grads(x, w1, b1):
        with tc.GradientTape() as tape:
            tape.watch([w1, b1])
            loss = tc.sum(separate_op(F.linear(x, w1, b1)) ** 2)
        return loss, tape.gradient(loss, [w1, b1])

    fn = tc.function(grads)
    assert_same_as_eager(fn(x, w1, b1), grads(x, w1, b1))
    assert not any(n.attrs.get("activation") for n in fn.graph(x, w1, b1).nodes)
    assert folded(fn, x, w1, b1) == {}


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_no_epilogue_where_it_would_be_wrong(device: str, activation: str) -> None:
    x, w, b = data(6, 5, device=device), data(3, 5, device=device), data(3, device=device)
    v = tc.Variable(np.ones((6, 3), np.float32), device=device)
    act = ACTIVATIONS[activation][0]

    def returned_too(x):
        y = F.linear(x, w, b)
        return act(y), y

    def read_twice(x):
        y = F.linear(x, w, b)
        return act(y) + y

    def updated_between(x):
        y = F.linear(x, w, b)
        v.assign(y)  # reads y: an in-place node between the linear and the activation
        return act(y)

    def already_activated(x):  # the linear has its own epilogue: two activations do not merge
        return act(apply(OPS["linear"], (x, w, b), {"activation": "relu"}))

    def on_another_device(x):
        y = F.linear(x, w, b)
        with tc.device("cpu" if not device.startswith("cpu") else "opencl:0"):
            return act(y)

    cases = {"returned too": returned_too, "read twice": read_twice, "update between": updated_between,
             "already activated": already_activated}
    if len(tc.devices()) > 1:
        cases["another device"] = on_another_device
    for name, f in cases.items():
        fn = tc.function(f)
        assert_same_as_eager(fn(x), f(x), name)
        activations = [n.attrs.get("activation") for n in fn.graph(x).nodes if n.op_name == "linear"]
        assert activations in ([None], ["relu"]), (name, activations)
        assert folded(fn, x) == {}, name
