"""Creation functions: asarray, zeros, ones, full, empty, arange, linspace, eye, ``*_like``,
meshgrid, tril, triu and from_dlpack.

``zeros``, ``ones``, ``full``, ``empty``, ``arange``, ``eye`` and the ``*_like`` functions ask the
device's backend for the new array (``Backend.full``, ``arange``, ``eye``): the OpenCL and CUDA
backends allocate and fill it on the device, so a tensor too big for the device raises
``tc.OutOfMemoryError`` naming it, with no host array of that size and no copy; a backend
without these methods gets the contract's default (NumPy on the host, then ``from_numpy``).
On ``cpu`` NumPy builds the array. ``asarray``, ``linspace`` and ``from_dlpack`` build on
the host and copy in, as does every complex tensor off ``cpu`` (no device has complex kernels
yet: a complex tensor is stored there as it is). These functions are not ops: under
``tc.function`` the tensors they make become constants of the graph (``graph/trace.py``), as
before.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tensorcore import dtypes, registry
from tensorcore.device import Device, current_device, resolve
from tensorcore.dispatch import apply, transfer, wrap
from tensorcore.errors import OpError, OutOfMemoryError
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor


def _device(device: Any) -> Device:
    return current_device() if device is None else resolve(device)


def from_host(array: np.ndarray, device: Any = None) -> Tensor:
    """Wrap a host array as a tensor on ``device`` (cpu shares memory; others copy)."""
    dev = _device(device)
    data = array if dev.type == "cpu" else registry.get_backend(dev.type).from_numpy(np.require(array, requirements="C"), dev.index)
    return wrap(data, dev)


_SUPPORTED = frozenset(dtypes.ALL)


def _is_python_data(obj: Any) -> bool:
    """Whether ``obj`` is Python scalars, possibly nested in lists and tuples (no arrays)."""
    if isinstance(obj, (bool, int, float, complex)):
        return True
    return isinstance(obj, (list, tuple)) and all(_is_python_data(v) for v in obj)


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> Tensor:
    """A tensor from a tensor, NumPy array, DLPack object, Python scalar or nested sequence.

    Python floats become the default float dtype (float32), Python complex numbers the default
    complex dtype (complex64); arrays keep their dtype.
    ``copy=True`` always copies; ``copy=False`` never does and raises where it would have to;
    ``copy=None`` copies only when needed (on cpu a NumPy array's memory is shared).
    """
    if type(obj) is np.ndarray and dtype is None and device is None and copy is None and obj.dtype in _SUPPORTED:
        return from_host(obj)  # a NumPy batch on the default device: the common case, a few us less than below
    from tensorcore.ops.logic import astype

    dt = None if dtype is None else dtypes.as_dtype(dtype)
    target = None if device is None else resolve(device)
    if isinstance(obj, Tensor):
        changes = (dt is not None and dt != obj.dtype) or (target is not None and target is not obj.device)
        if copy is False and changes:
            raise ValueError(f"asarray(copy=False): turning a {obj.dtype} tensor on {obj.device} into "
                             f"{dt or obj.dtype} on {target or obj.device} needs a copy")
        out = obj if target is None else transfer(obj, target)
        if dt is not None and dt != out.dtype:
            return astype(out, dt)
        return astype(obj, obj.dtype, copy=True) if copy and out is obj else out
    if not isinstance(obj, (np.ndarray, np.generic, list, tuple, int, float, bool, complex)) and hasattr(obj, "__dlpack__"):
        if _dlpack_device(obj)[0] in _DL_CUDA_TYPES:  # GPU memory: shared through CuPy, no host round trip
            t = from_dlpack(obj, device=device, copy=False if copy is False else None)
            if dt is not None and dt != t.dtype:
                if copy is False:
                    raise ValueError(f"asarray(copy=False): turning {t.dtype} data into {dt} needs a copy")
                return astype(t, dt)
            return astype(t, t.dtype, copy=True) if copy else t
        obj = np.from_dlpack(obj)
    source = getattr(obj, "dtype", None)
    if dt is not None and dt.kind != "c" and isinstance(source, np.dtype) and source.kind == "c":
        raise TypeError(f"asarray: {source} data as {dt} would drop the imaginary part, which the Array API "
                        "does not permit; pass tc.real(x) (or tc.abs(x)), or a complex dtype")
    if copy is False:
        shareable = isinstance(obj, np.ndarray) and (dt is None or dt == obj.dtype) and (target or current_device()).type == "cpu"
        if not shareable:
            raise ValueError("asarray(copy=False): only a NumPy array of the same dtype, placed on cpu, can be shared without a copy")
    try:
        arr = np.array(obj, dtype=dt, copy=True if copy else None)
    except (ValueError, TypeError, OverflowError) as exc:
        raise OpError(f"asarray: cannot make a tensor from {type(obj).__name__}: {exc}") from exc
    if dt is None and arr.dtype.kind in "fc" and _is_python_data(obj):
        arr = arr.astype(dtypes.DEFAULT_FLOAT if arr.dtype.kind == "f" else dtypes.DEFAULT_COMPLEX)
    if arr.dtype not in dtypes.ALL:
        detail = "integers beyond the int64/uint64 range, or objects" if arr.dtype == object else str(arr.dtype)
        raise OpError(f"asarray: cannot make a tensor from {type(obj).__name__} holding {detail}; "
                      f"supported dtypes: {', '.join(d.name for d in dtypes.ALL)}")
    return from_host(arr, target)


def _dtype(dtype: Any, default: np.dtype = dtypes.DEFAULT_FLOAT) -> np.dtype:
    return default if dtype is None else dtypes.as_dtype(dtype)


def _shape(shape: Any) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if any(int(n) < 0 for n in shape):
        raise OpError(f"negative dimensions are not allowed: shape {shape}")
    return tuple(int(n) for n in shape)


def _create(device: Any, what: str, count: int, dtype: np.dtype, on_host: Callable[[], np.ndarray],
            on_device: Callable[[Any, int], Any]) -> Tensor:
    """A new tensor of ``count`` elements on ``device``: ``on_host()`` on cpu, else
    ``on_device(backend, index)``. A host allocation that fails (NumPy's ``MemoryError``: on
    cpu, or a backend that builds on the host) is reported as ``tc.OutOfMemoryError`` naming
    the device and the bytes, as a device allocation is."""
    dev = _device(device)
    try:
        if dev.type == "cpu":
            return wrap(on_host(), dev)
        backend = registry.get_backend(dev.type)
        if dtype.kind == "c":  # no device fills complex numbers: built on the host, stored as they are
            return wrap(backend.from_numpy(on_host(), dev.index), dev)
        return wrap(on_device(backend, dev.index), dev)
    except OutOfMemoryError:
        raise
    except MemoryError as exc:
        try:
            in_use = int(registry.get_backend(dev.type).memory_stats(dev.index).get("in_use", 0))
        except Exception:  # the report must not hide the real error
            in_use = 0
        where = "host memory" if dev.type == "cpu" else f"host memory, where the {dev.type} backend builds it"
        raise OutOfMemoryError(str(dev), count * dtype.itemsize, in_use, f"{what}: {where}: {exc}") from None


def zeros(shape: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    """A tensor of zeros, made on its device."""
    shape, dt = _shape(shape), _dtype(dtype)
    return _create(device, "zeros", math.prod(shape), dt, lambda: np.zeros(shape, dt),
                   lambda backend, index: backend.full(shape, 0, dt, index))


def ones(shape: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    """A tensor of ones, made on its device."""
    shape, dt = _shape(shape), _dtype(dtype)
    return _create(device, "ones", math.prod(shape), dt, lambda: np.ones(shape, dt),
                   lambda backend, index: backend.full(shape, 1, dt, index))


def empty(shape: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    """An uninitialized tensor (zeros here: an uninitialized buffer would leak old data)."""
    return zeros(shape, dtype=dtype, device=device)


def full(shape: Any, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    """A tensor filled with ``fill_value`` (dtype inferred from it when not given: bool, the
    default int, float or complex dtype)."""
    if dtype is None and isinstance(fill_value, np.generic):
        dtype = fill_value.dtype
    elif dtype is None:
        dtype = (dtypes.bool if isinstance(fill_value, bool) else dtypes.DEFAULT_INT if isinstance(fill_value, int)
                 else dtypes.DEFAULT_COMPLEX if isinstance(fill_value, complex) else dtypes.DEFAULT_FLOAT)
    shape, dt = _shape(shape), _dtype(dtype)
    _check_complex_fits("full", (fill_value,), dt)
    if np.ndim(fill_value) != 0:  # an array broadcast into the shape, as np.full allows: built on the host
        return from_host(np.full(shape, fill_value, dt), device)
    return _create(device, "full", math.prod(shape), dt, lambda: np.full(shape, fill_value, dt),
                   lambda backend, index: backend.full(shape, fill_value, dt, index))


def _check_complex_fits(name: str, values: tuple, dt: np.dtype) -> None:
    """A complex Python value needs a complex dtype: NumPy would drop its imaginary part."""
    if dt.kind != "c" and any(isinstance(v, complex) for v in values):
        raise TypeError(f"{name}: a complex value ({', '.join(map(repr, values))}) needs a complex dtype, "
                        f"got dtype={dt}; pass dtype=tc.complex64 or tc.complex128, or leave dtype out")


def _like(x: Tensor, dtype: Any, device: Any) -> tuple[np.dtype, Any]:
    return (x.dtype if dtype is None else dtypes.as_dtype(dtype)), (x.device if device is None else device)


def zeros_like(x: Tensor, /, *, dtype: Any = None, device: Any = None) -> Tensor:
    """Zeros with the shape of ``x`` (and its dtype and device unless given)."""
    dt, dev = _like(x, dtype, device)
    return zeros(x.shape, dtype=dt, device=dev)


def ones_like(x: Tensor, /, *, dtype: Any = None, device: Any = None) -> Tensor:
    """Ones with the shape of ``x`` (and its dtype and device unless given)."""
    dt, dev = _like(x, dtype, device)
    return ones(x.shape, dtype=dt, device=dev)


def empty_like(x: Tensor, /, *, dtype: Any = None, device: Any = None) -> Tensor:
    """A tensor with the shape of ``x`` (zeros, see :func:`empty`)."""
    return zeros_like(x, dtype=dtype, device=device)


def full_like(x: Tensor, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    """``fill_value`` with the shape of ``x`` (and its dtype and device unless given)."""
    dt, dev = _like(x, dtype, device)
    return full(x.shape, fill_value, dtype=dt, device=dev)


def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None) -> Tensor:
    """Evenly spaced values in ``[start, stop)``."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise OpError("arange: step must not be zero")
    if dtype is None:
        floats = any(isinstance(v, float) for v in (start, stop, step))
        dtype = dtypes.DEFAULT_FLOAT if floats else dtypes.DEFAULT_INT
    dt = dtypes.as_dtype(dtype)
    try:
        count = max(math.ceil((stop - start) / step), 0)
    except (ValueError, OverflowError, TypeError):  # NaN, infinite or odd bounds: NumPy says what is wrong
        count = 0
    return _create(device, "arange", count, dt, lambda: np.arange(start, stop, step, dtype=dt),
                   lambda backend, index: backend.arange(start, stop, step, dt, index))


def linspace(start: Any, stop: Any, /, num: int, *, dtype: Any = None, device: Any = None, endpoint: bool = True) -> Tensor:
    """``num`` evenly spaced values from ``start`` to ``stop`` (complex endpoints give the
    default complex dtype)."""
    if num < 0:
        raise OpError(f"linspace: num must be non-negative, got {num}")
    complex_ends = any(isinstance(v, complex) for v in (start, stop))
    dt = _dtype(dtype, dtypes.DEFAULT_COMPLEX if complex_ends else dtypes.DEFAULT_FLOAT)
    _check_complex_fits("linspace", (start, stop), dt)

    def host() -> np.ndarray:
        return np.linspace(start, stop, num, endpoint=endpoint, dtype=dt)

    return _create(device, "linspace", int(num), dt, host, lambda backend, index: backend.from_numpy(host(), index))


def eye(n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None, device: Any = None) -> Tensor:
    """A 2-D tensor with ones on the ``k``-th diagonal and zeros elsewhere, made on its device."""
    for name, value in (("n_rows", n_rows), ("n_cols", n_cols), ("k", k)):
        if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)):
            raise OpError(f"eye: {name} must be an int, got {value!r}")
    n_rows, n_cols = _shape((n_rows, n_rows if n_cols is None else n_cols))
    dt, k = _dtype(dtype), int(k)
    return _create(device, "eye", n_rows * n_cols, dt, lambda: np.eye(n_rows, n_cols, k=k, dtype=dt),
                   lambda backend, index: backend.eye(n_rows, n_cols, k, dt, index))


