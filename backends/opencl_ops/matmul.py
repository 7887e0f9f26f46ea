"""OpenCL launchers: matmul, linear and linear_backward_weight on one register-blocked GEMM.

The GEMM (``kernels/opencl/matmul.cl``) reads one operand, the *broadcast side*, in place
through its strides, and the other, the *vector side*, from column panels packed beforehand
(``pack_panels``, or an im2col packer in ``nn_conv``). ``C = A @ B`` can run either as is
(A broadcast, B packed) or transposed (``C.T = B.T @ A.T``: B broadcast, A packed, C written
through transposed strides); :func:`gemm` picks the orientation whose packing and tiling are
cheaper, so ``x @ w.T`` with a small batch packs the batch rather than the weight.

Only float32 and float64 (when the device has it) with matching input dtypes run here;
other dtypes raise ``KernelUnsupported`` and fall back to cpu.

Launch cost matters as much as the kernel for the MLP-sized products (a fraction of a
millisecond each): kernels get typed scalar arguments (``set_scalar_arg_dtypes``: untyped
NumPy scalars cost pyopencl ~5 µs each) and the long8 shape vectors are cached.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np
import pyopencl.cltypes as cltypes
from tensorcore.backends.opencl import CLArray, CLDevice, contiguous_strides
from tensorcore.backends.opencl_ops import optim
from tensorcore.backends.opencl_ops._common import ctype
from tensorcore.backends.opencl_ops._plans import Plan, Slot, record, replay
from tensorcore.backends.opencl_ops.movement import contiguous
from tensorcore.backends.opencl_ops.movement_copy import copy_of

from tensorcore.errors import KernelUnsupported

# A work-item's tile: MR rows by NR = 2 SIMD registers of columns, all of it in registers.
# With 512-bit registers (32 of them) 8 rows fit: 16 accumulators, 2 of B, 1 broadcast. With
# 256-bit ones (16 of them) 8 rows spill; 6 rows fit (12 + 2 + 1), and ran 1.6-1.8x faster than
# the 512-bit tile on an AVX2 CPU (float32 n=1024 matmul, family 23; docs/performance.md).
MR_BY_SIMD = {64: 8, 32: 6}
GROUP = 8  # row tiles per work-group: they share one packed B panel in cache
PACK_GROUP = 16  # work-items (k rows) per work-group of the packers
# Past LONG_K products per output, the GEMM sums in blocks of KBLOCK (as BLAS does): one
# running float32 sum over K = 10^6 was 80x less accurate than NumPy. Shorter sums keep the
# unblocked build, which is ~5-10% faster.
LONG_K, KBLOCK = 2048, 512

def new(dev: CLDevice, shape: tuple[int, ...], dtype: np.dtype) -> CLArray:
    """A new contiguous array (``dev.empty`` without its NumPy bookkeeping: this is per call)."""
    return CLArray(dev, dev.alloc(math.prod(shape) * dtype.itemsize), shape, dtype)


@functools.lru_cache(maxsize=4096)
def vec(values: tuple[int, ...], n: int = 8, pad: int = 0) -> Any:
    """``values`` padded with ``pad`` as an OpenCL long``n`` (cached: building one costs ~10 µs)."""
    values = tuple(values) + (pad,) * (n - len(values))
    if len(values) != n:
        raise KernelUnsupported(f"more than {n} dimensions")
    return (cltypes.make_long8 if n == 8 else cltypes.make_long4)(*values)


def vector_width(dev: CLDevice, dtype: np.dtype) -> int:
    """Elements of ``dtype`` in one of the device's SIMD registers (the kernels' VW)."""
    return dev.simd_bytes // np.dtype(dtype).itemsize


def panel_width(dev: CLDevice, dtype: np.dtype) -> int:
    """Columns of a packed panel (NR): two registers."""
    return 2 * vector_width(dev, dtype)


def tile_rows(dev: CLDevice) -> int:
    """Rows of a work-item's tile (MR)."""
    return MR_BY_SIMD[dev.simd_bytes]


