"""The backend contract: what a device backend provides to tensorcore.

A backend is one class, registered under the entry-point group ``tensorcore.backends``
(built-in backends are registered there by tensorcore's own ``pyproject.toml``, exactly as a
third-party package would). ``docs/backends.md`` explains each method.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tensorcore.device import Device


@dataclass(frozen=True)
class DeviceInfo:
    """One device a backend can run on, as listed by ``tc.devices()``.

    ``tc.devices(all=True)`` also lists each unavailable backend as a DeviceInfo with
    ``device=None`` and the ``reason`` it is unavailable.
    """

    device: Device | None
    name: str
    memory_bytes: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    backend: str = ""
    reason: str | None = None

    def __post_init__(self) -> None:
        if not self.backend and self.device is not None:
            object.__setattr__(self, "backend", self.device.type)

    @property
    def available(self) -> bool:
        """Whether this device can be used."""
        return self.device is not None


class Backend:
    """Base class of a device backend. Subclasses set ``name`` and override the methods.

    Arrays are the backend library's own (``np.ndarray``, ``pyopencl.array.Array``,
    ``cupy.ndarray``): they must expose ``.shape`` and ``.dtype`` (a NumPy dtype).
    Work may be asynchronous: only ``to_numpy`` and ``synchronize`` must wait for it.
    """

    name: ClassVar[str]
    #: Native kernels: op name -> callable(*arrays, **attrs) returning an array or a tuple.
    #: May be set per instance (kernels that close over a context built in ``__init__``).
    kernels: Mapping[str, Callable[..., Any]] = {}

    def bind(self, kernel: Callable[..., Any], index: int) -> Callable[..., Any]:
        """The kernel as run on device ``index``: wrap it with that device's queue, stream or
        context. Called once per (kernel, device) when the backend loads, never per op."""
        return kernel

    def devices(self) -> list[DeviceInfo]:
        """The devices of this backend available on this machine, index order."""
        raise NotImplementedError

    def unavailable_devices(self) -> list[DeviceInfo]:
        """Optional: devices this backend found but cannot use (a driver that fails the
        backend's checks, a damaged kernel cache), as ``DeviceInfo(device=None, ...)`` whose
        ``reason`` names the device, what is wrong and how to fix it. They take no index, and
        ``tc.devices(all=True)`` and ``tensorcore devices`` list them. The default: none."""
        return []

    def from_numpy(self, array: np.ndarray, index: int) -> Any:
        """Copy a host array to device ``index`` (asynchronously where the device allows)."""
        raise NotImplementedError

    def to_numpy(self, data: Any) -> np.ndarray:
        """Copy a device array to the host, waiting for pending work on it."""
        raise NotImplementedError

    def host_view(self, data: Any) -> np.ndarray | None:
        """Optional: a writable host array sharing memory with the contiguous device array
        ``data`` (host memory: ``cpu``, an OpenCL CPU device), once the work queued before it
        is done; writes to it are what the device sees after the view is dropped. None (the
        default) where device memory is not host-visible: callers then copy."""
        return None

    def host_views(self, datas: Sequence[Any]) -> list[np.ndarray | None]:
        """:meth:`host_view` of each of ``datas`` (None where there is none). A backend whose
        views wait for the device overrides it to wait once for them all."""
        return [self.host_view(d) for d in datas]

    # --- creation: new arrays made on the device --------------------------------------------
    # ``tc.zeros``, ``tc.full``, ``tc.arange``, ``tc.eye`` and the ``*_like`` functions call these.
    # The defaults build the array on the host with NumPy and copy it in (``from_numpy``),
    # which is right for any backend; a backend overrides them to allocate and fill on the
    # device, so that a tensor too big for the device raises ``tc.OutOfMemoryError`` without
    # a host allocation of its size, and no host-to-device copy is made.

    def full(self, shape: tuple[int, ...], value: Any, dtype: np.dtype, index: int) -> Any:
        """A new C-contiguous array of ``shape`` and ``dtype`` on device ``index``, every
        element ``value`` cast as ``np.full`` casts it (``value`` is a Python or NumPy scalar)."""
        return self.from_numpy(np.full(shape, value, dtype), index)

    def arange(self, start: Any, stop: Any, step: Any, dtype: np.dtype, index: int) -> Any:
        """``np.arange(start, stop, step, dtype=dtype)`` on device ``index``, value for value
        (``step`` is not zero; the caller has chosen ``dtype``)."""
        return self.from_numpy(np.arange(start, stop, step, dtype=dtype), index)

    def eye(self, n_rows: int, n_cols: int, k: int, dtype: np.dtype, index: int) -> Any:
        """``np.eye(n_rows, n_cols, k=k, dtype=dtype)`` on device ``index``."""
        return self.from_numpy(np.eye(n_rows, n_cols, k=k, dtype=dtype), index)

    def synchronize(self, index: int) -> None:
        """Wait until all work queued on device ``index`` has finished."""

    def memory_stats(self, index: int) -> dict[str, int]:
        """Bytes ``in_use``, ``cached`` (held by the pool, free) and ``peak`` on the device."""
        return {}

    def fuse(self, program: Any, index: int) -> Callable[..., Any] | None:
        """Optional: one kernel for a fused elementwise chain (a ``FusedProgram``, see
        ``tensorcore/ops/fusable.py``) on device ``index``, called as
        ``kernel(*inputs, out=None)``; ``out`` is a dead input's array the result may be
        written into. None (the default) leaves the chain's ops unfused on this backend."""
        return None


def cache_dir() -> Path:
    """Where tensorcore keeps small per-machine state, such as the OpenCL backend's driver
    checks: ``TENSORCORE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/tensorcore``, else
    ``~/.cache/tensorcore``. Not created here; everything in it may be deleted at any time."""
    explicit = os.environ.get("TENSORCORE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "tensorcore" if xdg else Path.home() / ".cache" / "tensorcore"