# DLPack device types (dlpack.h's DLDeviceType) that from_dlpack reads through CuPy: device
# memory and managed memory of an NVIDIA GPU. Host memory (kDLCPU, pinned kDLCUDAHost) goes
# through NumPy.
_DL_CUDA, _DL_CUDA_MANAGED = 2, 13
_DL_CUDA_TYPES = (_DL_CUDA, _DL_CUDA_MANAGED)


def _dlpack_device(x: Any) -> tuple[int, int]:
    """``x.__dlpack_device__()`` as ints; (kDLCPU, 0) for a producer without it."""
    if not hasattr(x, "__dlpack_device__"):
        return 1, 0
    kind, index = x.__dlpack_device__()
    return int(kind), int(index)


def from_dlpack(x: Any, /, *, device: Any = None, copy: bool | None = None) -> Tensor:
    """A tensor sharing the memory of any object with ``__dlpack__``, without a copy.

    Host memory (NumPy arrays, PyTorch CPU tensors, ...) is read through NumPy and the tensor
    lives on ``cpu``; memory of CUDA device N (CuPy arrays, PyTorch CUDA tensors, ...) is read
    through CuPy and the tensor lives on ``cuda:N`` (the producer's pending work is ordered
    before that device's stream). Writes through either side show on the other. A ``device``
    other than the data's gets a copy there; ``copy=True`` always copies; ``copy=False``
    raises ``ValueError`` where a copy is unavoidable.
    """
    if isinstance(x, Tensor):
        out = x if device is None else transfer(x, resolve(device))
        if copy and out is x:
            return asarray(x, copy=True)  # any dtype (positive refuses bool)
        return out
    if not hasattr(x, "__dlpack__"):
        raise OpError(f"from_dlpack: {type(x).__name__} does not implement the DLPack protocol (__dlpack__)")
    kind, index = _dlpack_device(x)
    if kind in _DL_CUDA_TYPES:
        return _from_cuda_dlpack(x, index, device, copy)
    try:
        arr = np.from_dlpack(x)
    except (BufferError, RuntimeError, TypeError, ValueError) as exc:
        raise OpError(f"from_dlpack: cannot read a {type(x).__name__} (DLPack device type {kind}) through NumPy "
                      f"on the host: {exc}") from exc
    if arr.dtype not in dtypes.ALL:
        raise OpError(f"from_dlpack: unsupported dtype {arr.dtype}; supported: {', '.join(d.name for d in dtypes.ALL)}")
    dev = resolve("cpu") if device is None else resolve(device)
    if copy is False and dev.type != "cpu":
        raise ValueError(f"from_dlpack(copy=False): host data cannot be shared with {dev}; a copy is needed")
    return from_host(arr.copy() if copy else arr, dev)


