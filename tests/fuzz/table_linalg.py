"""Fuzz specs of linear algebra (``linalg.*``), the in-place optimizer steps (``sgd_step``,
``linear_weight_sgd_step``,
``adam_schedule``, ``adam_step``) and ``random``.

Linear algebra draws well-conditioned inputs of each op's kind (symmetric positive definite,
diagonally dominant, symmetric with spread eigenvalues, full rank), laid out as views. The
bound is a backward-stable algorithm's, ``16 (n + 1)^2 eps max|result|`` (condition numbers
stay below ~10), and eigenvectors, Q/R and U/Vh are compared up to the sign of each vector.

The optimizer steps draw parameters, gradients and state with special values (no extremes);
their bounds are a few rounding errors of each term, relative to its magnitude. ``random``
is reseeded before the reference and before the device call: every device must draw NumPy's
numbers (it draws on the host by design).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import tensorcore as tc
from fuzz.spec import EXACT, Case, Spec, Tol, custom_bound, dtype_of
from fuzz.values import FLOATS, Arg, arg, array, laid_out, shape
from tensorcore.dispatch import apply
from tensorcore.ops import sampling


def _rng(draw: st.DrawFn) -> np.random.Generator:
    """A NumPy generator seeded by a drawn seed."""
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))


@st.composite
def _matrix(draw: st.DrawFn, kind: str, square: bool = True) -> tuple[np.ndarray, np.dtype]:
    """A batch of matrices of ``kind``: ``spd``, ``dominant`` (diagonally), ``symmetric``
    (eigenvalues at least 1 apart) or ``full`` (singular values at least 0.5 apart)."""
    batch = draw(shape(max_dims=2, max_side=2))
    m = draw(st.integers(0, 4))
    n = m if square else draw(st.integers(0, 4))
    dt, rng = dtype_of(draw, FLOATS), _rng(draw)
    a = rng.standard_normal(batch + (m, n))
    if kind == "spd":
        a = a @ np.swapaxes(a, -1, -2) + m * np.eye(m)
    elif kind == "dominant":
        a = a + np.eye(m) * (np.abs(a).sum(-1, keepdims=True) + 1) * np.where(rng.random(batch + (m, 1)) < 0.5, -1, 1)
    else:
        k = min(m, n)
        q1 = np.linalg.qr(rng.standard_normal(batch + (m, m)))[0]
        q2 = q1 if kind == "symmetric" else np.linalg.qr(rng.standard_normal(batch + (n, n)))[0]
        values = np.cumsum(rng.uniform(1.0 if kind == "symmetric" else 0.5, 2.0, batch + (k,)), -1)
        if kind == "symmetric":
            values -= rng.uniform(0, values[..., -1:] + 1) if k else 0
        a = (q1[..., :, :k] * values[..., None, :]) @ np.swapaxes(q2[..., :, :k], -1, -2)
        if kind == "symmetric":
            a = (a + np.swapaxes(a, -1, -2)) / 2
    return a.astype(dt), dt


def _one(kind: str, square: bool = True, attrs: st.SearchStrategy | None = None) -> st.SearchStrategy:
    """Cases of a one-input linalg op on matrices of ``kind``."""

    @st.composite
    def cases(draw: st.DrawFn) -> Case:
        a, _ = draw(_matrix(kind, square))
        return Case((draw(laid_out(a)),), draw(attrs) if attrs is not None else {})

    return cases()


@st.composite
def _solve(draw: st.DrawFn) -> Case:
    """(A, b): A diagonally dominant, b a vector or a batch of right-hand sides."""
    a, dt = draw(_matrix("dominant"))
    m = a.shape[-1]
    b_shape = (m,) if draw(st.booleans()) else a.shape[draw(st.integers(0, a.ndim - 2)):-1] + (draw(st.integers(0, 3)),)
    return Case((draw(laid_out(a)), draw(arg(b_shape, dt, specials="finite"))))


def _stable(args: list, attrs: dict, eps: float) -> list:
    """A backward-stable result's error for a well-conditioned input, for every output (see above)."""
    a = np.asarray(args[0])
    n = max(a.shape[-2:] + (1,))
    scale = 1 + np.max(np.abs(a), initial=0)
    if a.shape[-1] == a.shape[-2]:  # a determinant is as large as the product of the rows' norms
        scale = max(scale, float(np.max(np.abs(np.linalg.det(a)), initial=0)))
    return [16 * (n + 1) ** 2 * eps * scale] * 3


