"""CUDA launchers of the complex64/complex128 ops: the elementwise ones (``kernels/cuda/complex.cu``),
``sum``, ``mean`` and ``matmul``.

Compile-checked only: no GPU has run them yet. ``NATIVE`` names the ops with a complex kernel
here (the backend's ``complex_kernels`` must equal it); :func:`with_complex` makes the kernel
table entry of each pick the complex launcher for complex operands and the real one otherwise
(``cuda_ops/__init__.py``). Operands must already be of the result's complex dtype (a complex
tensor with one of the same dtype, or with a Python scalar); anything else raises
``KernelUnsupported`` and falls back to cpu, counted.

``sum`` and ``mean`` need no kernel of their own (as on OpenCL): a complex array read as a real
one with a trailing axis of two (its real and imaginary parts, the same memory) goes through
the real reductions of ``reduce.py``, over the same axes, and the result is read back as
complex. ``matmul`` is CuPy's (``cupy.matmul``: cuBLAS's cgemm/zgemm), not a kernel of ours.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops import elementwise, reduce
from tensorcore.backends.cuda_ops._common import contiguous_strides, elem_strides, is_array

from tensorcore.errors import KernelUnsupported

SOURCE = "complex.cu"
# complex dtype -> (its real dtype, the kernels' DTYPE)
_PARTS = {np.dtype(np.complex64): (np.dtype(np.float32), "float"),
          np.dtype(np.complex128): (np.dtype(np.float64), "double")}
BINARY = frozenset({"add", "subtract", "multiply", "divide"})
UNARY = frozenset({"negative", "positive", "conj", "real", "imag", "abs"})
_REAL_RESULT = frozenset({"real", "imag", "abs"})
REDUCTIONS = frozenset({"sum", "mean"})
NATIVE = BINARY | UNARY | REDUCTIONS | {"matmul"}

#: (source, defines) the launchers build: compiled by tests/test_cuda_compile.py.
VARIANTS = [(SOURCE, (("DTYPE", real),)) for _, real in _PARTS.values()]


def _defines(dtype: np.dtype) -> tuple[tuple[str, str], ...]:
    return (("DTYPE", _PARTS[dtype][1]),)


def _launch(dev: Any, name: str, dtype: np.dtype, out: Any, operands: tuple) -> Any:
    """Launch the layout variant of complex.cu's ``name`` (t, k, v per operand, as elementwise.cu)."""
    return elementwise._launch(dev, name, dtype, out, operands, source=SOURCE, build=_defines(dtype))


def _scalar(name: str, value: Any, dtype: np.dtype) -> np.generic:
    """A Python scalar as a complex kernel argument (NumPy's complex scalar: the pair by value)."""
    if not isinstance(value, (bool, int, float, complex)):
        raise KernelUnsupported(f"{name}: scalar operand {value!r}")
    try:
        with np.errstate(over="ignore"):
            return dtype.type(complex(value))
    except OverflowError:
        raise KernelUnsupported(f"{name}: scalar {value!r} out of range") from None


def binary(dev: Any, name: str, a: Any, b: Any) -> Any:
    """Binary op ``name`` on complex tensors of one dtype and Python scalars, broadcasting."""
    if name not in BINARY:
        raise KernelUnsupported(f"{name}: no complex kernels on CUDA")
    c, a, b, shape = elementwise.binary_operands(
        name, a, b, _PARTS, _scalar, "no complex kernels but for tensors of the result's complex dtype")
    return _launch(dev, f"cx_{name}", c, dev.empty(shape, c), (a, b))


def unary(dev: Any, name: str, x: Any) -> Any:
    """Unary op ``name`` of a complex tensor; real, imag and abs give the precision's real dtype."""
    if not is_array(x) or x.dtype not in _PARTS:
        raise KernelUnsupported(f"{name}: no complex kernels on CUDA for {getattr(x, 'dtype', x)!r}")
    dtype = np.dtype(x.dtype)
    out = dev.empty(tuple(x.shape), _PARTS[dtype][0] if name in _REAL_RESULT else dtype)
    return _launch(dev, f"cx_{name}", dtype, out, (x,))


def _as_parts(dev: Any, x: Any) -> Any:
    """``x`` read as its real dtype with a trailing axis of 2 (real, imaginary): the same memory.
    CuPy's strides are in bytes, so the complex ones stay as they are and the pair axis steps by
    one real; this works for any view (negative or zero strides included), where
    ``x.view(real)`` needs a contiguous last axis."""
    real = _PARTS[np.dtype(x.dtype)][0]
    shape = tuple(x.shape) + (2,)
    if 0 in shape:
        return dev.empty(shape, real)  # no memory to alias (as CUDADevice.view)
    return dev.cp.ndarray(shape, real, memptr=x.data, strides=tuple(x.strides) + (real.itemsize,))


def _as_complex(dev: Any, parts: Any, dtype: np.dtype) -> Any:
    """A new C-contiguous real array of shape ``S + (2,)`` read as complex ``dtype`` of shape ``S``."""
    shape = tuple(parts.shape[:-1])
    if 0 in shape:
        return dev.empty(shape, dtype)
    strides = tuple(s * dtype.itemsize for s in contiguous_strides(shape))
    return dev.cp.ndarray(shape, dtype, memptr=parts.data, strides=strides)