def _from_cuda_dlpack(x: Any, index: int, device: Any, copy: bool | None) -> Tensor:
    """from_dlpack of memory on CUDA device ``index``: zero-copy onto ``cuda:index``."""
    from tensorcore.ops.logic import astype

    home = Device("cuda", index)
    reason = registry.unavailable_reason(home)
    if reason is not None:
        raise OpError(f"from_dlpack: the {type(x).__name__} lives on CUDA device {index}, which tensorcore cannot "
                      f"use here: {reason}")
    target = home if device is None else resolve(device)
    if copy is False and target != home:
        raise ValueError(f"from_dlpack(copy=False): the data lives on {home}; placing it on {target} needs a copy")
    try:
        data = registry.get_backend("cuda").from_dlpack(x, index)
    except (BufferError, RuntimeError, TypeError, ValueError) as exc:
        raise OpError(f"from_dlpack: cannot read a {type(x).__name__} on {home} through CuPy: {exc}") from exc
    if np.dtype(data.dtype) not in dtypes.ALL:
        raise OpError(f"from_dlpack: unsupported dtype {data.dtype}; supported: {', '.join(d.name for d in dtypes.ALL)}")
    out = wrap(data, home)
    if target != home:
        return transfer(out, target)
    return astype(out, out.dtype, copy=True) if copy else out