def _vector_signs(left: int, right: int):  # noqa: ANN202 - a normalize function for Tol
    """Make ``outs[left]`` (vectors as columns) and ``outs[right]`` (as rows; -1: none) unique:
    keep the first min(M, N) vectors (a complete QR's or a full SVD's others are any completion
    of the basis) and give each the sign that makes its largest entry positive."""

    def normalize(outs: list) -> list:
        outs = [np.array(o) for o in outs]
        cols = outs[left]
        k = min(cols.shape[-2], outs[right].shape[-1]) if right >= 0 else cols.shape[-1]
        cols = cols[..., :, :k]
        if cols.size:
            idx = np.expand_dims(np.argmax(np.abs(cols), axis=-2), -2)
            sign = np.where(np.take_along_axis(cols, idx, -2) < 0, -1, 1).astype(cols.dtype)
            cols = cols * sign
            if right >= 0:
                outs[right] = outs[right][..., :k, :] * np.swapaxes(sign, -1, -2)
        elif right >= 0:
            outs[right] = outs[right][..., :k, :]
        outs[left] = cols
        return outs

    return normalize


LINALG_TOL = custom_bound(_stable)

# --- optimizer steps ---------------------------------------------------------------------------


def _scalar_tensor(draw: st.DrawFn, dt: np.dtype, value: float) -> Arg:
    """``value`` as a 0-d or 1-element array of ``dt`` (the optimizers' device scalars)."""
    return Arg(np.array(value if draw(st.booleans()) else [value], dt))


@st.composite
def _sgd(draw: st.DrawFn) -> Case:
    """(param, grad, velocity, lr, step) and SGD's attributes: momentum, Nesterov, weight decay."""
    s, dt = draw(shape()), dtype_of(draw, FLOATS[1:])
    momentum = draw(st.sampled_from([0.0, 0.9]))
    param, grad = draw(arg(s, dt, views=False, specials="sums")), draw(arg(s, dt, specials="sums"))
    velocity = draw(arg(s, dt, views=False, specials="sums")) if momentum else None
    lr = _scalar_tensor(draw, dt, draw(st.sampled_from([0.1, 1e-3, 0.0]))) if draw(st.integers(0, 3)) else 0.5
    step = _scalar_tensor(draw, dt, draw(st.sampled_from([0.0, 7.0]))) if draw(st.booleans()) else None
    attrs = {"momentum": momentum, "nesterov": bool(momentum) and draw(st.booleans()),
             "weight_decay": draw(st.sampled_from([0.0, 0.01]))}
    return Case((param, grad, velocity, lr, step), attrs)


def _sgd_bound(args: list, attrs: dict, eps: float) -> list:
    """sgd_step's error bound: a few roundings of each term (param, velocity; the counter exact)."""
    param, grad, velocity = (np.abs(np.asarray(a, np.float64)) if a is not None else 0.0 for a in args[:3])
    lr = abs(float(np.asarray(args[3]).reshape(-1)[0]))
    mu, wd = attrs["momentum"], attrs["weight_decay"]
    g = grad + wd * param
    v = mu * velocity + g
    step = g + (mu * v if attrs["nesterov"] else v) if mu else g
    return [8 * eps * (param + lr * step), 8 * eps * v if mu else None, np.zeros(())]


@st.composite
def _linear_weight_sgd(draw: st.DrawFn) -> Case:
    """(param (out, in), g (..., out), x (..., in), lr, step) of linear_weight_sgd_step."""
    lead = draw(shape(max_dims=2, max_side=4, max_size=8))
    fout, fin = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dt = dtype_of(draw, FLOATS[1:])
    param = draw(arg((fout, fin), dt, views=False, specials="sums"))
    g, x = draw(arg(lead + (fout,), dt, specials="sums")), draw(arg(lead + (fin,), dt, specials="sums"))
    lr = _scalar_tensor(draw, dt, draw(st.sampled_from([0.1, 1e-3, 0.0]))) if draw(st.integers(0, 3)) else 0.5
    step = _scalar_tensor(draw, dt, draw(st.sampled_from([0.0, 7.0]))) if draw(st.booleans()) else None
    return Case((param, g, x, lr, step), {})


