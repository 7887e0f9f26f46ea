"""Fuzz specs of the movement and indexing ops: reshape, permute_dims, broadcast_to, flip, roll,
tile, repeat, concat, tril, triu; getitem with basic, integer-array and boolean-mask keys, its
scatter-add, take_along_axis and its scatter, embedding; and the in-place writes (setitem,
assign, assign_add, assign_sub). All exact, but the scatter-adds of floats (order of the sums).

Index tensors are inputs like any other (views included); now and then one holds an index out
of range, which every device must refuse (``OpError``; on an asynchronous device at the read).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from fuzz.spec import Case, Spec, abs_bound, dtype_of
from fuzz.values import ALL, FLOATS, INTS, NUMERIC, Arg, arg, broadcastable, scalar, shape
from tensorcore.ops.indexing import Slot


@st.composite
def _x(draw: st.DrawFn, min_dims: int = 0, views: bool = True, dtypes: tuple = ALL, **kw: object) -> Arg:
    """An input of a drawn shape (at least ``min_dims``) and dtype, as a view when ``views``."""
    return draw(arg(draw(shape(min_dims=min_dims, **kw)), dtype_of(draw, dtypes), views=views))


def _indices(draw: st.DrawFn, idx_shape: tuple[int, ...], n: int, bad: bool = True, negative: bool = True) -> Arg:
    """Integer indices (a view, maybe) into a dimension of ``n``: in [-n, n) (negative ones count
    from the end; in [0, n) unless ``negative``), or now and then (``bad``) all out of range."""
    dt = dtype_of(draw, INTS)
    lo, hi = (0 if dt.kind == "u" or not negative else -n), n - 1
    if n == 0 or (bad and draw(st.integers(0, 11)) == 0):
        lo, hi = n, n + 3
    return draw(arg(idx_shape, dt, kind="range", lo=lo, hi=hi))


@st.composite
def _key(draw: st.DrawFn, shape_: tuple[int, ...], unique: bool = False, bad: bool = True) -> tuple[object, list[Arg]]:
    """(key template with :class:`Slot` s, index inputs) for a tensor of ``shape_``: basic
    (ints, stepped slices, None, Ellipsis), integer arrays (broadcast together), or a mask.
    ``unique``: no index repeats (setitem: which of two writes wins is undefined); ``bad``: now
    and then an index out of range."""
    nd = len(shape_)
    mode = draw(st.sampled_from(["basic", "arrays", "mask"] if nd else ["basic", "mask"]))
    common = draw(shape(max_dims=1 if unique else 2, max_size=8))  # the index arrays' broadcast shape
    # An index out of range that is never used (the index arrays broadcast to nothing): NumPy
    # does not look at it, the devices check it. Not drawn: a degenerate case (see the report).
    bad = bad and math.prod(common) > 0
    sized = [d for d in range(nd) if shape_[d] or bad]  # no valid index into an empty dimension
    if mode == "mask" or (mode == "arrays" and not sized):
        k = draw(st.integers(min(nd, 1), nd))
        mask = draw(arg(shape_[:k], np.bool_))
        return (Slot(0),) + (slice(None),) * draw(st.integers(0, nd - k)), [mask]
    if mode == "arrays":
        dims = sorted(set(draw(st.lists(st.sampled_from(sized), min_size=1, max_size=1 if unique else 2))))
        key: list = [slice(None)] * nd
        index: list[Arg] = []
        for d in dims:
            n = shape_[d]
            if unique:  # distinct positions, each named once (as a non-negative index)
                count = draw(st.integers(0, n))
                perm = np.random.default_rng(draw(st.integers(0, 2**16))).permutation(n)[:count]
                index.append(Arg(perm.astype(dtype_of(draw, INTS))))
            else:
                index.append(_indices(draw, draw(broadcastable(common)), n, bad=bad))
            key[d] = Slot(len(index) - 1)
        return tuple(key[:max(dims) + 1 + draw(st.integers(0, nd - max(dims) - 1))]), index
    key = []
    for n in shape_:
        choice = draw(st.integers(0, 3)) if n else 1
        if choice == 0:
            key.append(draw(st.integers(-n, n - 1)))
        elif choice == 1:
            key.append(slice(draw(st.one_of(st.none(), st.integers(-n - 2, n + 2))),
                             draw(st.one_of(st.none(), st.integers(-n - 2, n + 2))),
                             draw(st.sampled_from([None, 1, 2, 3, -1, -2]))))
        elif choice == 2:
            key.append(slice(None))
        else:
            key += [None, slice(None)]
    cut = draw(st.integers(0, len(key)))
    key = key[:cut] + ([Ellipsis] if draw(st.booleans()) else [])
    return (tuple(key) if len(key) != 1 or draw(st.booleans()) else key[0]), []


def _indexed_shape(shape_: tuple[int, ...], key: object, index: list[Arg]) -> tuple[int, ...]:
    """The shape of ``x[key]``; a key out of range (into an empty dimension) is not drawn."""
    from tensorcore.ops.indexing import fill_key

    try:
        return np.zeros(shape_, np.int8)[fill_key(key, tuple(a.numpy() for a in index))].shape
    except IndexError:
        assume(False)
        raise


@st.composite
def _getitem(draw: st.DrawFn) -> Case:
    """x and a drawn key (with its index tensors)."""
    x = draw(_x())
    key, index = draw(_key(x.numpy().shape))
    return Case((x, *index), {"key": key})


@st.composite
def _scatter_add(draw: st.DrawFn) -> Case:
    """(g, *index) and the shape and key that getitem's gradient scatters g into."""
    s = draw(shape())
    key, index = draw(_key(s, bad=False))  # a scatter's indices come from a getitem that took them
    out = _indexed_shape(s, key, index)
    return Case((draw(arg(out, dtype_of(draw, NUMERIC))), *index), {"shape": s, "key": key})