def meshgrid(*arrays: Tensor, indexing: str = "xy") -> list[Tensor]:
    """Coordinate grids from 1-D tensors: ``"xy"`` (Cartesian, first two axes swapped) or ``"ij"`` (matrix).

    The grids are broadcast views of the inputs (read-only on cpu, like ``broadcast_to``).
    """
    from tensorcore.ops.manipulation import broadcast_to, reshape

    if indexing not in ("xy", "ij"):
        raise OpError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    for i, a in enumerate(arrays):
        if not isinstance(a, Tensor) or a.ndim != 1:
            got = f"shape {a.shape}" if isinstance(a, Tensor) else type(a).__name__
            raise OpError(f"meshgrid: every input must be a 1-D tensor, but input {i} has {got}")
    if len({a.dtype for a in arrays}) > 1:
        raise OpError(f"meshgrid: inputs must share one dtype, got {', '.join(str(a.dtype) for a in arrays)}")
    n = len(arrays)
    position = list(range(n))
    if indexing == "xy" and n >= 2:
        position[0], position[1] = 1, 0
    shape = [0] * n
    for a, p in zip(arrays, position):
        shape[p] = a.shape[0]
    out = []
    for a, p in zip(arrays, position):
        view = [1] * n
        view[p] = a.shape[0]
        out.append(broadcast_to(reshape(a, tuple(view)), tuple(shape)))
    return out