def _linear_weight_sgd_bound(args: list, attrs: dict, eps: float) -> list:
    """A few roundings of the parameter, and the gradient's: one per product summed."""
    param, g, x = (np.abs(np.asarray(a, np.float64)) for a in args[:3])
    rows = math.prod(g.shape[:-1])
    lr = abs(float(np.asarray(args[3]).reshape(-1)[0]))
    grad = g.reshape(rows, g.shape[-1]).T @ x.reshape(rows, x.shape[-1])
    return [8 * eps * (param + lr * (rows + 2) * grad), np.zeros(())]


@st.composite
def _adam_schedule(draw: st.DrawFn) -> Case:
    """Adam's schedule after t steps, lr and an optional step counter."""
    dt = dtype_of(draw, FLOATS[1:])
    t = draw(st.integers(0, 50))
    beta1, beta2 = draw(st.sampled_from([0.9, 0.5])), draw(st.sampled_from([0.999, 0.9]))
    schedule = Arg(np.array([beta1**t, beta2**t, 0.0, 0.0], dt))
    lr = _scalar_tensor(draw, dt, 1e-3)
    step = _scalar_tensor(draw, dt, float(t)) if draw(st.booleans()) else None
    return Case((schedule, lr, step), {"beta1": beta1, "beta2": beta2, "eps": draw(st.sampled_from([1e-8, 1e-3]))})


def _adam_schedule_bound(args: list, attrs: dict, eps: float) -> list:
    """adam_schedule's error bound: 1 - beta**t cancels, so relative to 1 / (1 - beta**t)."""
    b1t, b2t = args[0][0] * attrs["beta1"], args[0][1] * attrs["beta2"]
    c = np.sqrt(1 - b2t)
    size = float(np.asarray(args[1]).reshape(-1)[0]) * c / (1 - b1t)
    rel = 8 * eps * (1 + 1 / (1 - b1t) + 1 / max(1 - b2t, 1e-300))  # 1 - beta**t cancels
    return [np.array([4 * eps * b1t, 4 * eps * b2t, size * rel, attrs["eps"] * c * rel]), np.zeros(())]


@st.composite
def _adam_step(draw: st.DrawFn) -> Case:
    """(param, grad, m, v, schedule, lr) at step t, Adam or AdamW."""
    s, dt = draw(shape()), dtype_of(draw, FLOATS[1:])
    beta1, beta2, t = 0.9, 0.999, draw(st.integers(1, 20))
    c = math.sqrt(1 - beta2**t)
    schedule = Arg(np.array([beta1**t, beta2**t, 1e-3 * c / (1 - beta1**t), 1e-8 * c], dt))
    v = np.abs(draw(array(s, dt, specials="finite")))
    args = (draw(arg(s, dt, views=False, specials="sums")), draw(arg(s, dt, specials="sums")),
            draw(arg(s, dt, views=False, specials="sums")), Arg(v), schedule, _scalar_tensor(draw, dt, 1e-3))
    return Case(args, {"beta1": beta1, "beta2": beta2, "weight_decay": draw(st.sampled_from([0.0, 0.01])),
                       "decoupled": draw(st.booleans())})