@st.composite
def _setitem(draw: st.DrawFn) -> Case:
    """x (the target), a value broadcastable to x[key] (a tensor or a Python scalar), the key."""
    x = draw(_x(views=False))
    key, index = draw(_key(x.base.shape, unique=True))
    out = _indexed_shape(x.base.shape, key, index)
    value = draw(arg(draw(broadcastable(out)), x.base.dtype)) if draw(st.integers(0, 3)) else \
        scalar(draw, {"b": "bool", "f": "float"}.get(x.base.dtype.kind, "int"))
    return Case((x, value, *index), {"key": key})


@st.composite
def _assign(draw: st.DrawFn) -> Case:
    """(target, source): a source that broadcasts to the target, of its dtype or another."""
    dst = draw(_x(views=False))
    dt = dst.base.dtype if draw(st.integers(0, 3)) else dtype_of(draw, ALL)
    # A Python scalar, mostly of the target's kind; one of another kind must be refused
    # everywhere (test_fuzz_regressions.py::test_in_place_update_refuses_a_python_scalar_of_another_kind).
    kind = {"b": "bool", "f": "float"}.get(dst.base.dtype.kind, "int") if draw(st.integers(0, 2)) else \
        draw(st.sampled_from(["bool", "int", "float"]))
    src = draw(arg(draw(broadcastable(dst.base.shape)), dt)) if draw(st.integers(0, 4)) else scalar(draw, kind)
    return Case((dst, src))


@st.composite
def _along(draw: st.DrawFn, scatter: bool) -> Case:
    """(x, indices, axis) of take_along_axis, or (g, indices, axis, shape) of its scatter."""
    s = draw(shape(min_dims=1))
    axis = draw(st.integers(0, len(s) - 1))
    idx = tuple(draw(st.integers(0, 3)) if d == axis else (n if draw(st.integers(0, 3)) else 1)
                for d, n in enumerate(s))
    if not scatter and draw(st.integers(0, 3)) == 0:  # x broadcast too: one of its sides 1
        s = tuple(1 if d != axis and draw(st.booleans()) else n for d, n in enumerate(s))
    indices = _indices(draw, idx, s[axis], bad=not scatter)
    out = tuple(b if d == axis or a == 1 else a for d, (a, b) in enumerate(zip(s, idx)))
    if scatter:
        return Case((draw(arg(out, dtype_of(draw, NUMERIC))), indices), {"axis": axis, "shape": s})
    return Case((draw(arg(s, dtype_of(draw, ALL))), indices), {"axis": axis})


@st.composite
def _reshape(draw: st.DrawFn) -> Case:
    """x and a shape of its size (its prime factors dealt out to new dimensions, -1 sometimes)."""
    x = draw(_x())
    size = x.numpy().size
    dims = [1] * draw(st.integers(0, 4))
    if size == 0:
        dims = [draw(st.integers(0, 3)) for _ in dims] + [0]
    else:
        factors, n, p = [], size, 2
        while n > 1:  # the prime factors of the size, dealt out to the new dimensions
            while n % p == 0:
                factors.append(p)
                n //= p
            p += 1
        dims = dims or [1]
        for f in factors:
            dims[draw(st.integers(0, len(dims) - 1))] *= f
        if draw(st.booleans()):
            dims[draw(st.integers(0, len(dims) - 1))] = -1
    return Case((x,), {"shape": tuple(draw(st.permutations(dims)))})


