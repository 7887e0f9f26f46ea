"""OpenCL launchers of the elementwise ops: unary math, predicates, rounding, clip, astype and
the forward activations here; binary ops, ``where`` and the activations' backward ops in
``elementwise_binary``. ``KERNELS`` registers them all.

Kernels live in ``kernels/opencl/elementwise.cl`` (one program per dtype: every unary op of
that dtype) and ``elementwise_binary.cl``. Result dtypes are the cpu reference's (NumPy 2);
where NumPy's loop would give a different dtype than the op's shape rule, or raise, the
launcher raises ``KernelUnsupported`` and the op visibly falls back to cpu.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorcore.backends.opencl import CLArray, CLDevice
from tensorcore.backends.opencl_ops import elementwise_binary
from tensorcore.backends.opencl_ops._common import output
from tensorcore.backends.opencl_ops.elementwise_launch import BOOL, cast_kernel, check, run, unary_kernel

from tensorcore.errors import KernelUnsupported

_FLOAT = "f"
_NUMERIC = "iuf"  # NumPy has no bool loop for these (it raises, or upcasts bool to int8)
_ALL = "biuf"

# op name -> (dtype kinds with a kernel, whether the output is bool)
UNARY: dict[str, tuple[str, bool]] = {
    **{name: (_ALL, True) for name in ("isnan", "isinf", "isfinite", "signbit", "logical_not")},
    **{name: (_ALL, False) for name in ("floor", "ceil", "trunc", "abs")},
    "round": (_NUMERIC, False),  # np.round(bool) gives float16
    "bitwise_invert": ("biu", False),
    **{name: (_NUMERIC, False) for name in ("negative", "positive", "sign", "square", "relu")},
    **{name: (_FLOAT, False) for name in (
        "reciprocal", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "sin", "cos", "tan",
        "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "sigmoid")},
}


def _tensor(name: str, x: Any) -> CLArray:
    if not isinstance(x, CLArray):
        raise KernelUnsupported(f"{name}: expected a tensor, got {type(x).__name__}")
    return x


def unary(dev: CLDevice, name: str, x: Any, kernel_name: str | None = None) -> CLArray:
    """Launch unary op ``name`` (kernel ``kernel_name``, default the op's name) on tensor ``x``."""
    x = _tensor(name, x)
    kinds, to_bool = UNARY.get(name, (_FLOAT, False))
    if x.dtype.kind not in kinds:
        raise KernelUnsupported(f"{name}: no OpenCL kernel for {x.dtype}")
    check(dev, x.dtype)
    out = output(dev, x.shape, BOOL if to_bool else x.dtype)
    kernel = kernel_name or name
    return run(dev, lambda suffix: unary_kernel(dev, f"{kernel}_{suffix}", x.dtype), out, (x,), x.dtype)


def _unary_launcher(name: str) -> Any:
    def launch(dev: CLDevice, x: Any) -> CLArray:
        return unary(dev, name, x)

    launch.__name__ = launch.__qualname__ = name
    launch.__doc__ = f"``{name}`` on OpenCL: one kernel over contiguous or strided ``x``."
    return launch


def gelu(dev: CLDevice, x: Any, approximate: str = "none") -> CLArray:
    """GELU, exact (``erf``) or the tanh approximation, as the cpu reference computes it."""
    if approximate not in ("none", "tanh"):
        raise KernelUnsupported(f"gelu: approximate={approximate!r}")
    return unary(dev, "gelu", x, "gelu" if approximate == "none" else "gelu_tanh")


def _bound(x: CLArray, value: Any, low: bool) -> np.generic:
    """A clip bound as a kernel argument of ``x.dtype``; None becomes the no-op extreme."""
    dt = x.dtype
    if dt.kind == "f":
        if value is None:
            value = -np.inf if low else np.inf
        if not isinstance(value, (int, float)):
            raise KernelUnsupported(f"clip: bound {value!r}")
        with np.errstate(over="ignore"):
            return dt.type(value)
    info = np.iinfo(dt)
    if value is None:
        return dt.type(info.min if low else info.max)
    if isinstance(value, float) or not isinstance(value, int):
        # np.clip(int tensor, 0.5, ...) computes in float64: not this op's rule (x's dtype)
        raise KernelUnsupported(f"clip: bound {value!r} with an {dt} tensor")
    value = int(value)
    # NumPy clips with a bound outside the dtype as with the dtype's extreme, as long as
    # that changes nothing; a bound that pushes every value out of range is left to it.
    if low and value < info.min or not low and value > info.max:
        value = info.min if low else info.max
    elif not info.min <= value <= info.max:
        raise KernelUnsupported(f"clip: bound {value} out of range for {dt}")
    return dt.type(value)


def clip(dev: CLDevice, x: Any, lo: Any = None, hi: Any = None) -> CLArray:
    """``minimum(maximum(x, lo), hi)`` with NaN propagation; Python-scalar bounds (or None)."""
    x = _tensor("clip", x)
    if x.dtype.kind not in _NUMERIC:
        raise KernelUnsupported(f"clip: no OpenCL kernel for {x.dtype}")
    check(dev, x.dtype)
    bounds = (_bound(x, lo, True), _bound(x, hi, False))
    out = output(dev, x.shape, x.dtype)
    return run(dev, lambda suffix: unary_kernel(dev, f"clip_{suffix}", x.dtype), out, (x,), x.dtype, bounds)


def astype(dev: CLDevice, x: Any, dtype: Any, copy: bool = True) -> CLArray:
    """``x`` cast to ``dtype`` as NumPy casts (float to int truncates; to bool is ``!= 0``).

    ``copy=False`` with the same dtype returns ``x`` itself, as NumPy returns its array.
    """
    x = _tensor("astype", x)
    dtype = np.dtype(dtype)
    check(dev, x.dtype, dtype)
    if dtype == x.dtype and not copy:
        return x
    out = output(dev, x.shape, dtype)
    return run(dev, lambda suffix: cast_kernel(dev, f"cast_{suffix}", x.dtype, dtype), out, (x,), x.dtype)


KERNELS: dict = {name: _unary_launcher(name) for name in UNARY}
KERNELS.update({"gelu": gelu, "clip": clip, "astype": astype})
KERNELS.update(elementwise_binary.KERNELS)
