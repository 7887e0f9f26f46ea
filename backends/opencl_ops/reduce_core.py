"""The reduction engine of the OpenCL backend: any view, any set of axes, as (A, N, B) launches.

Every reduction is read as ``out[i, j] = COMB over k of MAP(x[off + i*sa + k*sn + j*sb])``
with ``i < A``, ``k < N``, ``j < B``:
the view's dimensions are put in memory order (largest stride first), size-1 dimensions are
dropped and neighbours of the same kind (kept or reduced) that are contiguous with each other
are merged. When that leaves kept, reduced, kept (or fewer) groups, the kernels read the view
where it lies; otherwise (reduced and kept axes interleaved in memory, negative strides, or
kept axes out of order) the view is first copied with the reduced axes last, except where
reduced axes lie on both sides of kept ones that are read in place: ``reduce`` then reduces the
trailing ones first and the partial result after (a conv bias gradient over N, H and W).

Each work-item reduces a chunk of N into a partial, and further launches of the same kernel
combine the partials until one per output is left. Along a contiguous row a work-item reads 16
elements at a time; for columns (B > 1) it walks its chunk row by row over a strip of columns,
so its reads stream through memory. No local memory and no barriers: PoCL runs a barrier as
separate loops. Chunks are capped so no float adds more than a few hundred terms serially (see
``kernels/opencl/reduce.cl``): accurate in float32 like NumPy's pairwise sum.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np
from tensorcore.backends.opencl import CLArray, CLDevice
from tensorcore.backends.opencl_ops._common import CTYPES, ctype, output
from tensorcore.backends.opencl_ops._plans import Plan, Slot, record, replay
from tensorcore.backends.opencl_ops.movement import contiguous

from tensorcore.errors import KernelUnsupported
from tensorcore.ops._axes import reduced_shape

VW = 16  # vector width of the kernels (16 lanes: one AVX-512 register of float)
TARGET = 64  # work-items wanted per launch: both cores busy with a few per thread to balance
ROW_CHUNK = (8192, 65536)  # elements per work-item along a contiguous row (min, max)
COL_ELEMS = 4096  # elements a work-item of a column reduction reads at least (if there are)
COL_ROWS = (16, 2048)  # rows per work-item of a column reduction (min, max): serial terms per column
MIN_SPAN, MAX_SPAN = 256, 16384  # columns per work-item of a column reduction
SMALL = 1 << 20  # elements a column reduction reads in one pass rather than splitting rows

FEW, GROUP = 1024, 32  # launches of more than FEW work-items run them in groups of GROUP

SUM, PROD, MAX, MIN, AND, OR = range(6)
IDENTITY, NONZERO, SQDEV, EXPDEV = range(4)  # MAP: x, x != 0, (x - c)^2, exp(x - c)


class Layout(NamedTuple):
    """``x`` read as (A, N, B) = (``a``, ``n``, ``b``): element (i, k, j) lies at
    ``x.offset + i*sa + k*sn + j*sb``; outputs are (A, B) row-major."""

    x: CLArray
    a: int
    n: int
    b: int
    sa: int
    sn: int
    sb: int


def cdiv(p: int, q: int) -> int:
    """``ceil(p / q)`` for non-negative ints."""
    return -(-p // q)




def grid(*dims: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(global, local) sizes for a launch of ``dims`` work-items (the kernels skip the padding).

    Always an explicit local size, from a fixed few: PoCL builds a kernel once per local size,
    and its own choice follows the global size, so it would compile again for each new shape.
    One work-item per group while there are few (each group goes to a thread on its own, so both
    cores share the work); groups of GROUP along the longest dimension when there are many
    (a group costs PoCL more than a work-item does)."""
    if math.prod(dims) <= FEW:
        return tuple(max(d, 1) for d in dims), (1,) * len(dims)
    k = max(range(len(dims)), key=lambda i: dims[i])
    sizes = tuple(cdiv(d, GROUP) * GROUP if i == k else d for i, d in enumerate(dims))
    return sizes, tuple(GROUP if i == k else 1 for i in range(len(dims)))