@st.composite
def _movement(draw: st.DrawFn, name: str) -> Case:
    """x and the attributes of movement op ``name``."""
    x = draw(_x(min_dims=2 if name in ("tril", "triu") else 1 if name in ("roll", "repeat") else 0))
    s = x.numpy().shape
    nd = len(s)
    if name == "permute_dims":
        return Case((x,), {"axes": tuple(draw(st.permutations(range(nd))))})
    if name == "broadcast_to":
        lead = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
        out = lead + tuple(draw(st.integers(0, 3)) if n == 1 else n for n in s)
        return Case((x,), {"shape": out if math.prod(out) <= 200 else s})
    if name == "flip":
        return Case((x,), {"axis": tuple(sorted(set(draw(st.lists(st.integers(0, nd - 1), max_size=nd))))) if nd else ()})
    if name == "roll":
        pairs = draw(st.lists(st.tuples(st.integers(-7, 7), st.integers(0, nd - 1)), min_size=1, max_size=3))
        return Case((x,), {"shift": tuple(p[0] for p in pairs), "axis": tuple(p[1] for p in pairs)})
    if name == "tile":
        reps = tuple(draw(st.lists(st.integers(0, 3), max_size=nd + 1)))
        return Case((x,), {"repetitions": reps if x.numpy().size * math.prod(reps) <= 200 else ()})
    if name == "repeat":
        axis = draw(st.integers(0, nd - 1))
        reps = draw(st.integers(0, 3)) if draw(st.booleans()) else \
            np.array(draw(st.lists(st.integers(0, 3), min_size=s[axis], max_size=s[axis])), np.int64)
        return Case((x,), {"repeats": reps, "axis": axis})
    return Case((x,), {"k": draw(st.integers(-4, 4))})  # tril, triu


@st.composite
def _concat(draw: st.DrawFn) -> Case:
    """1 to 3 tensors of one shape but along ``axis``, now and then of other dtypes."""
    s = list(draw(shape(min_dims=1)))
    axis = draw(st.integers(0, len(s) - 1))
    dt = dtype_of(draw, ALL)
    xs = []
    for _ in range(draw(st.integers(1, 3))):
        s[axis] = draw(st.integers(0, 3))
        xs.append(draw(arg(tuple(s), dt if draw(st.integers(0, 3)) else dtype_of(draw, ALL))))
    return Case(tuple(xs), {"axis": axis})


@st.composite
def _embedding(draw: st.DrawFn, backward: bool) -> Case:
    """(indices, weight) for embedding, or (g, indices) for its backward."""
    rows, dim = draw(st.integers(1, 5)), draw(st.integers(0, 4))
    # embedding refuses negative indices, so its backward never sees one: none are drawn for it
    indices = _indices(draw, draw(shape(max_dims=3, max_size=12)), rows, bad=not backward, negative=not backward)
    if backward:
        g = draw(arg(indices.numpy().shape + (dim,), dtype_of(draw, FLOATS)))
        return Case((g, indices), {"num_embeddings": rows})
    return Case((indices, draw(arg((rows, dim), dtype_of(draw, NUMERIC)))))


def _index_terms(args: list, attrs: dict) -> int:
    """How many terms a scatter-add may sum into one element (at most the largest input's size)."""
    return max([np.size(a) for a in args] + [1])


SPECS: list[Spec] = [
    Spec("reshape", _reshape()),
    *(Spec(name, _movement(name)) for name in ("permute_dims", "broadcast_to", "flip", "roll", "tile", "repeat",
                                               "tril", "triu")),
    Spec("concat", _concat()),
    Spec("getitem", _getitem(), examples=2),
    Spec("scatter_add", _scatter_add(), abs_bound(_index_terms, keep=(1, 2)), examples=1.5),
    Spec("take_along_axis", _along(False)),
    Spec("scatter_along_axis", _along(True), abs_bound(_index_terms, keep=(1,))),
    Spec("embedding", _embedding(False)),
    Spec("embedding_backward", _embedding(True), abs_bound(_index_terms, keep=(1,))),
    Spec("setitem", _setitem(), inplace=True, examples=1.5),
    *(Spec(name, _assign(), inplace=True) for name in ("assign", "assign_add", "assign_sub")),
]
