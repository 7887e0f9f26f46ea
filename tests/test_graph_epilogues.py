"""GEMM epilogues: ``linear``'s ``activation`` attribute (relu applied as the kernel stores
its result) on every device against NumPy, its gradient against finite differences, and the
graph rewrite that folds ``relu(linear(...))`` into it (tensorcore/graph/rewrite_linear.py).
The other activations (gelu, sigmoid, tanh) are in tests/test_graph_epilogues_activations.py."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.nn import functional as F
from tensorcore.ops.registry import OPS

from support import assert_same_as_eager, check_grad, check_op

rng = np.random.default_rng(29)


def linear_relu(x, w, b=None):
    args = (x, w) if b is None else (x, w, b)
    return apply(OPS["linear"], args, {"activation": "relu"})


def reference(x, w, b=None):
    out = x @ w.T + (0 if b is None else b)
    return np.maximum(out, 0)


@pytest.mark.parametrize("shape", [(6, 5, 3), (33, 70, 20), (2, 4, 5, 9)], ids=["small", "tiles", "3-d input"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_with_relu_epilogue_matches_numpy(device: str, shape: tuple[int, ...], dtype: type) -> None:
    *lead, n_in, n_out = shape
    x = rng.standard_normal((*lead, n_in)).astype(dtype)
    w, b = rng.standard_normal((n_out, n_in)).astype(dtype), rng.standard_normal(n_out).astype(dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    check_op(linear_relu, reference, [x, w, b], device, rtol=tol, atol=tol)
    check_op(linear_relu, reference, [x, w], device, rtol=tol, atol=tol)


def test_the_epilogue_is_the_relu_kernel_bit_for_bit(device: str) -> None:
    """NaN passes, a negative or -0.0 sum becomes +0.0, positives are untouched: the same bits
    as the linear kernel followed by the relu kernel on the same device."""
    x = rng.standard_normal((9, 17)).astype(np.float32)
    x[0] = np.nan
    w = rng.standard_normal((24, 17)).astype(np.float32)
    w[3] = 0.0  # column 3 of the product: zeros, negated below to -0.0
    b = rng.standard_normal(24).astype(np.float32)
    b[3] = -0.0
    args = [tc.asarray(a, device=device) for a in (x, w, b)]
    fused = linear_relu(*args).numpy()
    separate = F.relu(F.linear(*args)).numpy()
    np.testing.assert_array_equal(fused.view(np.uint32), separate.view(np.uint32))
    assert np.isnan(fused[0]).all() and not np.signbit(fused).any()


def test_linear_with_relu_epilogue_gradient(device: str) -> None:
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    check_grad(linear_relu, [x, w, b], device)


def test_an_unknown_activation_is_refused_naming_the_choices() -> None:
    x, w = tc.ones((2, 3)), tc.ones((4, 3))
    with pytest.raises(OpError, match=r"linear: unknown activation 'softplus'; expected None or one of "
                                      r"\('relu', 'gelu', 'gelu_tanh', 'sigmoid', 'tanh'\)"):
        apply(OPS["linear"], (x, w), {"activation": "softplus"})
    with pytest.raises(OpError, match=r"conv2d: unknown activation 'gelu_erf'"):
        apply(OPS["conv2d"], (tc.ones((1, 1, 3, 3)), tc.ones((1, 1, 2, 2))), {**CONV, "activation": "gelu_erf"})


# --- the rewrite ---------------------------------------------------------------------------

FORMS = {
    "relu(F.linear)": lambda x, w, b: F.relu(F.linear(x, w, b)),
    "relu(x @ w.T + b)": lambda x, w, b: F.relu(x @ w.T + b),
    "tc.nn.ReLU after linear": lambda x, w, b: tc.nn.ReLU()(F.linear(x, w)),
}


def data(*shape: int, device: str) -> tc.Tensor:
    return tc.asarray(rng.standard_normal(shape).astype(np.float32), device=device)


@pytest.mark.parametrize("form", FORMS)
def test_relu_after_linear_becomes_its_epilogue(device: str, form: str) -> None:
    x, w, b = data(6, 5, device=device), data(3, 5, device=device), data(3, device=device)
    fn = tc.function(FORMS[form])
    assert_same_as_eager(fn(x, w, b), FORMS[form](x, w, b))
    names = [n.op_name for n in fn.graph(x, w, b).nodes]
    assert names == ["linear"], names
    assert "activation=" in fn.code(x, w, b) and "relu as its epilogue; replaces " in fn.code(x, w, b)
    assert "relu as its epilogue; replaces " in fn.placement_report(x, w, b)
    assert fn.graph(x, w, b).nodes[0].attrs["activation"] == "relu"
    assert fn.stats(x, w, b)["linear+relu -> epilogue"] == 1


def test_training_through_the_epilogue_matches_eager(device: str) -> None:
    """A tape inside the function: relu's backward reads the relu output, which the fused
    linear now writes; gradients equal eager mode's."""
    x, w1, b1 = data(7, 5, device=device), data(6, 5, device=device), data(6, device=device)
    w2 = data(2, 6, device=device)

    def grads(x, w1, b1, w2):
        with tc.GradientTape() as tape:
            for t in (w1, b1, w2):
                tape.watch(t)
            loss = tc.sum(F.linear(F.relu(F.linear(x, w1, b1)), w2) ** 2)
        return loss, tape.gradient(loss, [w1, b1, w2])

    fn = tc.function(grads)
    assert_same_as_eager(fn(x, w1, b1, w2), grads(x, w1, b1, w2))
    assert fn.stats(x, w1, b1, w2)["linear+relu -> epilogue"] == 1


