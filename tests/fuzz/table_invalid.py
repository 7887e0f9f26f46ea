"""Invalid calls, by construction: for each op that can be called wrongly, a strategy of cases
that every device must refuse with an ``OpError`` naming the op, leaving every input (an
in-place op's target included) as it was. ``tests/test_fuzz_errors.py`` runs them.

Generic ones: a float-only op given an integer or bool tensor (refused by dispatch before any
kernel), a binary elementwise op given shapes that do not broadcast. Then a few per op: index
out of range, inner dimensions that differ, a float into an integer target, state of the
wrong shape for an optimizer step.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from fuzz.spec import Case, dtype_of
from fuzz.table import SPECS
from fuzz.table_elementwise import BINARY
from fuzz.values import ALL, FLOATS, INTS, NUMERIC, Arg, arg, shape
from tensorcore.ops.registry import OPS


def _retyped(case: Case, dtype: np.dtype) -> Case | None:
    """``case`` with its first float input cast to ``dtype`` (None if it has none)."""
    args = list(case.args)
    for i, a in enumerate(args):
        if isinstance(a, Arg) and a.base.dtype.kind == "f":
            with np.errstate(all="ignore"):
                args[i] = Arg(np.nan_to_num(a.base).astype(dtype), a.steps)
            return Case(tuple(args), case.attrs)
    return None


def _not_float(name: str) -> st.SearchStrategy:
    """A case of float-only op ``name`` with a float input made integer or bool."""
    dtypes = st.sampled_from([np.dtype(np.int32), np.dtype(np.bool_), np.dtype(np.uint8), np.dtype(np.int64)])
    return st.tuples(SPECS[name].cases, dtypes).map(lambda p: _retyped(*p)).filter(lambda c: c is not None)


@st.composite
def _unbroadcastable(draw: st.DrawFn, dtypes: tuple) -> Case:
    """Two inputs whose shapes do not broadcast: (N, M) against (K,), K neither 1 nor M."""
    m = draw(st.integers(2, 4))
    k = draw(st.sampled_from([n for n in range(0, 6) if n not in (1, m)]))
    d1, d2 = dtype_of(draw, dtypes), dtype_of(draw, dtypes)
    x1, x2 = draw(arg((draw(st.integers(0, 3)), m), d1)), draw(arg((k,), d2))
    return Case((x1, x2) if draw(st.booleans()) else (x2, x1))


@st.composite
def _one_of_dtype(draw: st.DrawFn, dtypes: tuple, n: int = 1) -> Case:
    """``n`` inputs of one shape, of dtypes from ``dtypes``."""
    s = draw(shape())
    return Case(tuple(draw(arg(s, dtype_of(draw, dtypes))) for _ in range(n)))


@st.composite
def _matmul(draw: st.DrawFn) -> Case:
    """matmul with inner dimensions that differ, or a 0-d operand."""
    m, k, n = (draw(st.integers(1, 3)) for _ in range(3))
    dt = dtype_of(draw, FLOATS)
    if draw(st.booleans()):  # a 0-d operand
        return Case((draw(arg((), dt)), draw(arg((k, n), dt))))
    return Case((draw(arg((m, k), dt)), draw(arg((k + draw(st.integers(1, 2)), n), dt))))


@st.composite
def _linear(draw: st.DrawFn) -> Case:
    """linear with an input whose features differ from the weight's."""
    fin, fout = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dt = dtype_of(draw, FLOATS)
    return Case((draw(arg((2, fin + 1), dt)), draw(arg((fout, fin), dt))))


@st.composite
def _reshape(draw: st.DrawFn) -> Case:
    """reshape into a shape of another size."""
    x = draw(arg(draw(shape(min_dims=1, min_side=1)), dtype_of(draw, ALL)))
    return Case((x,), {"shape": (x.numpy().size + draw(st.integers(1, 3)),)})


