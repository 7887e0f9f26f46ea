"""OpenCL launchers of the complex64/complex128 ops (``kernels/opencl/complex.cl``).

``NATIVE`` names the ops that have a complex kernel here; the backend declares the same set
(``OpenCLBackend.complex_kernels``), and dispatch runs every other op that reads or makes
complex numbers on cpu. The real launchers hand complex inputs over: the binary ops from
``elementwise_binary`` (where they decline a complex computation dtype), the others through
:func:`with_complex` in the kernel table (``opencl_ops/__init__.py``).

Operands must already be of the result's complex dtype (a complex tensor with a complex
tensor of the same dtype, or with a Python scalar); anything else (a real tensor, complex64
with complex128) is declined with ``KernelUnsupported`` and falls back, counted. complex128
needs float64 on the device, as every float64 kernel does.

``sum`` and ``mean`` need no kernel of their own: a complex array read as a real one with a
trailing axis of two (its real and imaginary parts) goes through the real reduction engine.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyopencl.cltypes as cltypes
from tensorcore.backends.opencl import CLArray, CLDevice
from tensorcore.backends.opencl_ops import reduce_core
from tensorcore.backends.opencl_ops._common import output
from tensorcore.backends.opencl_ops.elementwise_launch import run
from tensorcore.backends.opencl_ops.matmul import new, vec

from tensorcore.errors import KernelUnsupported

# complex dtype -> (its real dtype, the kernels' R, the pair type of scalar arguments)
_PARTS = {
    np.dtype(np.complex64): (np.dtype(np.float32), "float", cltypes.float2),
    np.dtype(np.complex128): (np.dtype(np.float64), "double", cltypes.double2),
}
BINARY = frozenset({"add", "subtract", "multiply", "divide"})
UNARY = frozenset({"negative", "positive", "conj", "real", "imag", "abs"})
_REAL_RESULT = frozenset({"real", "imag", "abs"})
NATIVE = BINARY | UNARY | {"sum", "mean", "matmul"}

TILE = 4  # outputs per work-item along each matmul axis (CX_TILE in complex.cl)
MATMUL_LOCAL = (8, 8, 1)  # fixed work-group: PoCL compiles a kernel once per local size

_kernels: dict[tuple, Any] = {}  # (device, kernel name, dtype) -> kernel


def _kernel(dev: CLDevice, name: str, dtype: np.dtype) -> Any:
    """Kernel ``name`` of the complex program for ``dtype``; cached per device."""
    key = (dev, name, dtype)
    k = _kernels.get(key)
    if k is None:
        k = _kernels[key] = dev.kernel("complex.cl", name, (("R", _PARTS[dtype][1]),))
    return k


def check(dev: CLDevice, dtype: np.dtype) -> np.dtype:
    """The real dtype of complex ``dtype``; ``KernelUnsupported`` for a real dtype or for
    complex128 on a device without float64."""
    parts = _PARTS.get(dtype)
    if parts is None:
        raise KernelUnsupported(f"no complex kernels for {dtype}")
    if parts[0] == np.float64 and not dev.fp64:
        raise KernelUnsupported(f"opencl:{dev.index} has no float64, so no complex kernels for complex128")
    return parts[0]


def scalar_pair(value: Any, dtype: np.dtype) -> np.generic:
    """Python scalar ``value`` as a kernel argument of complex ``dtype`` (a float2/double2),
    rounded part by part as NumPy converts it."""
    real, _, pair = _PARTS[dtype]
    try:
        z = complex(value)
    except OverflowError:  # an int beyond float64: NumPy raises, let it
        raise KernelUnsupported(f"a Python int out of range for {dtype}") from None
    with np.errstate(over="ignore"):  # 1e300 with complex64 is inf, as in NumPy
        return np.array((real.type(z.real), real.type(z.imag)), pair)[()]


def binary(dev: CLDevice, name: str, a: Any, b: Any, c: np.dtype) -> CLArray:
    """Binary op ``name`` computing in complex ``c`` (``elementwise_binary`` already found
    ``c`` as NumPy's result type), broadcasting tensors and Python scalars."""
    if name not in BINARY:
        raise KernelUnsupported(f"{name}: no complex kernels on OpenCL")
    check(dev, c)
    for x in (a, b):
        if isinstance(x, CLArray) and x.dtype != c:
            raise KernelUnsupported(f"{name}: no complex kernels for {x.dtype} with {c} (they take one complex dtype)")
    a = a if isinstance(a, CLArray) else scalar_pair(a, c)
    b = b if isinstance(b, CLArray) else scalar_pair(b, c)
    shapes = [x.shape for x in (a, b) if isinstance(x, CLArray)]
    shape = shapes[0] if len(shapes) == 1 or shapes[0] == shapes[1] else tuple(np.broadcast_shapes(*shapes))
    out = output(dev, shape, c)
    return run(dev, lambda suffix: _kernel(dev, f"cx_{name}_{suffix}", c), out, (a, b), c)


def unary(dev: CLDevice, name: str, x: Any) -> CLArray:
    """Unary op ``name`` of a complex tensor: complex results (negative, positive, conj) or
    real ones in the precision's real dtype (real, imag, abs)."""
    if not isinstance(x, CLArray):
        raise KernelUnsupported(f"{name}: expected a tensor, got {type(x).__name__}")
    real = check(dev, x.dtype)
    out = output(dev, x.shape, real if name in _REAL_RESULT else x.dtype)
    return run(dev, lambda suffix: _kernel(dev, f"cx_{name}_{suffix}", x.dtype), out, (x,), x.dtype)


def _unary_launcher(name: str) -> Any:
    def launch(dev: CLDevice, x: Any) -> CLArray:
        return unary(dev, name, x)

    launch.__name__ = launch.__qualname__ = f"complex_{name}"
    launch.__doc__ = f"``{name}`` of a complex tensor on OpenCL."
    return launch


def _as_parts(x: CLArray) -> CLArray:
    """``x`` read as its real dtype with a trailing axis of 2 (real, imaginary): same buffer."""
    real = _PARTS[x.dtype][0]
    strides = tuple(2 * s for s in x.strides) + (1,)
    return CLArray(x.dev, x.buf, x.shape + (2,), real, strides, 2 * x.offset)


def _reduce_parts(dev: CLDevice, x: Any, axis: tuple[int, ...], keepdims: bool, dtype: Any, mean: bool) -> CLArray:
    if not isinstance(x, CLArray):
        raise KernelUnsupported("expected a tensor")
    if dtype is not None and np.dtype(dtype) != x.dtype:
        raise KernelUnsupported(f"no complex kernels summing {x.dtype} in {np.dtype(dtype)}")
    real = check(dev, x.dtype)
    nd = len(x.shape)
    axes = tuple(sorted({a % nd for a in axis})) if nd else ()  # the pair axis is never reduced
    parts = reduce_core.reduce(dev, _as_parts(x), axes, keepdims, reduce_core.SUM, reduce_core.IDENTITY,
                               real, real, mean=mean)
    # the engine's output is new and contiguous: its pairs are the complex results
    return CLArray(dev, parts.buf, parts.shape[:-1], x.dtype)


def sum_(dev: CLDevice, x: Any, *, axis: tuple[int, ...], keepdims: bool, dtype: Any) -> CLArray:
    """Complex sum over ``axis``: the real and imaginary parts summed by the real engine."""
    return _reduce_parts(dev, x, axis, keepdims, dtype, mean=False)


def mean(dev: CLDevice, x: Any, *, axis: tuple[int, ...], keepdims: bool) -> CLArray:
    """Complex mean over ``axis`` (NaN parts for an empty axis, as NumPy gives)."""
    return _reduce_parts(dev, x, axis, keepdims, None, mean=True)


def matmul(dev: CLDevice, x1: Any, x2: Any) -> CLArray:
    """NumPy's matmul of two complex tensors of one dtype: 1-D operands, broadcast batch
    dimensions, any strides."""
    if not (isinstance(x1, CLArray) and isinstance(x2, CLArray)) or x1.dtype != x2.dtype:
        raise KernelUnsupported("matmul: no complex kernels but for two complex tensors of one dtype")
    check(dev, x1.dtype)
    if not x1.shape or not x2.shape:
        raise KernelUnsupported("matmul of a 0-D array")  # the reference explains the error
    a = x1 if len(x1.shape) > 1 else x1.view((1,) + x1.shape, (0,) + x1.strides, x1.offset)
    b = x2 if len(x2.shape) > 1 else x2.view(x2.shape + (1,), x2.strides + (0,), x2.offset)
    (m, k), (k2, n) = a.shape[-2:], b.shape[-2:]
    if k != k2:
        raise KernelUnsupported("inner dimensions differ")  # the reference explains the error
    try:
        bshape = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    except ValueError:
        raise KernelUnsupported("batch dimensions do not broadcast") from None
    if len(bshape) > 8:
        raise KernelUnsupported("more than 8 batch dimensions")
    shape = bshape + ((m,) if len(x1.shape) > 1 else ()) + ((n,) if len(x2.shape) > 1 else ())
    out = new(dev, shape, x1.dtype)
    if out.buf is None:
        return out
    count = int(np.prod(bshape, dtype=np.int64)) if bshape else 1
    size = (_round_up(-(-n // TILE), MATMUL_LOCAL[0]), _round_up(-(-m // TILE), MATMUL_LOCAL[1]), count)
    dev.launch(_kernel(dev, "cx_matmul", x1.dtype), size, MATMUL_LOCAL,
               out.buf, a.buf, a.offset, a.strides[-2], a.strides[-1], vec(_batch_strides(a, bshape)),
               b.buf, b.offset, b.strides[-2], b.strides[-1], vec(_batch_strides(b, bshape)),
               vec(bshape, pad=1), len(bshape), m, n, k)
    return out


def _round_up(n: int, step: int) -> int:
    return max(step, -(-n // step) * step)


def _batch_strides(x: CLArray, bshape: tuple[int, ...]) -> tuple[int, ...]:
    """``x``'s strides over the broadcast batch shape: 0 where it has no such axis or size 1."""
    nb = len(x.shape) - 2
    lead = (0,) * (len(bshape) - nb)
    return lead + tuple(0 if d == 1 else s for d, s in zip(x.shape[:nb], x.strides[:nb]))


def with_complex(real_launcher: Any, complex_launcher: Any) -> Any:
    """A kernel-table entry that sends a complex first operand to ``complex_launcher`` and
    everything else to ``real_launcher`` (one dtype test per call)."""

    def launch(dev: CLDevice, x: Any, *args: Any, **attrs: Any) -> Any:
        if getattr(x, "dtype", None) in _PARTS:
            return complex_launcher(dev, x, *args, **attrs)
        return real_launcher(dev, x, *args, **attrs)

    launch.__name__ = launch.__qualname__ = getattr(real_launcher, "__name__", "launch")
    launch.__doc__ = real_launcher.__doc__
    return launch


# Entries of the kernel table: unary ops and reductions by name (binary ops go through
# elementwise_binary, which hands a complex computation over to :func:`binary`).
KERNELS: dict = {name: _unary_launcher(name) for name in UNARY}
KERNELS.update({"sum": sum_, "mean": mean, "matmul": matmul})