def defines(dev: CLDevice, dtype: np.dtype) -> tuple:
    """Build options of the GEMM and conv sources for ``dtype`` on ``dev``."""
    return _defines(dev.simd_bytes, np.dtype(dtype))


@functools.cache
def _defines(simd_bytes: int, dtype: np.dtype) -> tuple:
    return (("T", ctype(dtype)), ("T_BITS", str(8 * dtype.itemsize)), ("VW", str(simd_bytes // dtype.itemsize)),
            ("MR", str(MR_BY_SIMD[simd_bytes])))


def check_float(dev: CLDevice, *arrays: Any) -> np.dtype:
    """The common float dtype of ``arrays`` (CLArrays, or None for an absent bias), or
    ``KernelUnsupported`` for anything the GEMM does not handle."""
    present = [a for a in arrays if a is not None]
    if not all(isinstance(a, CLArray) for a in present):
        raise KernelUnsupported("operands must be device arrays")
    dtype = present[0].dtype
    if any(a.dtype != dtype for a in present):
        raise KernelUnsupported(f"mixed dtypes {sorted({str(a.dtype) for a in present})}")
    if dtype not in (np.float32, np.float64) or (dtype == np.float64 and not dev.fp64):
        raise KernelUnsupported(f"no OpenCL GEMM for {dtype}")
    return dtype


class Mat(NamedTuple):
    """A batch of matrices in a buffer: element (batch, i, j) sits at
    ``off + batch offset + i * s0 + j * s1``; ``bstrides`` has one stride per dimension of
    the launch's batch shape (0 where the operand is broadcast)."""

    buf: Any
    off: int
    s0: int
    s1: int
    bstrides: tuple[int, ...] = ()

    def t(self) -> Mat:
        """The transposed matrices (same elements)."""
        return Mat(self.buf, self.off, self.s1, self.s0, self.bstrides)


def pack(dev: CLDevice, dtype: np.dtype, b: Mat, k: int, n: int, bshape: tuple[int, ...]) -> tuple[CLArray, tuple[int, ...]]:
    """Pack B (K x N per batch) into panels; returns the packed array and its batch strides
    over ``bshape`` (0 where B is broadcast, so a shared B is packed once)."""
    own = tuple(s if st else 1 for s, st in zip(bshape, b.bstrides))  # B's own batch shape
    count = math.prod(own)
    nr = panel_width(dev, dtype)
    size = -(-n // nr) * nr * k  # one packed matrix: whole panels
    out = new(dev, (max(count * size, 1),), dtype)
    strides = tuple(0 if d == 1 else st * size for d, st in zip(own, contiguous_strides(own)))
    if count and k and n:
        shape_args = (vec(own, 8, 1), vec(b.bstrides), len(own) if count > 1 else 0)
        if b.s0 == 1 and b.s1 != 1:  # columns contiguous: read down them, VW rows per work-item
            kern = dev.kernel("matmul.cl", "pack_panels_t", defines(dev, dtype))
            dev.launch(kern, (-(-k // vector_width(dev, dtype)), -(-n // nr), count), (1, 1, 1), out.buf, b.buf,
                       b.off, b.s1, k, n, *shape_args)
        else:
            kern = dev.kernel("matmul.cl", "pack_panels", defines(dev, dtype))
            dev.launch(kern, (-(-k // PACK_GROUP) * PACK_GROUP, -(-n // nr), count), (PACK_GROUP, 1, 1), out.buf,
                       b.buf, b.off, b.s0, b.s1, k, n, *shape_args)
    return out, strides




# The kernel's epilogues (ACT in matmul.cl): linear's and conv2d's activations
# (ops/_nn.EPILOGUES) and matmul_relu_backward's mask.
ACT = {None: 0, "relu": 1, "relu_backward": 2, "gelu": 3, "gelu_tanh": 4, "sigmoid": 5, "tanh": 6}
SGD = 7  # the epilogue of linear_weight_sgd_step: C - rate * (A @ B)


def run(dev: CLDevice, dtype: np.dtype, m: int, n: int, k1: int, k2: int, bshape: tuple[int, ...],
        a: Mat, a_sk1: int, packed: CLArray, packed_bstrides: tuple[int, ...], c: Mat, bias: Mat | None = None,
        accumulate: bool = False, split: int = 0, c_so: int = 0, activation: str | None = None,
        mask: Mat | None = None, panel_stride: int = 0, update: tuple | None = None) -> None:
    """Enqueue ``C = A @ B (+ bias)`` (``C += A @ B`` if ``accumulate``) with B already packed.

    A's element (batch, i, k1 * K2 + k2) is at ``a.off + i * a.s0 + k1 * a_sk1 + k2 * a.s1``.
    ``bias`` is read like C (strides 0 where it broadcasts). With ``split``, C's column j is
    at ``(j // split) * c_so + (j % split) * c.s1`` (blocks of columns, e.g. one per image).
    ``activation`` (a key of ``ACT``) is applied to each result as it is stored;
    ``"relu_backward"`` multiplies it by ``mask > 0``, ``mask`` read like C (one matrix, no split).
    Packed panels are ``panel_stride`` elements apart (default ``K1 * K2 * NR``: whole panels;
    more where each batch entry reads a slice of longer panels). With ``update`` = (learning
    rate buffer, its offset, its C type, this thread's error record), C holds a parameter and
    becomes ``C - rate * (A @ B)`` (the SGD epilogue), unless the record is set.
    """
    launch = _gemm_launch(dev, dtype, m, n, k1, k2, bshape, a, a_sk1, packed.buf, packed_bstrides, c, bias,
                          accumulate, split, c_so, activation, mask, panel_stride, update)
    if launch is not None:
        dev.launch(*launch)


def _gemm_launch(dev: CLDevice, dtype: np.dtype, m: int, n: int, k1: int, k2: int, bshape: tuple[int, ...],
                 a: Mat, a_sk1: int, packed_buf: Any, packed_bstrides: tuple[int, ...], c: Mat, bias: Mat | None,
                 accumulate: bool, split: int, c_so: int, activation: str | None, mask: Mat | None,
                 panel_stride: int = 0, update: tuple | None = None) -> tuple | None:
    """``run``'s launch as (kernel, global size, local size, *arguments), or None for an empty product."""
    if update is not None and (activation is not None or accumulate or bias is not None or bshape or split):
        raise ValueError("the SGD epilogue updates one matrix: no activation, bias, batch or split")
    if activation is not None and accumulate:
        raise ValueError("an activation applies to a finished product, not to one accumulated over launches")
    if (activation == "relu_backward") != (mask is not None) or (mask is not None and (bshape or split)):
        raise ValueError("relu_backward's epilogue takes a mask, for one matrix without a column split")
    count = math.prod(bshape)
    if not (m and n and count):
        return None
    rows = -(-m // tile_rows(dev))
    group = min(GROUP, 1 << (rows - 1).bit_length())  # 1, 2, 4 or 8: PoCL compiles once per size
    nr = panel_width(dev, dtype)
    b = bias if bias is not None else Mat(c.buf, 0, 0, 0, ())
    batched = count > 1
    act = (("ACT", str(SGD)), ("LRT", update[2])) if update is not None else (("ACT", str(ACT[activation])),)
    kern = dev.kernel("matmul.cl", "gemm", defines(dev, dtype) + (("KBLOCK", str(KBLOCK if k1 * k2 > LONG_K else 0)),)
                      + act)
    return (kern, (-(-rows // group) * group, -(-n // nr), count), (group, 1, 1),
            a.buf if a.buf is not None else c.buf, a.off, a.s0, a_sk1, a.s1,
            packed_buf, panel_stride or k1 * k2 * nr, c.buf, c.off, c.s0, c.s1, c_so, split or n,
            b.buf, b.off, b.s0, b.s1, int(bias is not None), int(accumulate or update is not None), m, n, k1, k2,
            vec(bshape, 8, 1) if batched else vec(()), len(bshape) if batched else 0,
            *((vec(a.bstrides), vec(packed_bstrides), vec(c.bstrides), vec(b.bstrides)) if batched else (vec(()),) * 4),
            *((mask.buf, mask.off, mask.s0, mask.s1) if mask is not None else (c.buf, 0, 0, 0)),
            *((update[0], update[1], update[3]) if update is not None else (c.buf, 0, dev.unguarded())))


def _cost(m: int, n: int, k: int, count: int, packs: int, vec_unit_stride: bool, a_unit_stride: bool,
          transposed_c: bool, nr: int, mr: int) -> float:
    """Rough cycle count of one orientation: tile FMAs and stores for ``count`` products,
    packing ``packs`` vector-side matrices (fewer when that side is broadcast)."""
    mp, np_ = -(-m // mr) * mr, -(-n // nr) * nr
    tiles = mp * np_ * k / nr  # two FMAs of VW = nr / 2 lanes per cycle
    if not a_unit_stride and k > 256:
        # the broadcast side read down its columns: one cache line per k, at the row stride,
        # which for long k aliases in L1 and L2 (measured: 0.6x at M=512, N=128, K=784)
        tiles *= 1.6
    store = m * n if transposed_c else 0  # scalar stores through a strided C
    packing = k * np_ * (0.5 if vec_unit_stride else 1.0)  # vector copies vs. scattered stores
    return count * (tiles + store) + packs * packing


def gemm(dev: CLDevice, dtype: np.dtype, m: int, n: int, k: int, bshape: tuple[int, ...],
         a: Mat, b: Mat, c: Mat, bias: Mat | None = None, activation: str | None = None,
         mask: Mat | None = None) -> None:
    """Enqueue ``C = activation(A @ B (+ bias))`` for strided A (M x K), B (K x N) and C, batched
    over ``bshape``; packs whichever operand is cheaper to pack (see the module docstring).

    The launches of each layout are worked out once (``_plan``) and only given this call's
    buffers: the same products come back every training step."""
    if a.buf is None or b.buf is None or c.buf is None:  # an empty operand: nothing to plan for
        return _gemm(dev, dtype, m, n, k, bshape, a, b, c, bias, activation, mask)
    plan = _plan(dev, dev.simd_bytes, dtype, m, n, k, bshape, a[1:], b[1:], c[1:],
                 bias[1:] if bias is not None else None, activation, mask[1:] if mask is not None else None)
    replay(dev, plan, {_A: a.buf, _B: b.buf, _C: c.buf, _BIAS: bias.buf if bias is not None else None,
                       _MASK: mask.buf if mask is not None else None})


def _gemm(dev: CLDevice, dtype: np.dtype, m: int, n: int, k: int, bshape: tuple[int, ...],
          a: Mat, b: Mat, c: Mat, bias: Mat | None = None, activation: str | None = None,
          mask: Mat | None = None, update: tuple | None = None) -> None:
    """``gemm`` without a plan: it works out and enqueues its launches (``update``: see ``run``)."""
    count = math.prod(bshape)
    nr = panel_width(dev, dtype)
    b_count = math.prod([s for s, st in zip(bshape, b.bstrides) if st])
    a_count = math.prod([s for s, st in zip(bshape, a.bstrides) if st])
    mr = tile_rows(dev)
    normal = _cost(m, n, k, count, b_count, b.s1 == 1, a.s1 == 1, c.s1 != 1, nr, mr)
    flipped = _cost(n, m, k, count, a_count, a.s0 == 1, b.s0 == 1, c.s0 != 1, nr, mr)
    if flipped < normal:  # C.T = B.T @ A.T
        m, n, a, b, c = n, m, b.t(), a.t(), c.t()
        bias = bias.t() if bias is not None else None
        mask = mask.t() if mask is not None else None
    packed, pstrides = pack(dev, dtype, b, k, n, bshape)
    run(dev, dtype, m, n, 1, k, bshape, a, 0, packed, pstrides, c, bias, activation=activation, mask=mask,
        update=update)


_A, _B, _C, _BIAS, _MASK = (Slot(n) for n in ("A", "B", "C", "bias", "mask"))


@functools.lru_cache(maxsize=1024)
def _plan(dev: CLDevice, simd_bytes: int, dtype: np.dtype, m: int, n: int, k: int, bshape: tuple[int, ...],
          a: tuple, b: tuple, c: tuple, bias: tuple | None, activation: str | None, mask: tuple | None) -> Plan:
    """The launches of ``gemm`` for operands of these layouts (each a ``Mat`` without its buffer)
    on ``dev`` with registers of ``simd_bytes`` (in the key: the tile and its build follow it)."""
    return record(dev, lambda rec: _gemm(rec, dtype, m, n, k, bshape, Mat(_A, *a), Mat(_B, *b), Mat(_C, *c),
                                         Mat(_BIAS, *bias) if bias is not None else None, activation,
                                         Mat(_MASK, *mask) if mask is not None else None))[0]


def _mat(x: CLArray, bshape: tuple[int, ...]) -> Mat:
    """A (..., rows, cols) array as a Mat over the broadcast batch shape ``bshape``."""
    nb = len(x.shape) - 2
    lead = len(bshape) - nb
    bstrides = (0,) * lead + tuple(0 if d == 1 else s for d, s in zip(x.shape[:nb], x.strides[:nb]))
    return Mat(x.buf, x.offset, x.strides[-2], x.strides[-1], bstrides)


def matmul(dev: CLDevice, x1: CLArray, x2: CLArray) -> CLArray:
    """NumPy's matmul: 1-D operands, broadcast batch dimensions, any strides."""
    dtype = check_float(dev, x1, x2)
    if not x1.shape or not x2.shape:
        raise KernelUnsupported("matmul of a 0-D array")  # the reference explains the error
    a = x1 if len(x1.shape) > 1 else x1.view((1,) + x1.shape, (0,) + x1.strides, x1.offset)
    b = x2 if len(x2.shape) > 1 else x2.view(x2.shape + (1,), x2.strides + (0,), x2.offset)
    m, k = a.shape[-2:]
    k2, n = b.shape[-2:]
    if len(a.shape) == 2 and len(b.shape) == 2:
        bshape: tuple[int, ...] = ()
    else:
        try:
            bshape = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
        except ValueError:
            raise KernelUnsupported("batch dimensions do not broadcast") from None
    if k != k2:
        raise KernelUnsupported("inner dimensions differ")  # the reference explains the error
    shape = bshape + ((m,) if len(x1.shape) > 1 else ()) + ((n,) if len(x2.shape) > 1 else ())
    out = new(dev, shape, dtype)
    if out.buf is not None:
        c = Mat(out.buf, 0, n, 1, contiguous_strides(bshape + (m * n,))[:-1])
        gemm(dev, dtype, m, n, k, bshape, _mat(a, bshape), _mat(b, bshape), c)
    return out


def _rows(x: CLArray) -> CLArray:
    """``x`` as a 2-D (rows, last dim) view, copying only if its layout needs it."""
    if len(x.shape) == 2:
        return x
    if len(x.shape) == 1:
        return x.view((1,) + x.shape, (0,) + x.strides, x.offset)
    if not x.is_contiguous:
        x = contiguous(x)
    return x.view((math.prod(x.shape[:-1]), x.shape[-1]), (x.shape[-1], 1), x.offset)


def linear(dev: CLDevice, x: CLArray, weight: CLArray, bias: CLArray | None = None,
           activation: str | None = None) -> CLArray:
    """``activation(x @ weight.T + bias)`` in one GEMM, the bias added and the activation
    applied as the tiles are stored."""
    dtype = check_float(dev, x, weight, bias)
    if len(weight.shape) != 2 or not x.shape or x.shape[-1] != weight.shape[1] or (
            bias is not None and bias.shape != weight.shape[:1]):
        raise KernelUnsupported("bad shapes")  # the reference explains the error
    x2 = _rows(x)
    m, k = x2.shape
    n = weight.shape[0]
    out = new(dev, tuple(x.shape[:-1]) + (n,), dtype)
    if out.buf is not None:
        b = None if bias is None else Mat(bias.buf, bias.offset, 0, bias.strides[0])
        gemm(dev, dtype, m, n, k, (), Mat(x2.buf, x2.offset, x2.strides[0], x2.strides[1]),
             Mat(weight.buf, weight.offset, weight.strides[1], weight.strides[0]), Mat(out.buf, 0, n, 1), b,
             activation)
    return out


def linear_backward_weight(dev: CLDevice, g: CLArray, x: CLArray) -> CLArray:
    """``g.T @ x`` over all leading dimensions: (out_features, in_features)."""
    dtype = check_float(dev, g, x)
    if not g.shape or not x.shape or g.shape[:-1] != x.shape[:-1]:
        raise KernelUnsupported("bad shapes")
    g2, x2 = _rows(g), _rows(x)
    k = g2.shape[0]
    m, n = g2.shape[1], x2.shape[1]
    out = new(dev, (m, n), dtype)
    if out.buf is not None:
        gemm(dev, dtype, m, n, k, (), Mat(g2.buf, g2.offset, g2.strides[1], g2.strides[0]),
             Mat(x2.buf, x2.offset, x2.strides[0], x2.strides[1]), Mat(out.buf, 0, n, 1))
    return out


def matmul_relu_backward(dev: CLDevice, x1: CLArray, x2: CLArray, y: CLArray) -> CLArray:
    """``relu_backward(x1 @ x2, y)`` for 2-D operands in one GEMM: each value of the product
    times ``y > 0`` as the tile is stored."""
    dtype = check_float(dev, x1, x2, y)
    if len(x1.shape) != 2 or len(x2.shape) != 2 or x1.shape[1] != x2.shape[0] or \
            tuple(y.shape) != (x1.shape[0], x2.shape[1]):
        raise KernelUnsupported("bad shapes")  # the reference explains the error
    (m, k), n = x1.shape, x2.shape[1]
    out = new(dev, (m, n), dtype)
    if out.buf is not None:
        gemm(dev, dtype, m, n, k, (), Mat(x1.buf, x1.offset, *x1.strides), Mat(x2.buf, x2.offset, *x2.strides),
             Mat(out.buf, 0, n, 1), activation="relu_backward", mask=Mat(y.buf, y.offset, *y.strides))
    return out


def linear_weight_sgd_step(dev: CLDevice, param: CLArray, g: CLArray, x: CLArray, lr: Any,
                           step: CLArray | None = None) -> None:
    """``param -= rate * (g.T @ x)`` (over all leading dimensions) in one GEMM whose epilogue
    updates each tile of ``param`` as it is stored, the gradient never written; ``step``, if given,
    advanced by one. As ``_linear_weight_sgd_step``; nothing is written while this thread's error
    record is set (an earlier kernel found bad input)."""
    dtype = check_float(dev, param, g, x)
    if not g.shape or not x.shape or g.shape[:-1] != x.shape[:-1] or \
            tuple(param.shape) != (g.shape[-1], x.shape[-1]):
        raise KernelUnsupported("bad shapes")  # the reference explains the error
    optim._state(param, [])
    acc = optim._acc(dev, dtype)
    lr_buf, lr_off, step_buf, step_off, has_step = optim._lr_and_step(dev, lr, step, acc)
    # an operand in the parameter's memory (a view of it) is read from a copy: the GEMM writes
    # the parameter while it reads its operands
    g, x = (copy_of(a) if a.buf is not None and a.buf is param.buf else a for a in (g, x))
    g2, x2 = _rows(g), _rows(x)
    k, (m, n) = g2.shape[0], param.shape
    guard = dev.error_guard()
    if m and n:
        _gemm(dev, dtype, m, n, k, (), Mat(g2.buf, g2.offset, g2.strides[1], g2.strides[0]),
              Mat(x2.buf, x2.offset, x2.strides[0], x2.strides[1]), Mat(param.buf, param.offset, *param.strides),
              update=(lr_buf, lr_off, ctype(acc), guard))
    if has_step:  # after the GEMM, whose allocation may fail: a step is counted once it is queued
        optim.count_step(dev, step_buf, step_off, acc, guard)


KERNELS: dict = {"matmul": matmul, "linear": linear, "linear_backward_weight": linear_backward_weight,
                 "matmul_relu_backward": matmul_relu_backward, "linear_weight_sgd_step": linear_weight_sgd_step}
