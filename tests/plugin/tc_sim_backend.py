"""A third-party backend for the tests, registered through its own entry point.

``sim`` keeps arrays in host memory but in its own array type, so a kernel of another
backend receiving its data by mistake fails loudly. It has native kernels for only a few
ops, which makes it the test bed for soft/strict placement, CPU fallback and cross-device
copies on a machine that has no accelerator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.backend import Backend, DeviceInfo
from tensorcore.device import Device


class SimArray(np.ndarray):
    """The sim backend's array type: a distinct ndarray subclass."""


def _sim(x: Any) -> SimArray:
    return np.asarray(x).view(SimArray)


def _native(fn: Any) -> Any:
    def kernel(*args: Any, **kwargs: Any) -> SimArray:
        for a in args:
            if isinstance(a, np.ndarray) and not isinstance(a, SimArray):
                raise TypeError("sim kernel received a non-sim array")
        return _sim(fn(*args, **kwargs))

    return kernel


class SimBackend(Backend):
    """Two host-memory devices, ``sim:0`` and ``sim:1``, with a handful of kernels."""

    name = "sim"
    kernels = {
        "add": _native(np.add),
        "multiply": _native(np.multiply),
        "matmul": _native(np.matmul),
        "sum": _native(lambda x, axis, keepdims, dtype: np.sum(x, axis=axis, keepdims=keepdims, dtype=dtype)),
        "reshape": _native(lambda x, shape: np.reshape(x, shape)),
        "broadcast_to": _native(lambda x, shape: np.broadcast_to(x, shape)),
        "astype": _native(lambda x, dtype, copy: np.asarray(x).astype(dtype, copy=copy)),
        "assign": lambda dst, src: np.copyto(dst, src),
    }

    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo(Device("sim", i), f"simulated device {i}", 1 << 30) for i in range(2)]

    def from_numpy(self, array: np.ndarray, index: int) -> SimArray:
        return _sim(np.array(array, copy=True))

    def to_numpy(self, data: Any) -> np.ndarray:
        return np.array(data, copy=True).view(np.ndarray)


class BrokenBackend(Backend):
    """A backend whose driver fails to start: must be listed with its reason, not hidden."""

    name = "broken"

    def __init__(self) -> None:
        raise RuntimeError("driver version 0.0 is too old")
