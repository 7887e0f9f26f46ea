"""The ``opencl`` backend: PyOpenCL on every OpenCL device of every platform.

Devices are numbered across platforms in a stable order (platform, then device), and
``TENSORCORE_OPENCL_DEVICES`` (comma-separated indices or name substrings) narrows them as
``CUDA_VISIBLE_DEVICES`` does; a device gets its index only after it passes tensorcore's
driver check (``opencl_probe``: a child process, its verdict cached), and one that fails is
listed unavailable with the reason. Each device has one in-order queue: ops enqueue and return,
and the host waits only in ``to_numpy`` and ``synchronize``. Memory comes from pyopencl's
pool; programs are compiled once per (source, build options, device) and pyopencl caches
the binaries on disk, keyed by source, options, device and driver version.

The op kernels live in ``backends/opencl_ops/`` (launchers) and ``kernels/opencl/`` (sources).
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from tensorcore.backends.device_errors import RECORD_BYTES, ThreadErrors
from tensorcore.backends.opencl_programs import ProgramCache

from tensorcore.backend import Backend, DeviceInfo
from tensorcore.device import Device
from tensorcore.errors import KernelUnsupported, OutOfMemoryError
from tensorcore.strides import contiguous_strides

MAX_DIMS = 8  # strided kernels take shapes and strides as long8
PROFILING_ENV = "TENSORCORE_OPENCL_PROFILING"  # "1": queues record timestamps (tc.bench device time)



class CLArray:
    """A tensor's storage on an OpenCL device: a pooled buffer and a strided view into it.

    ``strides`` and ``offset`` count elements, not bytes. Views (transposes, broadcasts,
    slices) share ``buf``; ``buf`` is None for an empty array.
    """

    __slots__ = ("buf", "shape", "dtype", "strides", "offset", "dev")

    def __init__(self, dev: CLDevice, buf: Any, shape: tuple[int, ...], dtype: np.dtype,
                 strides: tuple[int, ...] | None = None, offset: int = 0) -> None:
        self.dev, self.buf, self.shape, self.dtype = dev, buf, tuple(shape), np.dtype(dtype)
        self.strides = contiguous_strides(self.shape) if strides is None else tuple(strides)
        self.offset = offset

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)  # not np.prod: ~0.2 us instead of ~2 us, per launch

    @property
    def is_contiguous(self) -> bool:
        """C-contiguous: elements ``offset .. offset + size`` of ``buf`` in row-major order."""
        return all(s == c or n == 1 for s, c, n in zip(self.strides, contiguous_strides(self.shape), self.shape))

    def view(self, shape: tuple[int, ...], strides: tuple[int, ...], offset: int) -> CLArray:
        """Another view of the same buffer."""
        return CLArray(self.dev, self.buf, shape, self.dtype, strides, offset)

    def __repr__(self) -> str:
        return f"CLArray({self.dtype}{list(self.shape)}, strides={self.strides}, offset={self.offset}, {self.dev.name})"


class CLDevice(ProgramCache):
    """One OpenCL device: its context, in-order queue, memory pool and compiled programs.

    Threads share it. Compiled programs and kernels are cached per device, and an entry is
    published only when complete (a kernel with its argument types declared), built under
    ``_build_lock`` so that each is compiled once. Device-side input errors belong to the
    thread that launched the op (see ``error_flag``).
    """

    def __init__(self, index: int, cl_device: Any) -> None:
        import pyopencl as cl
        import pyopencl.tools as cl_tools

        self.cl, self.index, self.cl_device = cl, index, cl_device
        self.name = cl_device.name.strip()
        self.context = cl.Context([cl_device])
        # Opt-in, read at start: TENSORCORE_OPENCL_PROFILING=1 makes the queue record profiling
        # timestamps, so `tc.bench` can read device time from marker events (docs/benchmarks.md).
        self.profiling = os.environ.get(PROFILING_ENV, "0") not in ("", "0")
        profiling = cl.command_queue_properties.PROFILING_ENABLE if self.profiling else 0
        self.queue = cl.CommandQueue(self.context, properties=profiling)
        self.pool = cl_tools.MemoryPool(cl_tools.ImmediateAllocator(self.queue))
        self.fp64 = bool(cl_device.double_fp_config)
        self.max_alloc = int(cl_device.max_mem_alloc_size)
        # One SIMD register in bytes (PoCL: 64 with AVX-512, 32 with AVX2; 32 for anything
        # narrower too): the GEMM's tile is sized to it (matmul.py), since a tile of 512-bit
        # vectors spills on a 256-bit CPU.
        self.simd_bytes = 64 if int(cl_device.native_vector_width_float) >= 16 else 32
        # A CPU device's buffers are host memory: reads can map them instead of copying
        # (PoCL copies 64 MiB in ~20 ms; a map takes ~20 us).
        self.zero_copy = bool(cl_device.type & cl.device_type.CPU) and bool(cl_device.host_unified_memory)
        self.peak = 0
        self._kernels: dict[tuple[str, str, tuple], Any] = {}
        # Events of host-to-device copies still in flight: pyopencl waits for a copy when its
        # event is garbage-collected, so they are kept until the queue is known to be done.
        self._uploads: list[Any] = []
        self.lock = threading.RLock()  # pools, kernel arguments and uploads are shared by threads
        # Held while a program or kernel is built for the cache (not while launching): one
        # build at a time per device, each entry built once and published complete.
        self._build_lock = threading.RLock()
        # Device-side input errors (an out-of-range label): kernels store a code, position and
        # value in a record of the launching thread instead of reading out of bounds, in-place
        # kernels of that thread read it and write nothing while it is set, and the thread
        # raises at its next read, as CUDA reports device asserts. Validating on the host
        # would drain the queue mid-step. Per thread, so no thread sees or skips for another's.
        self._errors = ThreadErrors()
        self._unguarded: Any = None  # a record that is never set (see unguarded)

    def __repr__(self) -> str:
        return f"CLDevice(opencl:{self.index}, {self.name!r})"

    # --- memory --------------------------------------------------------------------------
    def alloc(self, nbytes: int) -> Any:
        """A pooled buffer of ``nbytes``; on failure, free the pool's cached blocks and retry once."""
        if nbytes == 0:
            return None
        if nbytes > self.max_alloc:
            raise OutOfMemoryError(f"opencl:{self.index}", nbytes, self.pool.active_bytes,
                                   f"larger than the device's largest allocation, {self.max_alloc:,} bytes")
        with self.lock:
            try:
                buf = self.pool.allocate(nbytes)
            except self.cl.Error:
                self.pool.free_held()
                try:
                    buf = self.pool.allocate(nbytes)
                except self.cl.Error as exc:
                    raise OutOfMemoryError(f"opencl:{self.index}", nbytes, self.pool.active_bytes, str(exc)) from None
            self.peak = max(self.peak, self.pool.active_bytes)
        return buf

    def empty(self, shape: tuple[int, ...], dtype: Any) -> CLArray:
        """A new contiguous array (uninitialized). Any dtype can be stored; see check_dtype."""
        dtype = np.dtype(dtype)
        return CLArray(self, self.alloc(math.prod(shape) * dtype.itemsize), shape, dtype)

    def check_dtype(self, dtype: np.dtype) -> None:
        """For launchers: float64 on a device without it makes the op fall back to cpu (soft
        placement; strict raises). The data itself stays on the device."""
        if np.dtype(dtype) == np.float64 and not self.fp64:
            raise KernelUnsupported(f"opencl:{self.index} ({self.name}) has no float64 support")

    def upload(self, host: np.ndarray, out: CLArray) -> None:
        """Enqueue a host-to-device copy into ``out`` without waiting for it.

        The copy is taken from a private snapshot of ``host``: the caller may change or free its
        array right away, and the device still gets the values of the moment of the call.
        """
        if out.buf is None:
            return
        host = np.array(host, copy=True, order="C")
        with self.lock:
            self._uploads.append(self.cl.enqueue_copy(self.queue, out.buf, host, is_blocking=False))
            if len(self._uploads) > 64:
                done = self.cl.command_execution_status.COMPLETE
                self._uploads = [e for e in self._uploads if e.command_execution_status != done]

    def finished(self) -> None:
        """Called after the queue drained (a read or synchronize in this thread): the in-flight
        copies are done; device-side input errors found by kernels this thread launched
        surface now. Other threads' errors wait for their own next read."""
        self._uploads.clear()
        if self._errors.pending:
            self._raise_device_errors()

    def error_flag(self, message: str, shape: tuple[int, ...] = (),
                   index_shape: tuple[int, ...] | None = None) -> tuple[Any, np.int32]:
        """(this thread's error record on the device, a code) for a kernel that validates its
        input: on bad input it claims the record with the code, the flat position (row-major
        over ``shape``, the shape it walks) and the value, and does no out-of-bounds access.
        This thread then raises ``DeviceError`` at its next read or synchronize on this
        device, with ``message``'s ``{value}`` and ``{position}`` filled in (the position in
        the index tensor of ``index_shape``, default ``shape``; see ``backends/device_errors.py``).
        Until then the in-place kernels this thread launches here skip their writes."""
        return self.error_guard(), self._errors.code(message, shape, index_shape)

    def error_guard(self) -> Any:
        """This thread's error record, for an in-place kernel to read: while it holds a code
        (an error found by an earlier kernel of this thread, not yet raised), the kernel
        writes nothing. One int read on the device per work item; the host never waits."""
        mine = self._errors
        if mine.buf is None:
            with self.lock:
                buf = self.alloc(RECORD_BYTES)
                self.cl.enqueue_fill_buffer(self.queue, buf, np.int32(0), 0, RECORD_BYTES)
            mine.buf = buf  # this thread's alone: published once its zeroing is queued
        return mine.buf

    def unguarded(self) -> Any:
        """A record that never holds an error: the guard of a copy kernel writing a fresh
        output (the kernels always read one, so they need no test for NULL)."""
        if self._unguarded is None:
            with self.lock:
                if self._unguarded is None:
                    buf = self.alloc(RECORD_BYTES)
                    self.cl.enqueue_fill_buffer(self.queue, buf, np.int32(0), 0, RECORD_BYTES)
                    self._unguarded = buf  # published with its zeroing queued (one queue: in order)
        return self._unguarded

    def _raise_device_errors(self) -> None:
        """Read this thread's record (the queue has drained); raise what it holds, once."""
        mine = self._errors
        record = np.zeros(RECORD_BYTES // 8, np.int64)
        self.cl.enqueue_copy(self.queue, record, mine.buf, is_blocking=True)
        error = mine.error(record, f"opencl:{self.index}")
        if error is not None:
            with self.lock:
                self.cl.enqueue_fill_buffer(self.queue, mine.buf, np.int32(0), 0, RECORD_BYTES)
            raise error

    def launch(self, kernel: Any, global_size: tuple[int, ...], local_size: tuple[int, ...] | None, *args: Any) -> None:
        """Enqueue ``kernel`` on this device's queue; returns at once.

        A 1-D launch whose size is a multiple of 256 gets work-groups of 256 unless told
        otherwise: PoCL compiles a kernel again for every new work-group size, and left to
        itself it may put everything in one group, which runs on one core.
        """
        if local_size is None and len(global_size) == 1 and global_size[0] % 256 == 0:
            local_size = (256,)
        with self.lock:  # a kernel object holds its arguments: set and enqueue together
            kernel.set_args(*args)
            self.cl.enqueue_nd_range_kernel(self.queue, kernel, global_size, local_size)


class _HostView:
    """A mapped device buffer seen from NumPy: the array's ``base``, so the buffer (and its
    pool block) stays alive and mapped as long as any NumPy array views it."""

    __slots__ = ("array", "mapped", "__array_interface__")

    def __init__(self, array: CLArray, mapped: np.ndarray) -> None:
        self.array, self.mapped = array, mapped
        self.__array_interface__ = mapped.__array_interface__


def _details(cl: Any, d: Any) -> dict[str, Any]:
    """What ``tensorcore devices`` shows of an OpenCL device."""
    return {"platform": d.platform.name.strip(), "type": cl.device_type.to_string(d.type),
            "compute_units": d.max_compute_units, "float64": bool(d.double_fp_config)}


def _visible(devices: list[Any], spec: str | None) -> list[Any]:
    """Apply ``TENSORCORE_OPENCL_DEVICES``: indices or name substrings, in the order given."""
    if not spec:
        return devices
    chosen = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if part.isdigit():
            if int(part) >= len(devices):
                raise ValueError(f"TENSORCORE_OPENCL_DEVICES names device {part}, but there are only {len(devices)}")
            match = [devices[int(part)]]
        else:
            match = [d for d in devices if part.lower() in d.name.lower()]
            if not match:
                raise ValueError(f"TENSORCORE_OPENCL_DEVICES: no OpenCL device name contains {part!r}; "
                                 f"devices: {', '.join(d.name.strip() for d in devices)}")
        chosen += [d for d in match if d not in chosen]
    return chosen


class OpenCLBackend(Backend):
    """OpenCL devices through PyOpenCL, with hand-written kernels for the hot paths."""

    name = "opencl"
    # The ops with cfloat/cdouble kernels (opencl_ops/complex.py, whose NATIVE must equal this;
    # spelled out here so the class needs no kernel import). Every other op that reads or makes
    # complex numbers runs on cpu, counted (dispatch; docs/array-api.md).
    complex_kernels = frozenset({"add", "subtract", "multiply", "divide", "negative", "positive", "conj",
                                 "real", "imag", "abs", "sum", "mean", "matmul"})

    def __init__(self) -> None:
        import pyopencl as cl
        from tensorcore.backends import opencl_probe
        from tensorcore.backends.opencl_ops import KERNELS
        from tensorcore.backends.pyopencl_cache import guard_invoker_cache

        guard_invoker_cache()  # a damaged pyopencl cache must not fail every kernel
        where = {}  # device -> (platform index, device index): how the driver check finds it
        for p, platform in enumerate(cl.get_platforms()):
            for i, d in enumerate(platform.get_devices()):
                where[d.int_ptr] = (d, p, i)
        chosen = _visible([d for d, _, _ in where.values()], os.environ.get("TENSORCORE_OPENCL_DEVICES"))
        # Each device passes tensorcore's driver check (a child process, verdict cached) before
        # it gets an index: a driver that aborts in a kernel must not take the process with it.
        verdicts = opencl_probe.screen([where[d.int_ptr] for d in chosen])
        usable = [(d, v) for d, v in zip(chosen, verdicts) if v.ok]
        self._devices = [CLDevice(i, d) for i, (d, _) in enumerate(usable)]
        self._float64_off = {}
        for dev, (_, verdict) in zip(self._devices, usable):
            if verdict.float64 is False:  # claimed but failed the check: ops in float64 fall back
                dev.fp64 = False
                self._float64_off[dev.index] = verdict.reason
        self._unavailable = [DeviceInfo(None, d.name.strip(), int(d.global_mem_size), _details(cl, d),
                                        "opencl", v.reason) for d, v in zip(chosen, verdicts) if not v.ok]
        self.kernels = KERNELS

    def bind(self, kernel: Any, index: int) -> Any:
        """Kernels take their ``CLDevice`` first; bind it once per device."""

        return functools.partial(kernel, self._devices[index])

    def devices(self) -> list[DeviceInfo]:
        """Every visible OpenCL device that passed the driver check, with platform, type,
        compute units and float64 support."""
        import pyopencl as cl

        infos = []
        for dev in self._devices:
            details = _details(cl, dev.cl_device) | {"float64": dev.fp64}
            if dev.index in self._float64_off:
                details["float64_off"] = self._float64_off[dev.index]
            infos.append(DeviceInfo(Device("opencl", dev.index), dev.name, int(dev.cl_device.global_mem_size), details))
        return infos

    def unavailable_devices(self) -> list[DeviceInfo]:
        """Visible devices that failed the driver check, each with the reason and the fix."""
        return list(self._unavailable)

    # --- creation on the device (kernels/opencl/fill.cl, opencl_ops/creation.py) ---------------
    def full(self, shape: tuple[int, ...], value: Any, dtype: np.dtype, index: int) -> CLArray:
        """A new array of ``value``: allocated and filled on the device, no host copy."""
        from tensorcore.backends.opencl_ops import creation

        return creation.full(self._devices[index], shape, value, dtype)

    def arange(self, start: Any, stop: Any, step: Any, dtype: np.dtype, index: int) -> CLArray:
        """NumPy's arange, computed on the device value for value."""
        from tensorcore.backends.opencl_ops import creation

        return creation.arange(self._devices[index], start, stop, step, dtype)

    def eye(self, n_rows: int, n_cols: int, k: int, dtype: np.dtype, index: int) -> CLArray:
        """Zeros with ones on diagonal ``k``, written on the device."""
        from tensorcore.backends.opencl_ops import creation

        return creation.eye(self._devices[index], n_rows, n_cols, k, dtype)

    def fuse(self, program: Any, index: int) -> Any:
        """A generated kernel for a fused elementwise chain (see ``opencl_ops/fused.py``)."""
        from tensorcore.backends.opencl_ops.fused import fuse

        return fuse(self._devices[index], program)

    def device(self, index: int) -> CLDevice:
        """The ``CLDevice`` of ``opencl:index``."""
        return self._devices[index]

    def from_numpy(self, array: np.ndarray, index: int) -> CLArray:
        """Copy to the device without waiting (pyopencl keeps the host array alive until done)."""
        dev = self._devices[index]
        host = np.ascontiguousarray(array) if array.ndim else np.asarray(array).reshape(())
        out = dev.empty(host.shape, host.dtype)
        dev.upload(host, out)
        return out

    def to_numpy(self, data: CLArray) -> np.ndarray:
        """The values on the host, waiting for the work that produces ``data``.

        On a CPU device the result maps the device buffer (no copy) and keeps it alive while
        the NumPy array lives; like the cpu backend's ``x.numpy()``, it shares memory with the
        tensor. Elsewhere it is a copy.
        """
        from tensorcore.backends.opencl_ops.movement import contiguous

        data = contiguous(data)
        dev = data.dev
        if dev.zero_copy and data.buf is not None:
            mapped, _ = dev.cl.enqueue_map_buffer(
                dev.queue, data.buf, dev.cl.map_flags.READ | dev.cl.map_flags.WRITE, data.offset * data.dtype.itemsize,
                (data.size,), data.dtype, is_blocking=True)
            dev.finished()
            return np.asarray(_HostView(data, mapped)).reshape(data.shape)
        out = np.empty(data.shape, data.dtype)
        if data.buf is None:
            dev.finished()  # nothing to read, but earlier device errors still surface here
        else:
            data.dev.cl.enqueue_copy(data.dev.queue, out, data.buf, src_offset=data.offset * data.dtype.itemsize, is_blocking=True)
            data.dev.finished()  # an in-order queue: everything before the read is done
        return out

    def host_view(self, data: CLArray) -> np.ndarray | None:
        """On a CPU device (host memory), the contiguous ``data`` mapped for reading and
        writing, once the work queued before it is done; the mapping lasts as long as the
        NumPy array does. None elsewhere (device memory) or for a strided view."""
        dev = data.dev
        if not (dev.zero_copy and data.buf is not None and data.is_contiguous):
            return None
        mapped, _ = dev.cl.enqueue_map_buffer(
            dev.queue, data.buf, dev.cl.map_flags.READ | dev.cl.map_flags.WRITE, data.offset * data.dtype.itemsize,
            (data.size,), data.dtype, is_blocking=True)
        dev.finished()
        return np.asarray(_HostView(data, mapped)).reshape(data.shape)

    def host_views(self, datas: Sequence[CLArray]) -> list[np.ndarray | None]:
        """:meth:`host_view` of each of ``datas``, waiting once per device rather than once per
        array: the maps are queued without blocking and the last one waited for (the queue runs
        in order). Six maps cost 0.37 ms this way against 0.7 ms blocking, on PoCL."""
        mapped: list[tuple[CLArray, np.ndarray] | None] = []
        last: dict[CLDevice, Any] = {}
        for data in datas:
            dev = data.dev
            if not (dev.zero_copy and data.buf is not None and data.is_contiguous):
                mapped.append(None)
                continue
            array, last[dev] = dev.cl.enqueue_map_buffer(
                dev.queue, data.buf, dev.cl.map_flags.READ | dev.cl.map_flags.WRITE, data.offset * data.dtype.itemsize,
                (data.size,), data.dtype, is_blocking=False)
            mapped.append((data, array))
        for dev, event in last.items():
            event.wait()
            dev.finished()
        return [None if m is None else np.asarray(_HostView(*m)).reshape(m[0].shape) for m in mapped]

    def synchronize(self, index: int) -> None:
        """Wait for everything queued on the device."""
        self._devices[index].queue.finish()
        self._devices[index].finished()

    def memory_stats(self, index: int) -> dict[str, int]:
        """Bytes in use, held by the pool for reuse, and the peak in use."""
        pool = self._devices[index].pool
        return {"in_use": int(pool.active_bytes), "cached": int(pool.managed_bytes - pool.active_bytes),
                "peak": int(self._devices[index].peak)}
