"""OpenCL launchers of the binary elementwise ops (broadcasting, Python-scalar operands),
``where``, and the backward ops of relu, sigmoid and gelu.

The computation dtype is NumPy's ``result_type`` of the operands (Python scalars weakly
typed); the kernels convert both inputs to it. Ops whose NumPy loop gives another dtype for
some inputs (``divide`` on integers gives float64, bool ``subtract`` raises, ...) decline
those inputs with ``KernelUnsupported``, so the cpu reference decides there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorcore.backends.opencl import CLArray, CLDevice
from tensorcore.backends.opencl_ops import complex as complex_ops
from tensorcore.backends.opencl_ops._common import output
from tensorcore.backends.opencl_ops.elementwise_launch import BOOL, binary_kernel, check, run, scalar_arg, scalar_dtype

from tensorcore.errors import KernelUnsupported

_ALL, _NUMERIC, _FLOAT, _INTEGER = "biuf", "iuf", "f", "iu"

# op name -> (kinds of the computation dtype with a kernel, whether the output is bool)
BINARY: dict[str, tuple[str, bool]] = {
    **{name: (_ALL, False) for name in ("add", "multiply", "maximum", "minimum")},
    **{name: (_NUMERIC, False) for name in ("subtract", "pow", "floor_divide", "remainder")},
    **{name: (_FLOAT, False) for name in ("divide", "atan2", "hypot", "logaddexp", "copysign", "nextafter")},
    **{name: ("biu", False) for name in ("bitwise_and", "bitwise_or", "bitwise_xor")},
    **{name: (_INTEGER, False) for name in ("bitwise_left_shift", "bitwise_right_shift")},
    **{name: (_ALL, True) for name in (
        "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
        "logical_and", "logical_or", "logical_xor")},
}
_COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}
_WIDE_INTS = {np.dtype(np.int64), np.dtype(np.uint64)}


def _shape(*xs: Any) -> tuple[int, ...]:
    """The broadcast shape of the tensor operands (fast when they agree)."""
    shapes = [x.shape for x in xs if isinstance(x, CLArray)]
    first = shapes[0]
    if all(s == first for s in shapes):
        return first
    return tuple(np.broadcast_shapes(*shapes))  # a ValueError here is explained by the op's rule


def _result_type(name: str, *xs: Any) -> np.dtype:
    try:
        return np.result_type(*(scalar_dtype(x) for x in xs))
    except TypeError:
        raise KernelUnsupported(f"{name}: no common dtype") from None


def binary(dev: CLDevice, name: str, a: Any, b: Any) -> CLArray:
    """Launch binary op ``name`` on tensors or Python scalars ``a`` and ``b``, broadcasting."""
    kinds, to_bool = BINARY[name]
    if not (isinstance(a, CLArray) or isinstance(b, CLArray)):
        raise KernelUnsupported(f"{name}: no tensor operand")
    c = _result_type(name, a, b)
    if c.kind not in kinds:
        if c.kind == "c":  # complex kernels of their own (opencl_ops/complex.py); no cost to real ops
            return complex_ops.binary(dev, name, a, b, c)
        raise KernelUnsupported(f"{name}: no OpenCL kernel computing in {c}")
    tensors = [x.dtype for x in (a, b) if isinstance(x, CLArray)]
    check(dev, c, *tensors)
    if name == "pow" and c.kind in "iu":
        # NumPy raises for negative integer exponents; only the cpu can tell the user
        if isinstance(b, CLArray) and b.dtype.kind == "i" or not isinstance(b, CLArray) and b < 0:
            raise KernelUnsupported("pow: integer exponents that may be negative")
    if name in _COMPARISONS and len(tensors) == 2 and set(tensors) == _WIDE_INTS:
        raise KernelUnsupported(f"{name}: int64 with uint64 (NumPy compares them exactly)")
    # convert scalars before allocating: an out-of-range Python int is declined here
    a = a if isinstance(a, CLArray) else scalar_arg(a, c)
    b = b if isinstance(b, CLArray) else scalar_arg(b, c)
    out = output(dev, _shape(a, b), BOOL if to_bool else c)
    ta = a.dtype if isinstance(a, CLArray) else c
    tb = b.dtype if isinstance(b, CLArray) else c
    return run(dev, lambda suffix: binary_kernel(dev, f"{name}_{suffix}", ta, tb, c), out, (a, b), c)


def _binary_launcher(name: str) -> Any:
    def launch(dev: CLDevice, a: Any, b: Any) -> CLArray:
        return binary(dev, name, a, b)

    launch.__name__ = launch.__qualname__ = name
    launch.__doc__ = f"``{name}`` on OpenCL, broadcasting tensors and Python scalars."
    return launch


def where(dev: CLDevice, cond: Any, x: Any, y: Any) -> CLArray:
    """Elements of ``x`` where the bool tensor ``cond`` is true, else of ``y`` (broadcasting;
    ``x`` and ``y`` may be Python scalars)."""
    if not isinstance(cond, CLArray) or cond.dtype != BOOL:
        raise KernelUnsupported("where: the condition must be a bool tensor")
    c = _result_type("where", x, y)
    check(dev, c, *(v.dtype for v in (x, y) if isinstance(v, CLArray)))
    x = x if isinstance(x, CLArray) else scalar_arg(x, c)
    y = y if isinstance(y, CLArray) else scalar_arg(y, c)
    out = output(dev, _shape(cond, x, y), c)
    ta = x.dtype if isinstance(x, CLArray) else c
    tb = y.dtype if isinstance(y, CLArray) else c
    return run(dev, lambda suffix: binary_kernel(dev, f"where_{suffix}", ta, tb, c), out, (cond, x, y), c)


def _backward(dev: CLDevice, name: str, g: Any, s: Any, kinds: str, out_dtype: Any) -> CLArray:
    """An activation's backward op on two tensors of one shape (the op's rule demands it)."""
    if not (isinstance(g, CLArray) and isinstance(s, CLArray)) or g.shape != s.shape:
        raise KernelUnsupported(f"{name}: expected two tensors of one shape")
    c = np.result_type(g.dtype, s.dtype)
    # the cpu reference writes into a buffer of one input's dtype; elsewhere its dtype differs
    # from the rule's result_type, so those inputs go to cpu
    if c.kind not in kinds or g.dtype.kind not in kinds or s.dtype.kind not in kinds or c != out_dtype:
        raise KernelUnsupported(f"{name}: no OpenCL kernel for {g.dtype} and {s.dtype}")
    check(dev, c, g.dtype, s.dtype)
    out = output(dev, g.shape, c)
    return run(dev, lambda suffix: binary_kernel(dev, f"{name}_{suffix}", g.dtype, s.dtype, c), out, (g, s), c)


def relu_backward(dev: CLDevice, g: Any, y: Any) -> CLArray:
    """relu's gradient ``(y > 0) * g``; g's dtype must be the result dtype (as on cpu)."""
    return _backward(dev, "relu_backward", g, y, "biuf", getattr(g, "dtype", None))


def sigmoid_backward(dev: CLDevice, g: Any, y: Any) -> CLArray:
    """sigmoid's gradient ``(1 - y) * y * g`` from its output ``y`` (floats; y's dtype as on cpu)."""
    return _backward(dev, "sigmoid_backward", g, y, "f", getattr(y, "dtype", None))


def gelu_backward(dev: CLDevice, g: Any, x: Any, approximate: str = "none") -> CLArray:
    """gelu's gradient ``g * gelu'(x)``, exact or the tanh form (floats)."""
    if approximate not in ("none", "tanh"):
        raise KernelUnsupported(f"gelu_backward: approximate={approximate!r}")
    kernel = "gelu_backward" if approximate == "none" else "gelu_tanh_backward"
    if not (isinstance(g, CLArray) and isinstance(x, CLArray)) or g.shape != x.shape:
        raise KernelUnsupported("gelu_backward: expected two tensors of one shape")
    c = np.result_type(g.dtype, x.dtype)
    if c.kind != "f" or g.dtype.kind != "f" or x.dtype.kind != "f":
        raise KernelUnsupported(f"gelu_backward: no OpenCL kernel for {g.dtype} and {x.dtype}")
    check(dev, c)
    out = output(dev, g.shape, c)
    return run(dev, lambda suffix: binary_kernel(dev, f"{kernel}_{suffix}", g.dtype, x.dtype, c), out, (g, x), c)


KERNELS: dict = {name: _binary_launcher(name) for name in BINARY}
KERNELS.update({"where": where, "relu_backward": relu_backward, "sigmoid_backward": sigmoid_backward,
                "gelu_backward": gelu_backward})