def supported(dev: CLDevice, *dtypes: Any) -> None:
    """Raise ``KernelUnsupported`` unless every dtype has a kernel type on ``dev``."""
    for dt in dtypes:
        dt = np.dtype(dt)
        if dt not in CTYPES:
            raise KernelUnsupported(f"no OpenCL reduction kernels for {dt}")
        if dt == np.float64 and not dev.fp64:
            raise KernelUnsupported(f"opencl:{dev.index} has no float64")


def layout(x: CLArray, axes: tuple[int, ...]) -> Layout:
    """Read ``x`` reduced over ``axes`` as (A, N, B), copying it only when its layout needs it."""
    return direct_layout(x, axes) or _copied_layout(x, axes)


def direct_layout(x: CLArray, axes: tuple[int, ...]) -> Layout | None:
    """``x`` reduced over ``axes`` read in place as (A, N, B), or None where that needs a copy."""
    dims = [(n, s, i in axes, i) for i, (n, s) in enumerate(zip(x.shape, x.strides)) if n != 1]
    if x.buf is not None and all(s >= 0 for _, s, _, _ in dims):
        order = sorted(dims, key=lambda d: -d[1])  # memory order; stable, so ties keep logical order
        kept = [i for _, _, r, i in order if not r]
        if kept == sorted(kept):  # the output (row-major over kept axes) follows memory order
            groups: list[list] = []
            for n, s, r, _ in order:
                if groups and groups[-1][2] == r and groups[-1][1] == s * n:
                    groups[-1][0] *= n
                    groups[-1][1] = s
                else:
                    groups.append([n, s, r])
            kinds = tuple(g[2] for g in groups)
            if kinds in ((), (True,), (False,), (True, False), (False, True), (False, True, False)):
                return _from_groups(x, groups)
    return None


def _copied_layout(x: CLArray, axes: tuple[int, ...]) -> Layout:
    """Interleaved or reversed axes: ``x`` copied with the kept axes first, the reduced last."""
    a = math.prod(n for i, n in enumerate(x.shape) if i not in axes)
    n = math.prod(x.shape[i] for i in axes)
    if x.buf is None:  # empty: nothing is read
        return Layout(x, a, n, 1, 0, 0, 0)
    perm = [i for i in range(len(x.shape)) if i not in axes] + list(axes)
    view = x.view(tuple(x.shape[i] for i in perm), tuple(x.strides[i] for i in perm), x.offset)
    return Layout(contiguous(view), a, n, 1, n, 1, 0)


def _from_groups(x: CLArray, groups: list[list]) -> Layout:
    """The Layout of merged (size, stride, reduced) groups shaped [K] [R] [K]."""
    one = [1, 0, None]
    if len(groups) == 1 and not groups[0][2]:  # kept axes only (reduced ones have size 1): N = 1
        return Layout(x, 1, 1, groups[0][0], 0, 0, groups[0][1])
    if not groups or groups[0][2]:
        groups = [[1, 0, False]] + groups  # no leading kept group: A = 1
    head, rest = groups[0], groups[1:]
    mid = rest[0] if rest and rest[0][2] else one
    tail = rest[-1] if rest and not rest[-1][2] else one
    return Layout(x, head[0], mid[0], tail[0], head[1], mid[1], tail[1])


def identity(comb: int, dtype: np.dtype) -> str:
    """The identity of ``comb`` for the accumulator dtype, as an OpenCL C literal (no spaces:
    it travels as a -D build option)."""
    if comb in (SUM, OR):
        return "0"
    if comb in (PROD, AND):
        return "1"
    if dtype.kind == "f":
        return "-INFINITY" if comb == MAX else "INFINITY"
    info = np.iinfo(dtype) if dtype.kind in "iu" else np.iinfo(np.uint8)
    value = info.min if comb == MAX else info.max
    if value == np.iinfo(np.int64).min:
        return "(-9223372036854775807L-1)"
    if value == np.iinfo(np.int32).min:
        return "(-2147483647-1)"
    suffix = ("U" if dtype.kind == "u" and dtype.itemsize >= 4 else "") + ("L" if dtype.itemsize == 8 else "")
    return f"({value}{suffix})"