def test_no_epilogue_where_it_would_be_wrong(device: str) -> None:
    x, w, b = data(6, 5, device=device), data(3, 5, device=device), data(3, device=device)
    v = tc.Variable(np.ones((6, 3), np.float32), device=device)

    def returned_too(x):
        y = F.linear(x, w, b)
        return F.relu(y), y

    def read_twice(x):
        y = F.linear(x, w, b)
        return F.relu(y) + y

    def updated_between(x):
        y = F.linear(x, w, b)
        v.assign(y)  # reads y: an in-place node between the linear and the relu
        return F.relu(y)

    for name, f in {"returned too": returned_too, "read twice": read_twice, "update between": updated_between}.items():
        fn = tc.function(f)
        assert_same_as_eager(fn(x), f(x), name)
        assert fn.stats(x)["linear+relu -> epilogue"] == 0, name
        assert not any(n.attrs.get("activation") for n in fn.graph(x).nodes), name


# --- the backward's epilogue: relu_backward(matmul(g, w), y) -> matmul_relu_backward ------------

def masked_product(a, b, y):
    return apply(OPS["matmul_relu_backward"], (a, b, y))


def masked_reference(a, b, y):
    return (y > 0).astype(a.dtype) * (a @ b)


@pytest.mark.parametrize("shape", [(6, 5, 3), (40, 70, 33), (1, 16, 40), (40, 16, 1)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_relu_backward_matches_numpy(device: str, shape: tuple[int, int, int], dtype: type) -> None:
    m, k, n = shape
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    y = rng.standard_normal((m, n)).astype(dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    check_op(masked_product, masked_reference, [a, b, y], device, rtol=tol, atol=tol)


def test_the_backward_epilogue_is_relu_backward_bit_for_bit(device: str) -> None:
    """Its factor is relu_backward's, (y > 0) * v: an infinite product masked out is NaN, as the
    separate kernels give; the operands may be transposed views."""
    a = rng.standard_normal((19, 12)).astype(np.float32)
    a[0, 0] = np.inf
    b = rng.standard_normal((30, 12)).astype(np.float32)
    y = rng.standard_normal((19, 30)).astype(np.float32)
    ta, tb, ty = (tc.asarray(t, device=device) for t in (a, b, y))
    fused = masked_product(ta, tb.T, ty).numpy()
    separate = apply(OPS["relu_backward"], (ta @ tb.T, ty)).numpy()
    np.testing.assert_array_equal(fused.view(np.uint32), separate.view(np.uint32))
    assert np.isnan(fused[0][y[0] <= 0]).all()


def test_matmul_relu_backward_gradient(device: str) -> None:
    a, b, y = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    check_grad(masked_product, [a, b, y], device, wrt=[0, 1])


def test_a_relu_backward_of_a_product_becomes_its_epilogue(device: str) -> None:
    """In a traced training step the gradient flowing into each hidden relu comes out of one GEMM
    with the mask applied; parameters after a step equal eager mode's."""
    x, w1, b1 = data(7, 5, device=device), data(6, 5, device=device), data(6, device=device)
    w2, w3 = data(6, 6, device=device), data(3, 6, device=device)

    def grads(x, w1, b1, w2, w3):
        with tc.GradientTape() as tape:
            for t in (w1, b1, w2, w3):
                tape.watch(t)
            h = F.relu(F.linear(F.relu(F.linear(x, w1, b1)), w2))
            loss = tc.sum(F.linear(h, w3) ** 2)
        return loss, tape.gradient(loss, [w1, b1, w2, w3])

    fn = tc.function(grads)
    assert_same_as_eager(fn(x, w1, b1, w2, w3), grads(x, w1, b1, w2, w3))
    stats = fn.stats(x, w1, b1, w2, w3)
    assert stats["matmul+relu_backward -> epilogue"] == 2 and stats["linear+relu -> epilogue"] == 2
    names = [n.op_name for n in fn.graph(x, w1, b1, w2, w3).nodes]
    assert names.count("matmul_relu_backward") == 2 and "relu_backward" not in names


def test_no_backward_epilogue_where_it_would_be_wrong(device: str) -> None:
    a, b, y = data(6, 5, device=device), data(5, 3, device=device), data(6, 3, device=device)
    v = tc.Variable(np.ones((6, 3), np.float32), device=device)
    relu_backward = OPS["relu_backward"]

    def product_returned(a):
        p = a @ b
        return apply(relu_backward, (p, y)), p

    def batched(a):
        return apply(relu_backward, (tc.stack([a, a]) @ b, tc.stack([y, y])))

    def updated_between(a):
        p = a @ b
        v.assign(p)
        return apply(relu_backward, (p, v))  # the mask is written between the product and its use

    for name, f in {"product returned": product_returned, "batched": batched, "update between": updated_between}.items():
        fn = tc.function(f)
        assert_same_as_eager(fn(a), f(a), name)
        assert fn.stats(a)["matmul+relu_backward -> epilogue"] == 0, name


# --- conv2d's relu epilogue -------------------------------------------------------------------

CONV = {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "groups": 1}


def conv_relu(x, w, b=None, **attrs):
    args = (x, w) if b is None else (x, w, b)
    return apply(OPS["conv2d"], args, {**CONV, **attrs, "activation": "relu"})


def conv_reference(x, w, b=None, **attrs):
    out = OPS["conv2d"].reference(x, w, b, **{**CONV, **attrs})
    return np.maximum(out, 0)


@pytest.mark.parametrize("attrs", [{}, {"stride": (2, 1), "groups": 2}], ids=["plain", "strided, 2 groups"])
def test_conv2d_with_relu_epilogue_matches_numpy_and_the_separate_kernels(device: str, attrs: dict) -> None:
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    w, b = rng.standard_normal((6, 4 // attrs.get("groups", 1), 3, 3)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    check_op(lambda *a: conv_relu(*a, **attrs), lambda *a: conv_reference(*a, **attrs), [x, w, b], device, rtol=1e-4, atol=1e-4)
    args = [tc.asarray(a, device=device) for a in (x, w, b)]
    fused = conv_relu(*args, **attrs).numpy()
    separate = F.relu(apply(OPS["conv2d"], tuple(args), {**CONV, **attrs})).numpy()
    np.testing.assert_array_equal(fused.view(np.uint32), separate.view(np.uint32))


def test_conv2d_with_relu_epilogue_gradient(device: str) -> None:
    x, w, b = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    check_grad(conv_relu, [x, w, b], device)


def test_relu_after_conv2d_becomes_its_epilogue_in_a_cnn_step(device: str) -> None:
    x = data(2, 3, 8, 8, device=device)
    conv, head = tc.nn.Conv2d(3, 4, 3, padding=1, device=device), tc.nn.Linear(4 * 4 * 4, 2, device=device)

    def grads(x):
        with tc.GradientTape() as tape:
            h = F.max_pool2d(tc.nn.ReLU()(conv(x)), 2)
            loss = tc.sum(head(tc.reshape(h, (2, -1))) ** 2)
        return loss, tape.gradient(loss, conv.parameters() + head.parameters())

    fn = tc.function(grads)
    assert_same_as_eager(fn(x), grads(x))
    assert fn.stats(x)["linear+relu -> epilogue"] == 1
    assert [n.attrs.get("activation") for n in fn.graph(x).nodes if n.op_name == "conv2d"] == ["relu"]
