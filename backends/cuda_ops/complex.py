"""CUDA launchers of the complex64/complex128 elementwise ops (``kernels/cuda/complex.cu``).

Compile-checked only: no GPU has run them yet. ``NATIVE`` names the ops with a complex kernel
here (the backend's ``complex_kernels`` must equal it); :func:`with_complex` makes the kernel
table entry of each pick the complex launcher for complex operands and the real one otherwise
(``cuda_ops/__init__.py``). Operands must already be of the result's complex dtype (a complex
tensor with one of the same dtype, or with a Python scalar); anything else raises
``KernelUnsupported`` and falls back to cpu, counted. Reductions and matmul have no complex
kernels on CUDA yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops import elementwise
from tensorcore.backends.cuda_ops._common import is_array

from tensorcore.errors import KernelUnsupported

SOURCE = "complex.cu"
# complex dtype -> (its real dtype, the kernels' DTYPE)
_PARTS = {np.dtype(np.complex64): (np.dtype(np.float32), "float"),
          np.dtype(np.complex128): (np.dtype(np.float64), "double")}
BINARY = frozenset({"add", "subtract", "multiply", "divide"})
UNARY = frozenset({"negative", "positive", "conj", "real", "imag", "abs"})
_REAL_RESULT = frozenset({"real", "imag", "abs"})
NATIVE = BINARY | UNARY

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


def _is_complex(x: Any) -> bool:
    return isinstance(x, complex) or (is_array(x) and x.dtype in _PARTS)


def with_complex(name: str, real_launcher: Any) -> Any:
    """The kernel-table entry of ``name``: complex operands (a complex tensor or Python complex)
    go to this module's launcher, everything else to ``real_launcher``."""
    if name in BINARY:
        def launch(dev: Any, a: Any, b: Any) -> Any:
            if _is_complex(a) or _is_complex(b):
                return binary(dev, name, a, b)
            return real_launcher(dev, a, b)
    else:
        def launch(dev: Any, x: Any) -> Any:  # type: ignore[misc]
            if _is_complex(x):
                return unary(dev, name, x)
            if real_launcher is None:
                raise KernelUnsupported(f"{name}: no CUDA kernel for {getattr(x, 'dtype', x)!r}")
            return real_launcher(dev, x)

    launch.__name__ = launch.__qualname__ = name
    launch.__doc__ = f"``{name}`` on CUDA: complex kernels for complex operands, else the real ones."
    return launch


def install(kernels: dict) -> None:
    """Put the complex launchers into the backend's kernel table ``kernels`` (in place)."""
    for name in sorted(NATIVE):
        kernels[name] = with_complex(name, kernels.get(name))