def _triangle_infer(name: str) -> Any:
    def infer(x: Spec, k: int) -> Spec:
        if len(x.shape) < 2:
            raise OpError(f"{name}: x must have at least 2 dimensions, got shape {x.shape}")
        return x

    return infer


_TRIL = define(Op("tril", lambda x, k: np.tril(x, k), infer=_triangle_infer("tril"),
                  grad=lambda ctx, g: (apply(_TRIL, (g,), ctx.attrs),), doc="Lower triangle."))
_TRIU = define(Op("triu", lambda x, k: np.triu(x, k), infer=_triangle_infer("triu"),
                  grad=lambda ctx, g: (apply(_TRIU, (g,), ctx.attrs),), doc="Upper triangle."))


def _triangle(op: Op, x: Tensor, k: int) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim < 2:
        got = f"shape {x.shape}" if isinstance(x, Tensor) else type(x).__name__
        raise OpError(f"{op.name}: x must be a tensor of at least 2 dimensions, got {got}")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise OpError(f"{op.name}: k must be an int, got {k!r}")
    return apply(op, (x,), {"k": int(k)})


def tril(x: Tensor, /, *, k: int = 0) -> Tensor:
    """``x`` (a matrix or a stack of them) with elements above the ``k``-th diagonal zeroed."""
    return _triangle(_TRIL, x, k)


def triu(x: Tensor, /, *, k: int = 0) -> Tensor:
    """``x`` (a matrix or a stack of them) with elements below the ``k``-th diagonal zeroed."""
    return _triangle(_TRIU, x, k)


__all__ = [
    "asarray", "zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like",
    "full_like", "arange", "linspace", "eye", "from_dlpack", "meshgrid", "tril", "triu",
]