def row_plan(n: int, rows: int) -> tuple[int, int]:
    """(chunk, parts) of a row reduction: enough work-items for the cores, chunks within ROW_CHUNK."""
    lo, hi = ROW_CHUNK
    want = cdiv(TARGET, rows) if rows < TARGET else 1
    parts = max(1, cdiv(n, hi), min(want, cdiv(n, lo)))
    chunk = cdiv(cdiv(max(n, 1), parts), VW) * VW  # whole vectors per chunk
    return chunk, max(1, cdiv(n, chunk))


def col_plan(n: int, a: int, b: int) -> tuple[int, int, int]:
    """(chunk, parts, span) of a column reduction over ``n`` rows of ``b`` columns (``a`` times).

    Whole rows per work-item where they fit (span = B): a work-item's rows are then one
    contiguous run of memory, which the prefetchers follow; strips narrower than a row jump
    pages every few KiB and measured 4-5x slower. The cores get their work-items from chunks of
    rows, and from strips of columns only when there are too few rows."""
    span = min(b, MAX_SPAN)
    units = a * cdiv(b, span)
    want = cdiv(TARGET, units) if units < TARGET else 1
    least = max(COL_ROWS[0], cdiv(COL_ELEMS, span))  # enough work per work-item to pay for it
    if a * n * b <= SMALL:  # little data (e.g. the partials of a first pass): one pass, if it can
        least = max(least, n)
    chunk = min(max(cdiv(n, want), least), COL_ROWS[1])
    parts = max(1, cdiv(n, chunk))
    if units * parts < TARGET and b > MIN_SPAN:  # few rows: split the columns too
        strips = min(cdiv(TARGET, a * parts), cdiv(b, MIN_SPAN))
        span = cdiv(cdiv(b, strips), VW) * VW
    return chunk, parts, span


def run(dev: CLDevice, lay: Layout, out: CLArray, comb: int, mapping: int, acc: Any,
        div: float | None = None, center: CLArray | None = None) -> CLArray:
    """Enqueue ``out[a, b] = COMB_n MAP(x[a, n, b])`` (then divided by ``div`` if given) into ``out``.

    ``acc`` is the accumulator dtype (the same C type as ``out``'s); ``center`` (ACC, (A, B)
    row-major) is the c of MAP. Partials of one pass are reduced by the next, until one is left."""
    acc = np.dtype(acc)
    if out.buf is None:
        return out
    if ctype(acc) != ctype(out.dtype):
        raise ValueError(f"reductions accumulate in their output's C type, got {acc} for {out.dtype}")
    ident = identity(comb, acc)
    cbuf = center.buf if center is not None else None
    while True:
        x, a, n, b = lay.x, lay.a, lay.n, lay.b
        src, off = (x.buf, x.offset) if x.buf is not None else (out.buf, 0)  # n == 0: never read
        if b > 1:
            chunk, parts, span = col_plan(n, a, b)
        else:
            (chunk, parts), span = row_plan(n, a), 1
        final = parts == 1
        dst = out if final else dev.empty((a * parts * b,), acc)
        defines = (("T", ctype(x.dtype)), ("ACC", ctype(acc)), ("OUTT", ctype(acc)), ("COMB", str(comb)),
                   ("MAP", str(mapping)), ("FIN", "1" if final and div is not None else "0"), ("IDENT", ident),
                   ("IS_FLOAT", "1" if acc.kind == "f" else "0"))
        d = div if div is not None else 0
        if b > 1:
            kernel = dev.kernel("reduce.cl", "reduce_cols", defines)
            dev.launch(kernel, *grid(cdiv(b, span), parts, a), dst.buf, src, off, n, b,
                       lay.sa, lay.sn, lay.sb, chunk, parts, span, a, cbuf, d)
        else:
            kernel = dev.kernel("reduce.cl", "reduce_rows", defines)
            dev.launch(kernel, *grid(parts, a), dst.buf, src, off, n, lay.sa, lay.sn,
                       chunk, parts, a, cbuf, d)
        if final:
            return out
        # The partials are a contiguous (A, parts, B) array; the map was applied in the first pass.
        lay, mapping, cbuf = Layout(dst, a, parts, b, parts * b, b, 1), IDENTITY, None


