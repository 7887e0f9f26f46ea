"""CUDA launchers of the elementwise ops (``kernels/cuda/elementwise.cu``): unary float math,
the float predicates, binary arithmetic and comparisons with broadcasting and Python-scalar
operands, and the activations' backward ops.

Covered: float32 and float64, with every tensor operand of the computation dtype (NumPy 2's
``result_type``, Python scalars weakly typed). Everything else (integers, bools, mixed dtypes,
more than 8 dimensions) raises ``KernelUnsupported`` before anything is written, and the op
falls back to cpu as the placement policy says. The layout picks the kernel variant: ``t`` a
contiguous tensor of the output's shape, ``k`` a scalar argument, ``v`` any other view
(strides, 0 where it broadcasts, in a cached device descriptor: see ``CUDADevice.meta``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops._common import (
    BLOCK,
    FLOATS,
    MAX_DIMS,
    defines,
    elem_strides,
    grid_1d,
    i64,
    is_array,
    is_contiguous,
    size,
)

from tensorcore.errors import KernelUnsupported

SOURCE = "elementwise.cu"
BOOL = np.dtype(np.bool_)

UNARY = ("negative", "positive", "abs", "square", "reciprocal", "sqrt", "exp", "expm1", "log", "log1p", "log2",
         "log10", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
         "floor", "ceil", "trunc", "round", "sign", "relu", "sigmoid")
PREDICATES = ("isnan", "isinf", "isfinite")
BINARY = ("add", "subtract", "multiply", "divide", "maximum", "minimum", "pow", "atan2", "hypot", "copysign",
          "logaddexp")
COMPARISONS = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")

#: (source, defines) the launchers build: compiled by tests/test_cuda_compile.py.
VARIANTS = [(SOURCE, defines(t)) for t in FLOATS]


def _broadcast_strides(x: Any, shape: tuple[int, ...]) -> list[int]:
    lead = len(shape) - len(x.shape)
    return [0] * lead + [0 if n == 1 else s for n, s in zip(x.shape, elem_strides(x))]


def _launch(dev: Any, name: str, dtype: np.dtype, out: Any, operands: tuple, source: str = SOURCE,
            build: tuple[tuple[str, str], ...] | None = None) -> Any:
    """Launch the variant of ``name`` for ``operands`` (arrays of ``dtype`` or NumPy scalars):
    ``t`` (same shape, contiguous), ``k`` (a scalar) or ``v`` (a strided or broadcast view) per
    operand, from ``source`` built with ``build`` (default: elementwise.cu for ``dtype``)."""
    n = size(out.shape)
    if n == 0:
        return out
    shape = tuple(out.shape)
    flat = all(tuple(x.shape) == shape and is_contiguous(x) for x in operands if is_array(x))
    suffix = "".join(("t" if flat else "v") if is_array(x) else "k" for x in operands)
    args: list[Any] = [out, *operands]
    if not flat:
        if len(shape) > MAX_DIMS:
            raise KernelUnsupported(f"{name}: more than {MAX_DIMS} dimensions")
        meta = list(shape)
        for x in operands:
            if is_array(x):
                meta += _broadcast_strides(x, shape)
        args += [dev.meta(tuple(meta)), np.int32(len(shape))]
    args.append(i64(n))
    dev.launch(source, f"{name}_{suffix}", defines(dtype) if build is None else build, grid_1d(dev, n), (BLOCK,),
               tuple(args))
    return out


def _float_tensor(name: str, x: Any) -> np.dtype:
    if not is_array(x) or x.dtype not in FLOATS:
        raise KernelUnsupported(f"{name}: CUDA kernels take float32/float64 tensors")
    return np.dtype(x.dtype)


def unary(dev: Any, name: str, x: Any, kernel: str | None = None) -> Any:
    """Unary op ``name`` (kernel ``kernel``, default the op's name) on a float tensor."""
    dtype = _float_tensor(name, x)
    out = dev.empty(tuple(x.shape), BOOL if name in PREDICATES else dtype)
    return _launch(dev, kernel or name, dtype, out, (x,))


def _unary_launcher(name: str) -> Any:
    def launch(dev: Any, x: Any) -> Any:
        return unary(dev, name, x)

    launch.__name__ = launch.__qualname__ = name
    launch.__doc__ = f"``{name}`` on CUDA (float32/float64, any layout)."
    return launch


def gelu(dev: Any, x: Any, approximate: str = "none") -> Any:
    """GELU, exact (``erf``) or the tanh form."""
    if approximate not in ("none", "tanh"):
        raise KernelUnsupported(f"gelu: approximate={approximate!r}")
    return unary(dev, "gelu", x, "gelu" if approximate == "none" else "gelu_tanh")


def _scalar(name: str, value: Any, dtype: np.dtype) -> np.generic:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise KernelUnsupported(f"{name}: scalar operand {value!r}")
    try:
        with np.errstate(over="ignore"):
            return dtype.type(value)
    except OverflowError:
        raise KernelUnsupported(f"{name}: scalar {value!r} out of range") from None


def binary_operands(name: str, a: Any, b: Any, dtypes: Any, scalar: Any, refusal: str
                    ) -> tuple[np.dtype, Any, Any, tuple[int, ...]]:
    """(result dtype, a, b, broadcast shape) of a binary op's operands, Python scalars made
    ``scalar(name, value, dtype)``; ``KernelUnsupported`` (``refusal``) unless the result dtype
    is in ``dtypes`` and every tensor operand already has it."""
    if not (is_array(a) or is_array(b)):
        raise KernelUnsupported(f"{name}: no tensor operand")
    try:
        c = np.result_type(*(x.dtype if is_array(x) else x for x in (a, b)))
    except TypeError:
        raise KernelUnsupported(f"{name}: no common dtype") from None
    if c not in dtypes or any(is_array(x) and x.dtype != c for x in (a, b)):
        raise KernelUnsupported(f"{name}: {refusal}")
    a = a if is_array(a) else scalar(name, a, c)
    b = b if is_array(b) else scalar(name, b, c)
    try:
        shape = tuple(np.broadcast_shapes(*(tuple(x.shape) for x in (a, b) if is_array(x))))
    except ValueError:
        raise KernelUnsupported(f"{name}: shapes do not broadcast") from None  # the op's rule explains
    return c, a, b, shape


def binary(dev: Any, name: str, a: Any, b: Any, bool_out: bool = False) -> Any:
    """Binary op ``name`` on tensors or Python scalars, broadcasting; float32/float64 only."""
    c, a, b, shape = binary_operands(name, a, b, FLOATS, _scalar,
                                     "CUDA kernels compute float32/float64 on tensors of that dtype")
    out = dev.empty(shape, BOOL if bool_out else c)
    return _launch(dev, name, c, out, (a, b))


def _binary_launcher(name: str, bool_out: bool) -> Any:
    def launch(dev: Any, a: Any, b: Any) -> Any:
        return binary(dev, name, a, b, bool_out)

    launch.__name__ = launch.__qualname__ = name
    launch.__doc__ = f"``{name}`` on CUDA, broadcasting tensors and Python scalars (float32/float64)."
    return launch


def _backward(dev: Any, name: str, g: Any, s: Any) -> Any:
    """An activation's backward op on two float tensors of one shape and dtype."""
    if not (is_array(g) and is_array(s)) or tuple(g.shape) != tuple(s.shape) or g.dtype != s.dtype:
        raise KernelUnsupported(f"{name}: expected two tensors of one shape and dtype")
    dtype = _float_tensor(name, g)
    return _launch(dev, name, dtype, dev.empty(tuple(g.shape), dtype), (g, s))


def relu_backward(dev: Any, g: Any, y: Any) -> Any:
    """relu's gradient ``(y > 0) * g``."""
    return _backward(dev, "relu_backward", g, y)


def sigmoid_backward(dev: Any, g: Any, y: Any) -> Any:
    """sigmoid's gradient ``(1 - y) * y * g`` from its output ``y``."""
    return _backward(dev, "sigmoid_backward", g, y)


def gelu_backward(dev: Any, g: Any, x: Any, approximate: str = "none") -> Any:
    """gelu's gradient ``g * gelu'(x)``, exact or the tanh form."""
    if approximate not in ("none", "tanh"):
        raise KernelUnsupported(f"gelu_backward: approximate={approximate!r}")
    return _backward(dev, "gelu_backward" if approximate == "none" else "gelu_tanh_backward", g, x)


KERNELS: dict = {name: _unary_launcher(name) for name in UNARY + PREDICATES}
KERNELS.update({name: _binary_launcher(name, False) for name in BINARY})
KERNELS.update({name: _binary_launcher(name, True) for name in COMPARISONS})
KERNELS.update({"gelu": gelu, "relu_backward": relu_backward, "sigmoid_backward": sigmoid_backward,
                "gelu_backward": gelu_backward})
