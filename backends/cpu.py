"""The ``cpu`` backend: NumPy arrays on the host. Its kernels are the ops' NumPy references."""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np

from tensorcore.backend import Backend, DeviceInfo
from tensorcore.device import Device


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _host_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


class CPUBackend(Backend):
    """NumPy on the host: always available, the reference for every other backend."""

    name = "cpu"
    kernels: dict = {}  # every op's NumPy reference is its cpu kernel (see ops.registry.Op)

    def devices(self) -> list[DeviceInfo]:
        """One device, ``cpu:0``: the host."""
        details = {"cores": os.cpu_count(), "numpy": np.__version__}
        return [DeviceInfo(Device("cpu"), _cpu_name(), _host_memory(), details)]

    def from_numpy(self, array: np.ndarray, index: int) -> np.ndarray:
        """Host arrays are already where they need to be."""
        return array

    def to_numpy(self, data: Any) -> np.ndarray:
        """The array itself (NumPy scalars from reductions become 0-d arrays)."""
        return np.asarray(data)

    def host_view(self, data: Any) -> np.ndarray:
        """The array itself: host memory."""
        return np.asarray(data)

    def fuse(self, program: Any, index: int) -> Any:
        """A fused elementwise chain as NumPy ufunc calls into as few buffers as possible."""
        from tensorcore.ops.fusable import run_numpy

        def run(*inputs: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
            return run_numpy(program, list(inputs), out)

        return run
