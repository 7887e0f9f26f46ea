"""Dispatch's checks and messages: the dtype rules an op declares, the complex rule (which
devices run an op on complex numbers natively), and the errors that name the op and its
inputs. Apart from ``dispatch.py`` so that its hot loop reads in one screen; dispatch calls
these only off its success path or for ops that declare checks.
"""

from __future__ import annotations

from typing import Any

from tensorcore import registry
from tensorcore.device import Device
from tensorcore.dtypes import COMPLEX_SET, check_real
from tensorcore.errors import OpError
from tensorcore.ops.registry import Op, Spec
from tensorcore.tensor import Tensor

# Per device, the ops with complex kernels its backend declares (``complex_kernels``): True for
# every op (cpu: NumPy), False for none, or a frozenset of op names. Filled on first use,
# without a lock: two threads at worst store the same value.
_complex_native: dict[Device, bool | frozenset[str]] = {Device("cpu"): True}


def check_rule(op: Op, inputs: tuple, attrs: dict[str, Any]) -> None:
    """Raise ``op``'s rule's (``infer``) ``OpError`` if it refuses ``inputs``. Called only where no
    kernel ran (never on the success path), so that inputs no kernel accepts raise the op's own
    error: no fallback warning, copy or count, and no ``PlacementError`` hiding it (strict)."""
    if op.infer is None:
        return
    try:
        op.infer(*(spec_of(x) for x in inputs), **attrs)
    except OpError:
        raise
    except Exception:  # a rule that cannot judge these inputs: the cpu kernel will decide
        return


def check_dtypes(op: Op, inputs: tuple) -> None:
    """The dtype checks an op declares: ``real_only`` (no complex input) and ``float_only``
    (real or complex floating point)."""
    if op.real_only:
        for x in inputs:
            if type(x) is complex or (isinstance(x, Tensor) and x._data.dtype in COMPLEX_SET):
                check_real(op.name, inputs)  # raises, naming the input
    if op.float_only:
        for i, x in enumerate(inputs):
            if isinstance(x, Tensor) and x._data.dtype.kind not in "fc":
                raise OpError(
                    f"{op.name}: input {i} has dtype {x._data.dtype}, but {op.name} needs a "
                    f"floating-point tensor (float32 or float64); cast it with astype() first"
                )


def complex_involved(args: tuple, attrs: dict[str, Any]) -> bool:
    """Whether a kernel call reads or makes complex numbers: a complex input array or Python
    scalar, or a complex ``dtype`` attribute (``astype``, ``sum(dtype=...)``). Off cpu only:
    its cost (a set lookup per input) is paid by accelerator ops, never by cpu ones."""
    for a in args:
        dt = getattr(a, "dtype", None)
        if dt is None:
            if type(a) is complex:
                return True
        elif dt in COMPLEX_SET:
            return True
    return bool(attrs) and attrs.get("dtype") in COMPLEX_SET


def has_complex_kernel(dev: Device, name: str) -> bool:
    """Whether ``dev``'s backend declares a complex kernel for op ``name``: its ``complex_kernels``
    is True, or a set holding ``name``. The declaration is read once per device; the kernel may
    still decline some inputs (complex128 without float64) with ``KernelUnsupported``."""
    native = _complex_native.get(dev)
    if native is None:
        native = _complex_native[dev] = complex_ops_of(registry.get_backend(dev.type))
    return native is True or (native is not False and name in native)


def complex_ops_of(backend: Any) -> bool | frozenset[str]:
    """A backend's complex-kernel declaration, normalized: True (every op), False (none), or the
    frozenset of op names with complex kernels (an empty set is False)."""
    declared = getattr(backend, "complex_kernels", False)
    if isinstance(declared, bool):
        return declared
    return frozenset(declared) or False


def describe(x: Any) -> str:
    """A short description of an op input for error messages: ``float32[2, 3] on cpu:0``."""
    if isinstance(x, Tensor):
        return f"{x.dtype}{list(x.shape)} on {x._device}"
    return repr(x)


def spec_of(x: Any) -> Any:
    """The :class:`Spec` of a tensor (shape and dtype), or the Python scalar itself."""
    return Spec(tuple(x._data.shape), x._data.dtype) if isinstance(x, Tensor) else x


def explain(op: Op, inputs: tuple, attrs: dict[str, Any], dev: Device, exc: Exception) -> Exception:
    """Turn a kernel failure into an error naming the op, its inputs and what was expected."""
    if isinstance(exc, MemoryError):
        return exc
    if op.infer is not None:
        try:
            op.infer(*(spec_of(x) for x in inputs), **attrs)
        except OpError as rule_error:
            return rule_error
        except Exception:  # a rule that cannot judge these inputs explains nothing
            pass
    given = ", ".join(describe(x) for x in inputs)
    extra = f" with {attrs}" if attrs else ""
    return OpError(f"{op.name} failed on {dev} for inputs ({given}){extra}: {exc}")