def _reduce_parts(dev: Any, op: str, x: Any, axis: tuple[int, ...] | None, keepdims: bool, dtype: Any,
                  mean: bool) -> Any:
    """``op`` (sum or mean) of complex ``x`` over ``axis``: the real reductions on its parts."""
    if not is_array(x) or x.dtype not in _PARTS:
        raise KernelUnsupported(f"{op}: no complex kernels on CUDA for {getattr(x, 'dtype', x)!r}")
    c = np.dtype(x.dtype)
    if dtype is not None and np.dtype(dtype) != c:
        raise KernelUnsupported(f"{op}: no complex kernels summing {c} in {np.dtype(dtype)}")
    nd = len(x.shape)
    # Explicit axes of x, never None (reduce's None would take the pair axis too).
    if axis is None:
        axes = tuple(range(nd))
    else:
        axes = tuple(sorted({a % nd for a in axis})) if nd else ()
    parts = reduce._reduce(dev, op, _as_parts(dev, x), axes, keepdims, reduce.SUM, mean=mean)
    # reduce's output is new and C-contiguous, of shape reduced_shape(x.shape) + (2,): its
    # pairs are the complex results.
    return _as_complex(dev, parts, c)


def sum_(dev: Any, x: Any, *, axis: tuple[int, ...], keepdims: bool, dtype: Any) -> Any:
    """Complex sum over ``axis`` in ``x``'s own dtype (``dtype`` None or that one): the real
    and imaginary parts summed by the real reduction kernels."""
    return _reduce_parts(dev, "sum", x, axis, keepdims, dtype, mean=False)


def mean(dev: Any, x: Any, *, axis: tuple[int, ...], keepdims: bool) -> Any:
    """Complex mean over ``axis`` (NaN parts for an empty axis, as NumPy gives)."""
    return _reduce_parts(dev, "mean", x, axis, keepdims, None, mean=True)


def matmul(dev: Any, x1: Any, x2: Any) -> Any:
    """NumPy's matmul of two complex tensors of one dtype (1-D operands, broadcast batch
    dimensions, any strides) by ``cupy.matmul``, i.e. cuBLAS's cgemm/zgemm.

    A well-kept library rather than a complex copy of ``matmul.cu``'s tiled GEMM. The operands
    are made at least 2-D here (views) so that CuPy always writes into an output allocated by
    ``dev.empty`` (the pool's out-of-memory retry, the peak statistic); the op's shape is then a
    view of it. CuPy's own temporaries (contiguous copies of strided operands) come from the
    same pool, without that retry.
    """
    if not (is_array(x1) and is_array(x2)) or x1.dtype != x2.dtype or x1.dtype not in _PARTS:
        raise KernelUnsupported("matmul: no complex kernels on CUDA but for two complex tensors of one dtype")
    c = np.dtype(x1.dtype)
    if not x1.shape or not x2.shape:
        raise KernelUnsupported("matmul of a 0-D array")  # the reference explains the error
    a = x1 if len(x1.shape) > 1 else dev.view(x1, (1,) + tuple(x1.shape), (0,) + elem_strides(x1))
    b = x2 if len(x2.shape) > 1 else dev.view(x2, tuple(x2.shape) + (1,), elem_strides(x2) + (0,))
    (m, k), (k2, n) = tuple(a.shape[-2:]), tuple(b.shape[-2:])
    if k != k2:
        raise KernelUnsupported("inner dimensions differ")  # the reference explains the error
    try:
        bshape = tuple(np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2])))
    except ValueError:
        raise KernelUnsupported("batch dimensions do not broadcast") from None
    full = bshape + (m, n)
    shape = bshape + ((m,) if len(x1.shape) > 1 else ()) + ((n,) if len(x2.shape) > 1 else ())
    if k == 0:
        out = dev.zeros(full, c)  # an empty sum: zeros, whatever cuBLAS does with k = 0
    else:
        out = dev.empty(full, c)
        if out.size:
            dev.cp.matmul(a, b, out=out)  # on the current stream: the device's (bind activates it)
    return out if shape == full else dev.view(out, shape, contiguous_strides(shape))


def _is_complex(x: Any) -> bool:
    return isinstance(x, complex) or (is_array(x) and x.dtype in _PARTS)


_COMPLEX_LAUNCHERS = {"sum": sum_, "mean": mean, "matmul": matmul}


def with_complex(name: str, real_launcher: Any) -> Any:
    """The kernel-table entry of ``name``: calls with a complex operand (a complex tensor or a
    Python complex; for the binary ops and matmul either one, else the first) go to this module's
    launcher, everything else to ``real_launcher``. One or two dtype tests per call, as on
    OpenCL (``opencl_ops/complex.with_complex``)."""
    def real(dev: Any, *args: Any, **attrs: Any) -> Any:
        if real_launcher is None:
            raise KernelUnsupported(f"{name}: no CUDA kernel for {[getattr(a, 'dtype', a) for a in args]!r}")
        return real_launcher(dev, *args, **attrs)

    if name in BINARY or name == "matmul":  # either operand may be the complex one
        two = matmul if name == "matmul" else (lambda dev, a, b: binary(dev, name, a, b))

        def launch(dev: Any, a: Any, b: Any) -> Any:
            if _is_complex(a) or _is_complex(b):
                return two(dev, a, b)
            return real(dev, a, b)
    else:
        complex_launcher = _COMPLEX_LAUNCHERS.get(name) or (lambda dev, x: unary(dev, name, x))

        def launch(dev: Any, x: Any, *args: Any, **attrs: Any) -> Any:  # type: ignore[misc]
            if _is_complex(x):
                return complex_launcher(dev, x, *args, **attrs)
            return real(dev, x, *args, **attrs)

    launch.__name__ = launch.__qualname__ = name
    launch.__doc__ = f"``{name}`` on CUDA: complex launchers for complex operands, else the real ones."
    return launch


def install(kernels: dict) -> None:
    """Put the complex launchers into the backend's kernel table ``kernels`` (in place)."""
    for name in sorted(NATIVE):
        kernels[name] = with_complex(name, kernels.get(name))