def _adam_step_bound(args: list, attrs: dict, eps: float) -> list:
    """adam_step's error bound: each term's roundings, through the division by sqrt(v) + eps."""
    param, grad, m, v = (np.asarray(a, np.float64) for a in args[:4])
    s2, s3 = float(args[4][2]), float(args[4][3])
    lr, wd, b1, b2 = float(np.asarray(args[5]).reshape(-1)[0]), attrs["weight_decay"], attrs["beta1"], attrs["beta2"]
    g = np.abs(grad) + (0 if attrs["decoupled"] else wd * np.abs(param))
    m1 = b1 * m + (1 - b1) * (grad + (0 if attrs["decoupled"] else wd * param))
    v1 = b2 * v + (1 - b2) * g * g
    bm, bv = 4 * eps * (b1 * np.abs(m) + (1 - b1) * g), 4 * eps * (b2 * v + (1 - b2) * g * g)
    denom = np.sqrt(v1) + s3
    update = s2 * np.abs(m1) / denom
    bp = 8 * eps * (np.abs(param) + update) + s2 * bm / denom + update * bv / np.maximum(2 * np.sqrt(v1) * denom, 1e-300)
    return [bp + 4 * eps * lr * wd * np.abs(param), bm, bv]


# --- random ---------------------------------------------------------------------------------


@st.composite
def _random(draw: st.DrawFn) -> Case:
    """random's attributes (distribution, shape, parameters, dtype) and the seed to draw with."""
    dist = draw(st.sampled_from(["uniform", "normal", "bernoulli", "permutation"]))
    s = (draw(st.integers(0, 6)),) if dist == "permutation" else draw(shape(max_dims=3))
    dtype = draw(st.sampled_from(["int64", "int32"] if dist == "permutation" else ["float32", "float64", "float16"]
                                 if dist != "bernoulli" else ["bool", "float32", "uint8"]))
    attrs = {"distribution": dist, "shape": s, "a": draw(st.sampled_from([0.0, 0.3, -2.0])), "b": 1.5, "dtype": dtype}
    return Case((), {**attrs, "seed": draw(st.integers(0, 2**31))})


def _random_call(op: object, inputs: list, attrs: dict, device: str) -> object:
    """``random`` on ``device`` from the case's seed; the generator's position is restored."""
    attrs, saved = dict(attrs), sampling.state()
    sampling.seed(attrs.pop("seed"))
    try:
        with tc.device(device):
            return apply(op, (), attrs)
    finally:
        sampling.restore(saved)


def _random_reference(op: object, args: list, attrs: dict) -> object:
    """``random``'s reference from the case's seed; the generator's position is restored."""
    attrs, saved = dict(attrs), sampling.state()
    sampling.seed(attrs.pop("seed"))
    try:
        return op.reference(**attrs)
    finally:
        sampling.restore(saved)


SPECS: list[Spec] = [
    Spec("linalg.cholesky", _one("spd", attrs=st.fixed_dictionaries({"upper": st.booleans()})), LINALG_TOL),
    Spec("linalg.inv", _one("dominant"), LINALG_TOL),
    Spec("linalg.solve", _solve(), LINALG_TOL),
    Spec("linalg.det", _one("dominant"), Tol(ulps=4, bound=LINALG_TOL.bound)),
    Spec("linalg.slogdet", _one("dominant"), LINALG_TOL),
    Spec("linalg.eigh", _one("symmetric"), Tol(ulps=4, bound=LINALG_TOL.bound, normalize=_vector_signs(1, -1))),
    Spec("linalg.eigvalsh", _one("symmetric"), LINALG_TOL),
    Spec("linalg.qr", _one("full", False, st.fixed_dictionaries({"mode": st.sampled_from(["reduced", "complete"])})),
         Tol(ulps=4, bound=LINALG_TOL.bound, normalize=_vector_signs(0, 1))),
    Spec("linalg.svd", _one("full", False, st.fixed_dictionaries({"full_matrices": st.booleans()})),
         Tol(ulps=4, bound=LINALG_TOL.bound, normalize=_vector_signs(0, 2))),
    Spec("linalg.svdvals", _one("full", False), LINALG_TOL),
    Spec("sgd_step", _sgd(), custom_bound(_sgd_bound), inplace=True),
    Spec("linear_weight_sgd_step", _linear_weight_sgd(), custom_bound(_linear_weight_sgd_bound), inplace=True),
    Spec("adam_schedule", _adam_schedule(), custom_bound(_adam_schedule_bound), inplace=True),
    Spec("adam_step", _adam_step(), custom_bound(_adam_step_bound), inplace=True),
    Spec("random", _random(), EXACT, call=_random_call, reference=_random_reference),
]
