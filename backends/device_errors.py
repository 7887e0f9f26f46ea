"""Device-side input errors of the asynchronous backends (``opencl``, ``cuda``): the host half.

A kernel that validates its input (an index, a label) cannot raise: the host is elsewhere by
then. Instead it claims the launching thread's *error record* on the device, 32 bytes:

    int32 code at byte 0 (0: no error), int64 position at byte 8, int64 value at byte 16

with an atomic compare-and-swap on the code, so the first claim wins and the position and
value written after it belong to it. The in-place kernels of that thread read the code and
write nothing while it is set. At the thread's next read or synchronize on the device (the
queue has drained), the backend reads the record back and raises ``DeviceError``.

The record is per (device, thread), because errors belong to the thread that issued the op:
a thread never raises, nor skips an update, for another thread's bad input. This module
keeps each thread's table of what its codes mean (``ThreadErrors``) and turns a record read
back into the error (``ThreadErrors.error``); the backends allocate, zero and read the
records (``CLDevice.error_flag``, ``CUDADevice.error_flag``).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from tensorcore.errors import DeviceError, index_position, late_error_message

RECORD_BYTES = 32


class ThreadErrors(threading.local):
    """One thread's error record on one device, and what its codes mean.

    Codes number the (message, shape walked, index shape) of this thread's validating launches
    since its last read on the device; the table is emptied at each read, when every launch it
    describes is done, so it never outgrows one read's worth of launches. Class defaults make
    the hot path's reads cheap."""

    buf: Any = None  # the record on the device; made by the backend on first use
    pending = False  # a kernel this thread launched may have claimed it since the thread last looked

    def __init__(self) -> None:  # run once in each thread, at its first use of the device
        self.codes: dict[tuple, int] = {}
        self.entries: list[tuple] = []

    def code(self, message: str, shape: tuple[int, ...], index_shape: tuple[int, ...] | None) -> np.int32:
        """The code of a validating launch whose error reads ``message`` (``{value}`` and
        ``{position}`` filled in from the record; the position counts row-major over ``shape``,
        the shape the kernel walks, and is named in the index tensor of ``index_shape``), under
        the name of the function that ran the op (``tensorcore.errors.late_errors_named``)."""
        key = (late_error_message(message), tuple(shape), None if index_shape is None else tuple(index_shape))
        code = self.codes.get(key)
        if code is None:
            self.entries.append(key)
            code = self.codes[key] = len(self.entries)
        self.pending = True
        return np.int32(code)

    def error(self, record: np.ndarray, device: str) -> DeviceError | None:
        """The error the record read back holds (None if it holds none), for this thread to
        raise; the table is emptied either way (the queue has drained)."""
        words = np.ascontiguousarray(record).view(np.int64)
        code = int(words[:1].view(np.int32)[0])
        entries, self.entries, self.codes = self.entries, [], {}
        self.pending = False
        if not code:
            return None
        message, shape, index_shape = entries[code - 1] if 0 < code <= len(entries) else \
            ("a kernel found invalid input", (), None)
        text = message.replace("{value}", str(int(words[2]))).replace(
            "{position}", index_position(int(words[1]), shape, index_shape))
        return DeviceError(f"{text} (found on {device} by a kernel this thread launched, and raised at this "
                           f"thread's next read there; the in-place updates this thread queued on {device} "
                           "since that op were skipped)")