def reduce(dev: CLDevice, x: CLArray, axes: tuple[int, ...], keepdims: bool, comb: int, mapping: int,
           acc: Any, out_dtype: Any, mean: bool = False) -> CLArray:
    """A new array: ``x`` reduced over ``axes`` (``mean``: divided by the count reduced).

    The launches of each layout are worked out once (``_plan``, see ``_plans``) and given
    this call's buffers."""
    supported(dev, x.dtype, acc, out_dtype)
    if x.buf is None:
        return _reduce(dev, x, axes, keepdims, comb, mapping, acc, out_dtype, mean)
    plan, (out_slot, shape, dtype) = _plan(dev, x.shape, x.dtype, x.strides, x.offset, tuple(axes), keepdims, comb,
                                           mapping, np.dtype(acc), np.dtype(out_dtype), mean)
    temps = dict(zip(plan.temps, replay(dev, plan, {_X: x.buf})))
    return CLArray(dev, temps.get(out_slot), shape, dtype)


_X = Slot("x")


@functools.lru_cache(maxsize=1024)
def _plan(dev: CLDevice, shape: tuple[int, ...], dtype: np.dtype, strides: tuple[int, ...], offset: int,
          axes: tuple[int, ...], keepdims: bool, comb: int, mapping: int, acc: np.dtype, out_dtype: np.dtype,
          mean: bool) -> tuple[Plan, tuple]:
    """The launches of ``reduce`` for an input of this layout, and its output's (slot among the
    plan's temporaries, or None for an empty output; shape; dtype)."""
    plan, out = record(dev, lambda rec: _reduce(rec, CLArray(rec, _X, shape, dtype, strides, offset), axes,
                                                keepdims, comb, mapping, acc, out_dtype, mean))
    return plan, (out.buf, out.shape, out.dtype)  # not the array: it would keep the recorder alive


def _reduce(dev: CLDevice, x: CLArray, axes: tuple[int, ...], keepdims: bool, comb: int, mapping: int,
            acc: Any, out_dtype: Any, mean: bool = False) -> CLArray:
    """``reduce`` without a plan."""
    out = output(dev, reduced_shape(x.shape, axes, keepdims), out_dtype)
    if out.buf is None:
        return out
    lay = direct_layout(x, axes)
    split = _trailing_first(x, axes) if lay is None else None
    if split is not None:
        # Reduced axes on both sides of kept ones (a conv bias gradient: N, H, W of NCHW): the
        # trailing ones first, read in place, then the smaller partial result, rather than a
        # reordered copy of all of x (1.5 ms of the CNN step's 70 on PoCL).
        trailing_lay, leading = split
        part = dev.empty(tuple(n for i, n in enumerate(x.shape) if i not in axes or i in leading), acc)
        run(dev, trailing_lay, part, comb, mapping, acc)
        count = math.prod(x.shape[i] for i in axes)
        return run(dev, layout(part, leading), out, comb, IDENTITY, acc, div=float(count) if mean else None)
    lay = lay or _copied_layout(x, axes)
    return run(dev, lay, out, comb, mapping, acc, div=float(lay.n) if mean else None)


def _trailing_first(x: CLArray, axes: tuple[int, ...]) -> tuple[Layout, tuple[int, ...]] | None:
    """Where the reduced axes after the last kept one can be read in place and reduce more than
    one element each: their layout, and the reduced axes before that kept one."""
    kept = [i for i, n in enumerate(x.shape) if i not in axes and n != 1]
    if not kept or x.buf is None:
        return None
    trailing = tuple(i for i in axes if i > kept[-1])
    leading = tuple(i for i in axes if i < kept[-1])
    if not leading or math.prod(x.shape[i] for i in trailing) < 2:
        return None
    lay = direct_layout(x, trailing)
    return (lay, leading) if lay is not None else None