@st.composite
def _bad_index(draw: st.DrawFn, name: str) -> Case:
    """An index past the end: getitem, take_along_axis, embedding, cross_entropy."""
    n = draw(st.integers(1, 4))
    bad = Arg(np.array([0, n + draw(st.integers(0, 3))], dtype_of(draw, INTS)))
    dt = dtype_of(draw, FLOATS)
    if name == "embedding":
        return Case((bad, draw(arg((n, 2), dt))))
    if name == "cross_entropy":
        return Case((draw(arg((2, n), dt)), bad), {"reduction": draw(st.sampled_from(["mean", "sum", "none"]))})
    if name == "take_along_axis":
        return Case((draw(arg((n,), dt)), bad), {"axis": 0})
    from tensorcore.ops.indexing import Slot

    return Case((draw(arg((n, 2), dt)), bad), {"key": (Slot(0),)})


@st.composite
def _inplace(draw: st.DrawFn, name: str) -> Case:
    """Invalid in-place updates; the target must come out as it went in."""
    s = draw(shape(min_dims=1, min_side=1, max_size=12))
    dt = dtype_of(draw, FLOATS[1:])
    target = draw(arg(s, dt, views=False))
    wrong = draw(arg(s[:-1] + (s[-1] + 1,), dt))  # does not broadcast to the target
    if name in ("assign", "assign_add", "assign_sub"):
        if draw(st.booleans()):  # a float into an integer target: NumPy's same-kind rule refuses it
            return Case((draw(arg(s, dtype_of(draw, INTS), views=False)), draw(arg(s, dt))))
        return Case((target, wrong))
    if name == "setitem":
        from tensorcore.ops.indexing import Slot

        index = Arg(np.array([s[0] + draw(st.integers(0, 2))], np.int64))
        return Case((target, 1.0, index), {"key": (Slot(0),)})
    lr = Arg(np.array([1e-3], dt))
    if name == "sgd_step":
        velocity = draw(arg(s, dt, views=False))
        attrs = {"momentum": 0.9, "nesterov": draw(st.booleans()), "weight_decay": draw(st.sampled_from([0.0, 0.01]))}
        return Case((target, wrong, velocity, lr, None), attrs)
    if name == "linear_weight_sgd_step":  # g and x whose product is not the target's shape
        rows = draw(st.integers(1, 3))
        g, x = draw(arg((rows, s[0] + 1), dt)), draw(arg((rows, s[-1]), dt))
        return Case((draw(arg((s[0], s[-1]), dt, views=False)), g, x, lr, None))
    schedule = Arg(np.array([0.9, 0.999, 1e-3, 1e-8], dt))
    if name == "adam_schedule":
        bad = Arg(np.array([0.9, 0.999, 0.0], dt))  # 3 elements, not 4
        return Case((bad, lr, None), {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8})
    m, v = draw(arg(s, dt, views=False)), Arg(np.abs(draw(arg(s, dt, views=False)).base))
    attrs = {"beta1": 0.9, "beta2": 0.999, "weight_decay": draw(st.sampled_from([0.0, 0.01])),
             "decoupled": draw(st.booleans())}
    return Case((target, wrong, m, v, schedule, lr), attrs)


INVALID: dict[str, st.SearchStrategy] = {name: _not_float(name) for name in SPECS if OPS[name].float_only}
INVALID.update({name: _unbroadcastable(FLOATS if OPS[name].float_only else NUMERIC) for name in BINARY})
INVALID.update({
    **{name: _one_of_dtype(FLOATS, 2) for name in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift")},
    "bitwise_invert": _one_of_dtype(FLOATS),
    "negative": _one_of_dtype((np.dtype(np.bool_),)),
    "matmul": _matmul(),
    "linear": _linear(),
    "reshape": _reshape(),
    **{name: _bad_index(name) for name in ("getitem", "take_along_axis", "embedding", "cross_entropy")},
    **{name: _inplace(name) for name in ("assign", "assign_add", "assign_sub", "setitem", "sgd_step",
                                         "linear_weight_sgd_step", "adam_schedule", "adam_step")},
})
