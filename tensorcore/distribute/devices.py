"""Which devices a strategy's replicas run on, and whether an MPI launcher started us.

``MirroredStrategy(devices)`` takes a list or a comma-separated string; without one it reads
``TENSORCORE_DEVICES``, else takes every available accelerator, else ``cpu``. Each entry is
resolved as ``TENSORCORE_DEVICE`` is (``tensorcore.device.resolve``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from tensorcore import registry
from tensorcore.device import Device, resolve


def launched_by_mpi() -> bool:
    """Whether an MPI launcher (``mpiexec``/``mpirun`` of MPICH or Open MPI, Slurm's ``srun``)
    started this process as one of several."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        try:
            if int(os.environ.get(name, "1")) > 1:
                return True
        except ValueError:
            pass
    return False


def default_devices() -> list[Device]:
    """``TENSORCORE_DEVICES`` (comma-separated), else every available accelerator, else cpu."""
    raw = os.environ.get("TENSORCORE_DEVICES", "").strip()
    if raw:
        return parse_devices(raw, origin="TENSORCORE_DEVICES")
    accelerators = [d for d in registry.available_devices() if d.type != "cpu"]
    return accelerators or [Device("cpu")]


def parse_devices(specs: str | Sequence[str | Device], origin: str = "devices") -> list[Device]:
    """Devices from ``"opencl:0,opencl:1"`` or a list; each entry is resolved as
    ``TENSORCORE_DEVICE`` is (malformed: an error; unavailable: cpu with a warning, or an error
    under strict placement)."""
    if isinstance(specs, (bytes, bytearray)) or not isinstance(specs, (str, Sequence)):
        raise TypeError(f"{origin}: expected a string like 'opencl:0,opencl:1' or a list of devices, got "
                        f"{type(specs).__name__} {specs!r}")
    items = [s.strip() for s in specs.split(",")] if isinstance(specs, str) else list(specs)
    if not items or any(s == "" for s in items):
        raise ValueError(f"{origin}: expected a comma-separated list of devices like 'opencl:0,opencl:1', got {specs!r}")
    return [resolve(s, origin=origin) for s in items]