def arg_reduce(dev: CLDevice, lay: Layout, out: CLArray, largest: bool) -> CLArray:
    """Enqueue the index of the first largest (smallest) element over n of each (a, b) into ``out``;
    a second launch picks among the chunks' winners (values and indices)."""
    x, a, n, b = lay.x, lay.a, lay.n, lay.b
    base = (("T", ctype(x.dtype)), ("ARG", "1" if largest else "2"), ("IS_FLOAT", "1" if x.dtype.kind == "f" else "0"),
            ("IT", "long" if x.dtype.itemsize == 8 else "int"))
    chunk, parts = row_plan(n, a * b)
    if parts == 1:
        kernel = dev.kernel("reduce.cl", "arg_reduce", base + (("PASS2", "0"), ("FINAL", "1")))
        dev.launch(kernel, *grid(b, 1, a), None, out.buf, x.buf, None, x.offset, n, b,
                   lay.sa, lay.sn, lay.sb, chunk, 1, a)
        return out
    vals, idx = dev.empty((a * parts * b,), x.dtype), dev.empty((a * parts * b,), np.int64)
    kernel = dev.kernel("reduce.cl", "arg_reduce", base + (("PASS2", "0"), ("FINAL", "0")))
    dev.launch(kernel, *grid(b, parts, a), vals.buf, idx.buf, x.buf, None, x.offset, n, b,
               lay.sa, lay.sn, lay.sb, chunk, parts, a)
    kernel = dev.kernel("reduce.cl", "arg_reduce", base + (("PASS2", "1"), ("FINAL", "1")))
    dev.launch(kernel, *grid(b, 1, a), None, out.buf, vals.buf, idx.buf, 0, parts, b,
               parts * b, b, 1, parts, 1, a)
    return out


SCAN_CHUNK = 4096  # rows a scan work-item takes before the scan splits into chunks


def scan(dev: CLDevice, x: CLArray, axis: int, out: CLArray, include_initial: bool) -> CLArray:
    """Enqueue the running sums of ``x`` along ``axis`` into ``out`` (a 0 row first with
    ``include_initial``), in ``out``'s dtype. Long axes with few rows split into chunks: each
    scanned alone, then offset by the sums of the chunks before it (three launches)."""
    if out.buf is None:
        return out
    x = contiguous(x)
    a, n, b = math.prod(x.shape[:axis]), x.shape[axis], math.prod(x.shape[axis + 1:])
    span = min(b, MAX_SPAN)
    strips = cdiv(b, span)
    chunks = 1
    if a * strips < TARGET and n > SCAN_CHUNK:
        chunks = min(cdiv(TARGET, a * strips), cdiv(n, SCAN_CHUNK))
    if a * strips * chunks < TARGET and b > MIN_SPAN:  # few rows: split the columns too
        strips = min(cdiv(TARGET, a * chunks), cdiv(b, MIN_SPAN))
        span = cdiv(cdiv(b, strips), VW) * VW
        strips = cdiv(b, span)
    chunk = cdiv(max(n, 1), chunks)
    chunks = max(1, cdiv(n, chunk))
    defines = (("SCAN", "1"), ("T", ctype(x.dtype)), ("ACC", ctype(out.dtype)), ("INIT", "1" if include_initial else "0"))
    src, off = (x.buf, x.offset) if x.buf is not None else (out.buf, 0)  # n == 0: never read
    dev.launch(dev.kernel("reduce.cl", "scan_chunks", defines), *grid(strips, chunks, a), out.buf, src, off,
               n, b, span, chunk, chunks, a)
    if chunks > 1:
        offs = dev.empty((a * chunks * b,), out.dtype)
        dev.launch(dev.kernel("reduce.cl", "scan_offsets", defines), *grid(b, a), offs.buf, out.buf, n, b,
                   chunk, chunks, a)
        dev.launch(dev.kernel("reduce.cl", "scan_add", defines), *grid(strips, chunks - 1, a), out.buf, offs.buf,
                   n, b, span, chunk, chunks, a)
    return out
