"""Launch plans: a launcher's launches worked out once per layout and replayed with each
call's buffers.

A training step enqueues the same products and reductions with the same shapes and strides
every time; only the buffers differ. Working out the launches (which operand to pack, the
tile counts, the build defines, the shape vectors) took most of a launcher's host time on
PoCL, more than pyopencl's own enqueue (docs/performance.md, session 14). ``record`` runs a
launcher once against a ``Recorder``, a device that keeps the launches instead of enqueueing
them and hands out stand-ins (``Slot``) for the buffers it allocates; the caller passes
stand-ins for its operands' buffers too. ``replay`` allocates the temporaries and enqueues
the recorded launches with the stand-ins replaced.

A plan is valid for any call whose layouts (shapes, strides, offsets, dtypes, attributes)
and device properties equal the recorded ones: callers key their caches on all of them,
including every device property the launcher reads (the GEMM's tile follows ``simd_bytes``,
which tests change to build the other tile).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from tensorcore.backends.opencl import CLArray, CLDevice


class Slot:
    """A stand-in for a buffer in a planned launch's arguments."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


class Plan(NamedTuple):
    """Recorded launches, each (kernel, global size, local size, arguments, ((position, slot),
    ...) of the arguments to replace), and the byte sizes of the temporaries the launcher
    allocated, in order (their slots are ``temps``)."""

    launches: tuple
    temp_bytes: tuple[int, ...]
    temps: tuple[Slot, ...]


# What a recorded launcher may read from the real device: its kernels and properties, and the
# error record that is never set. Not this thread's error record (a plan may be replayed by
# another thread), uploads or the queue: a launcher that needs them cannot be planned.
_SHARED = frozenset({"cl", "index", "name", "fp64", "simd_bytes", "zero_copy", "max_alloc", "kernel",
                     "generated_kernel", "unguarded", "check_dtype"})


class Recorder:
    """A device that records launches and allocations; its kernels and properties are the
    real device's (``_SHARED``)."""

    def __init__(self, dev: CLDevice) -> None:
        self.dev = dev
        self.launches: list[tuple] = []
        self.temps: list[tuple[int, Slot]] = []

    def __getattr__(self, name: str) -> Any:
        if name not in _SHARED:
            raise AttributeError(f"a launch plan cannot record a launcher that uses the device's {name!r}")
        return getattr(self.dev, name)

    def alloc(self, nbytes: int) -> Slot | None:
        """A stand-in for a new temporary of ``nbytes`` (None for none, as the device gives)."""
        if nbytes == 0:
            return None
        slot = Slot(f"temp{len(self.temps)}")
        self.temps.append((nbytes, slot))
        return slot

    def empty(self, shape: tuple[int, ...], dtype: Any) -> CLArray:
        """A new array whose buffer is a stand-in (``CLDevice.empty``)."""
        dtype = np.dtype(dtype)
        return CLArray(self, self.alloc(math.prod(shape) * dtype.itemsize), shape, dtype)  # type: ignore[arg-type]

    def launch(self, kernel: Any, global_size: tuple[int, ...], local_size: tuple[int, ...] | None, *args: Any) -> None:
        """Keep the launch (``CLDevice.launch``'s arguments) instead of enqueueing it."""
        self.launches.append((kernel, global_size, local_size, args))


def record(dev: CLDevice, launcher: Callable[[Recorder], Any]) -> tuple[Plan, Any]:
    """Run ``launcher`` on a recorder of ``dev``; returns the plan and what the launcher returned."""
    recorder = Recorder(dev)
    result = launcher(recorder)
    launches = tuple((kernel, gsize, lsize, args, tuple((i, v) for i, v in enumerate(args) if isinstance(v, Slot)))
                     for kernel, gsize, lsize, args in recorder.launches)
    return Plan(launches, tuple(n for n, _ in recorder.temps), tuple(s for _, s in recorder.temps)), result


def replay(dev: CLDevice, plan: Plan, buffers: dict[Slot, Any]) -> list[Any]:
    """Allocate the plan's temporaries and enqueue its launches, each stand-in replaced by its
    buffer in ``buffers`` (the caller's operands) or by a new temporary; returns the
    temporaries' buffers in order. Temporaries the caller drops go back to the pool while
    launches may still be queued: safe on the device's one in-order queue, as for every
    launcher's temporaries."""
    temps = [dev.alloc(n) for n in plan.temp_bytes]
    buffers = {**buffers, **dict(zip(plan.temps, temps))}
    for kernel, global_size, local_size, args, slots in plan.launches:
        if slots:
            args = list(args)
            for i, slot in slots:
                args[i] = buffers[slot]
        dev.launch(kernel, global_size, local_size, *args)
    return temps
