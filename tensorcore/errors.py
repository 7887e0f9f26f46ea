"""Exception types raised by tensorcore, each naming what was wrong and what would be right."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class PlacementError(RuntimeError):
    """An op or tensor cannot be placed where it was asked to be (strict placement)."""


class DeviceUnavailableError(PlacementError):
    """A well-formed device that this machine cannot provide (e.g. ``cuda`` with no GPU)."""


class OutOfMemoryError(MemoryError):
    """A device allocation failed even after the backend freed its cached blocks."""

    def __init__(self, device: object, requested: int, in_use: int, detail: str = "") -> None:
        self.device, self.requested, self.in_use = device, requested, in_use
        msg = (
            f"out of memory on {device}: requested {requested:,} bytes "
            f"with {in_use:,} bytes in use"
        )
        super().__init__(msg + (f" ({detail})" if detail else ""))


class OpError(ValueError):
    """An op was given inputs it cannot take: names the op, the inputs and what it expected."""


class DeviceError(OpError):
    """Invalid input found by a kernel on an asynchronous device (an index out of range),
    raised late: at the next read or synchronize on that device in the thread that launched
    the op. The in-place updates that thread queued on that device after the failing op were
    skipped, so optimizer steps, assignments and step counters are as they were before it
    (``docs/backends.md``, "Device errors")."""

    #: How many were raised in this process. A host-side copy of device state (an optimizer's
    #: step count, its last learning rate) compares it to learn that writes may have been skipped.
    raised = 0

    def __init__(self, message: str) -> None:
        super().__init__(message)
        DeviceError.raised += 1  # racing threads may lose an increment, never the change


def index_position(flat: int, shape: tuple[int, ...], index_shape: tuple[int, ...] | None = None) -> str:
    """The text ``" (at position p)"`` for element ``flat`` (row-major) of the ``shape`` a kernel
    walked, where p is that element's position in the index tensor of ``index_shape`` broadcast
    to ``shape`` (right-aligned, size-1 dimensions at 0): an int for a 1-D index tensor, a tuple
    for more; empty for a 0-d one. A device error names the offending index with it."""
    index_shape = tuple(shape) if index_shape is None else tuple(index_shape)
    if not index_shape or not 0 <= flat < max(1, math.prod(shape)):
        return ""
    coords = []
    for n in reversed(shape):
        coords.append(flat % n)
        flat //= n
    coords.reverse()
    mine = [0 if n == 1 else c for c, n in zip(coords[len(coords) - len(index_shape):], index_shape)]
    return f" (at position {mine[0] if len(mine) == 1 else tuple(mine)})"


class _Caller(threading.local):
    op = ""  # the op whose late errors this thread names otherwise ("": none)
    header = ""


_caller = _Caller()


@contextmanager
def late_errors_named(op: str, header: str) -> Iterator[None]:
    """Inside the block, a device error that this thread's kernels record for ``op`` (a message
    ``"op: ..."``, raised late) reads ``"header: ..."``: for a function that runs another op
    (``take`` runs ``getitem``), so its late error names what the user called, as its eager
    one does."""
    outer = _caller.op, _caller.header
    _caller.op, _caller.header = op, header
    try:
        yield
    finally:
        _caller.op, _caller.header = outer


def late_error_message(message: str) -> str:
    """``message`` of a device error, as the enclosing ``late_errors_named`` block names it."""
    op = _caller.op
    if op and message.startswith(op + ": "):
        return f"{_caller.header}: {message[len(op) + 2:]}"
    return message


class GradientError(ValueError):
    """A gradient cannot be computed as asked (unwatched source, modified input, ...)."""


class KernelBuildError(RuntimeError):
    """A device kernel failed to compile: names the source file, the device, the compiler log
    and the offending source line."""


class KernelUnsupported(Exception):  # noqa: N818 - a signal to fall back, not an error users see
    """Raised by a backend kernel, before it writes anything, for inputs it does not handle
    (a dtype, a layout). Dispatch then treats the op as having no kernel on that device:
    it falls back to cpu under soft placement and raises under strict."""


class CollectiveError(RuntimeError):
    """A collective of ``tensorcore.distribute`` failed: a participant did not join in time,
    handed in different tensors, or stopped because another replica failed. Dispatch passes
    it through unchanged, so the caller sees which of these it was."""


class SerializationError(ValueError):
    """A file cannot be loaded: truncated, corrupted, not safetensors, or not what tensorcore wrote
    (foreign keys, a pickle). Names the file and what is wrong; nothing is loaded."""
