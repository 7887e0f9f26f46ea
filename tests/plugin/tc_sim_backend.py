"""A third-party backend for the tests, registered through its own entry point.

``sim`` keeps data in host memory, but inside its own array type (not a NumPy array), as
PyOpenCL and CuPy do: a kernel of another backend that receives its data by mistake fails,
and every path between devices must really convert. It has native kernels for only a few
ops, which makes it the test bed for soft/strict placement, CPU fallback (in-place ops
included) and cross-device copies on a machine without an accelerator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.backend import Backend, DeviceInfo
from tensorcore.device import Device


class SimArray:
    """The sim backend's array: an opaque box around host memory."""

    __slots__ = ("host", "index")

    def __init__(self, host: np.ndarray, index: int) -> None:
        self.host, self.index = np.asarray(host), index

    @property
    def shape(self) -> tuple[int, ...]:
        return self.host.shape

    @property
    def dtype(self) -> np.dtype:
        return self.host.dtype


def _unbox(a: Any) -> Any:
    if isinstance(a, np.ndarray | np.generic):
        raise TypeError("sim kernel received a host array instead of a SimArray")
    return a.host if isinstance(a, SimArray) else a


def _out(fn: Any) -> Any:
    """A kernel computing a new array."""
    def kernel(*args: Any, _index: int, **kwargs: Any) -> SimArray:
        return SimArray(fn(*(_unbox(a) for a in args), **kwargs), _index)
    return kernel


def _inplace(fn: Any) -> Any:
    """A kernel writing into its first argument."""
    def kernel(*args: Any, _index: int, **kwargs: Any) -> None:
        fn(*(_unbox(a) for a in args), **kwargs)
    return kernel


class SimBackend(Backend):
    """Two host-memory devices, ``sim:0`` and ``sim:1``, with a handful of kernels."""

    name = "sim"
    kernels = {
        "add": _out(np.add),
        "multiply": _out(np.multiply),
        "matmul": _out(np.matmul),
        "sum": _out(lambda x, axis, keepdims, dtype: np.asarray(np.sum(x, axis=axis, keepdims=keepdims, dtype=dtype))),
        "reshape": _out(lambda x, shape: np.reshape(x, shape)),
        "broadcast_to": _out(lambda x, shape: np.broadcast_to(x, shape)),
        "astype": _out(lambda x, dtype, copy: np.asarray(x).astype(dtype, copy=copy)),
        "assign": _inplace(lambda dst, src: np.copyto(dst, src)),
    }

    def bind(self, kernel: Any, index: int) -> Any:
        """Give each kernel its device index, as a real backend gives its queue."""
        def bound(*args: Any, **kwargs: Any) -> Any:
            for a in args:
                if isinstance(a, SimArray) and a.index != index:
                    raise RuntimeError(f"sim:{index} kernel got an array of sim:{a.index}")
            return kernel(*args, _index=index, **kwargs)
        return bound

    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo(Device("sim", i), f"simulated device {i}", 1 << 30) for i in range(2)]

    def unavailable_devices(self) -> list[DeviceInfo]:
        """A third device that fails the backend's own check: listed with its reason, no index."""
        return [DeviceInfo(None, "simulated device 2", 1 << 30,
                           reason="simulated device 2 failed its self-test. Fix: reseat the simulated card")]

    def from_numpy(self, array: np.ndarray, index: int) -> SimArray:
        return SimArray(np.array(array, copy=True), index)

    def to_numpy(self, data: SimArray) -> np.ndarray:
        return np.array(data.host, copy=True)


class BrokenBackend(Backend):
    """A backend whose driver fails to start: must be listed with its reason, not hidden."""

    name = "broken"

    def __init__(self) -> None:
        raise RuntimeError("driver version 0.0 is too old")


class MisnamedBackend(SimBackend):
    """Registered as ``misnamed`` but calling itself ``sim``: must be refused, with the reason."""
