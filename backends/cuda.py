"""The ``cuda`` backend: CuPy arrays with hand-written CUDA kernels (``kernels/cuda/*.cu``).

CuPy is the optional extra ``tensorcore[cuda]`` and is imported only when the backend starts.
Without CuPy, or without a driver or GPU, the constructor raises and the registry lists the
backend as unavailable with that reason; everything else works as before.

Devices are ``cuda:0``, ``cuda:1``, … in CUDA's order, so ``CUDA_VISIBLE_DEVICES`` selects and
renumbers them. Each device has one non-blocking stream: kernels are launched on it and
return at once, and the host waits only in ``to_numpy`` and ``synchronize``. Memory comes
from CuPy's pool; a failed allocation frees the pool's cached blocks and is tried once more,
then raises ``tc.OutOfMemoryError``. Kernels are compiled by NVRTC through ``cupy.RawModule``
(CuPy's compile cache keys the binary on source, options, architecture and compiler
version), once per (source, ``-D`` defines) per device.

The backend's arrays are ``cupy.ndarray`` (shape, NumPy dtype, byte strides, and a data
pointer that already includes the view's offset). Launchers live in ``backends/cuda_ops/``.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from tensorcore.backends.device_errors import RECORD_BYTES, ThreadErrors

from tensorcore.backend import Backend, DeviceInfo
from tensorcore.device import Device
from tensorcore.errors import KernelBuildError, OutOfMemoryError

META_CACHE = 1024  # strided-layout descriptors kept on each device (see CUDADevice.meta)
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+\.cuh)"\s*$', re.MULTILINE)


def kernel_source(source: str) -> str:
    """The text of ``kernels/cuda/<source>`` with its ``#include "x.cuh"`` lines replaced by the
    headers' text (each once), so NVRTC needs no include path and CuPy's compile cache, which
    keys on the source text, sees a header change."""
    from tensorcore.kernels import source as read

    seen: set[str] = set()

    def expand(text: str) -> str:
        def one(m: re.Match) -> str:
            name = m.group(1)
            if name in seen:
                return ""
            seen.add(name)
            return expand(read(f"cuda/{name}"))

        return _INCLUDE.sub(one, text)

    return expand(read(f"cuda/{source}"))


class CUDADevice:
    """One CUDA device: its stream, CuPy's memory pool, compiled modules and error flags.

    Threads share it. Compiled modules and functions are built under ``_build_lock`` (each
    once) and published only when complete; the layout descriptors' cache has its own lock;
    device-side input errors belong to the thread that launched the op (see ``error_flag``).
    """

    def __init__(self, cp: Any, index: int) -> None:
        self.cp, self.index = cp, index
        self.device = cp.cuda.Device(index)
        props = cp.cuda.runtime.getDeviceProperties(index)
        name = props.get("name", b"")
        self.name = (name.decode() if isinstance(name, bytes) else str(name)).strip()
        self.memory_bytes = int(props.get("totalGlobalMem", 0))
        self.capability = f"{props.get('major', '?')}.{props.get('minor', '?')}"
        self.sm_count = int(props.get("multiProcessorCount", 1)) or 1
        with self.device:
            self.stream = cp.cuda.Stream(non_blocking=True)
        self.pool = cp.get_default_memory_pool()  # per-device inside; queried under `with self.device`
        self.peak = 0
        self._init_shared_state()

    def _init_shared_state(self) -> None:
        """The caches, their locks and the error flags' state (empty), shared by threads."""
        self._modules: dict[tuple, Any] = {}
        self._functions: dict[tuple, Any] = {}
        self._build_lock = threading.RLock()  # one build at a time; launches never wait for it
        self._meta: OrderedDict[tuple, Any] = OrderedDict()
        self._meta_lock = threading.Lock()  # the LRU order changes on every hit
        self._errors = ThreadErrors()
        self._unguarded: Any = None  # a record that is never set (see unguarded)
        self._unguarded_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CUDADevice(cuda:{self.index}, {self.name!r})"

    @property
    def label(self) -> str:
        """``cuda:<index>``, as errors name the device."""
        return f"cuda:{self.index}"

    def activate(self) -> _Active:
        """Context manager: this device and its stream are current (CuPy allocates and launches
        on the current device and stream)."""
        return _Active(self)

    # --- memory --------------------------------------------------------------------------
    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """A new C-contiguous ``cupy.ndarray`` (uninitialized) from the pool, on the current
        stream; on failure the pool's cached blocks are freed and it is tried once more."""
        cp = self.cp
        dtype = np.dtype(dtype)
        try:
            out = cp.empty(shape, dtype)
        except cp.cuda.memory.OutOfMemoryError:
            self.pool.free_all_blocks()
            try:
                out = cp.empty(shape, dtype)
            except cp.cuda.memory.OutOfMemoryError as exc:
                nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                raise OutOfMemoryError(self.label, nbytes, int(self.pool.used_bytes()), str(exc)) from None
        used = int(self.pool.used_bytes())
        if used > self.peak:
            self.peak = used
        return out

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """A new C-contiguous array of zeros: ``empty`` and a ``cudaMemsetAsync`` on the current
        stream (all-zero bytes are 0, 0.0 and False alike; no kernel needed)."""
        out = self.empty(tuple(shape), dtype)
        if out.nbytes:
            out.data.memset_async(0, out.nbytes)
        return out

    def view(self, x: Any, shape: tuple[int, ...], strides: tuple[int, ...], offset: int = 0) -> Any:
        """A view of ``x``'s memory: ``shape``, element ``strides`` (any sign) and an element
        ``offset``, both relative to ``x``'s first element. No kernel, no copy: a new
        ``cupy.ndarray`` header that keeps ``x``'s allocation alive."""
        shape = tuple(int(n) for n in shape)
        if 0 in shape:
            return self.empty(shape, x.dtype)
        size = x.dtype.itemsize
        return self.cp.ndarray(shape, x.dtype, memptr=x.data + offset * size, strides=tuple(s * size for s in strides))

    def meta(self, values: tuple[int, ...]) -> Any:
        """``values`` as an int64 array on the device (a strided kernel's shape and strides),
        uploaded once per distinct tuple and kept (least recently used dropped first)."""
        with self._meta_lock:
            arr = self._meta.get(values)
            if arr is not None:
                self._meta.move_to_end(values)
                return arr
        arr = self.empty((len(values),), np.int64)
        arr.set(np.asarray(values, np.int64), stream=self.stream)  # queued before any kernel that reads it
        with self._meta_lock:
            arr = self._meta.setdefault(values, arr)  # published with its upload queued; another thread's may win
            if len(self._meta) > META_CACHE:
                self._meta.popitem(last=False)
        return arr

    # --- device-side input errors ---------------------------------------------------------
    def error_flag(self, message: str, shape: tuple[int, ...] = (),
                   index_shape: tuple[int, ...] | None = None) -> tuple[Any, np.int32]:
        """(this thread's error record on the device, a code) for a kernel that validates its
        input: on bad input it claims the record with the code, the flat position (row-major
        over ``shape``, the shape it walks) and the value, and touches nothing outside its
        arrays. This thread raises ``DeviceError`` at its next read or synchronize on this
        device (as CUDA reports device asserts: late), with ``message``'s ``{value}`` and
        ``{position}`` filled in (see ``backends/device_errors.py``). Until then the in-place
        kernels this thread launches here write nothing. Each thread has its own record: an
        error never surfaces in another thread, nor stops its updates."""
        return self.error_guard(), self._errors.code(message, shape, index_shape)

    def error_guard(self) -> Any:
        """This thread's error record, for an in-place kernel to read: while it holds a code
        (an error found by an earlier kernel of this thread, not yet raised), the kernel
        writes nothing. One int read on the device per thread; the host never waits."""
        mine = self._errors
        if mine.buf is None:
            buf = self.empty((RECORD_BYTES // 4,), np.int32)
            buf.fill(0)
            mine.buf = buf  # this thread's alone: published once its zeroing is queued
        return mine.buf

    def unguarded(self) -> Any:
        """A record that never holds an error: the guard of a copy kernel writing a fresh
        output (the copy kernels always read one)."""
        if self._unguarded is None:
            with self._unguarded_lock:
                if self._unguarded is None:
                    self._unguarded = self.zeros((RECORD_BYTES // 4,), np.int32)  # queued before any reader
        return self._unguarded

    def finished(self) -> None:
        """Called once the stream has drained (a read or synchronize in this thread): raise the
        device-side input error that a kernel launched by this thread found meanwhile, once."""
        mine = self._errors
        if not mine.pending:
            return
        with self.activate():
            record = np.asarray(mine.buf.get(stream=self.stream)).astype(np.int32)
            error = mine.error(record, self.label)
            if error is not None:
                mine.buf.fill(0)
        if error is not None:
            raise error

    # --- kernels -----------------------------------------------------------------------------
    def function(self, source: str, name: str, defines: tuple[tuple[str, str], ...] = ()) -> Any:
        """Kernel ``name`` of ``kernels/cuda/<source>`` built with ``-D`` ``defines`` (a
        ``cupy.RawKernel``), compiled for this device once per (source, defines) and cached."""
        key = (source, defines, name)
        fn = self._functions.get(key)
        if fn is None:
            with self._build_lock:
                fn = self._functions.get(key)  # another thread may have built it meanwhile
                if fn is None:
                    fn = self._functions[key] = self._load_function(source, defines, name)  # complete
        return fn

    def _load_function(self, source: str, defines: tuple[tuple[str, str], ...], name: str) -> Any:
        module, text, options = self._module(source, defines)
        cp = self.cp
        try:
            with self.device:
                return module.get_function(name)  # NVRTC compiles here, on first use
        except cp.cuda.compiler.CompileException as exc:
            raise _build_error(source, text, f"{self.label} ({self.name}, sm_{self.capability})", options,
                               str(exc)) from None
        except cp.cuda.driver.CUDADriverError as exc:
            raise KernelBuildError(f"kernel source {source} built on {self.label}, but loading kernel {name!r} "
                                   f"failed: {exc}") from None

    def generated_function(self, label: str, text: str, name: str) -> Any:
        """Kernel ``name`` of generated CUDA ``text`` (``label`` names it in build errors),
        compiled once per text (and kept across runs by CuPy's compile cache)."""
        key = ("<generated>", text, name)
        fn = self._functions.get(key)
        if fn is None:
            cp = self.cp
            with self._build_lock:
                fn = self._functions.get(key)
                if fn is None:
                    try:
                        with self.device:
                            fn = cp.RawModule(code=text).get_function(name)
                    except cp.cuda.compiler.CompileException as exc:
                        raise _build_error(label, text, f"{self.label} ({self.name}, sm_{self.capability})", (),
                                           str(exc)) from None
                    self._functions[key] = fn
        return fn

    def _module(self, source: str, defines: tuple[tuple[str, str], ...]) -> tuple[Any, str, tuple[str, ...]]:
        """(module, text, options); the module compiles lazily, at its first ``get_function``,
        so it is used only under ``_build_lock`` (by ``function``)."""
        key = (source, defines)
        entry = self._modules.get(key)
        if entry is None:
            text = kernel_source(source)
            options = tuple(f"-D{k}={v}" for k, v in defines)
            entry = self._modules[key] = (self.cp.RawModule(code=text, options=options), text, options)
        return entry

    def launch(self, source: str, name: str, defines: tuple[tuple[str, str], ...], grid: tuple[int, ...],
               block: tuple[int, ...], args: tuple) -> None:
        """Enqueue kernel ``name`` on this device's stream (the caller has activated the device,
        as bound kernels are). ``args``: cupy arrays (passed as pointers) and NumPy scalars of the
        kernel's exact parameter types. Returns at once."""
        self.function(source, name, defines)(grid, block, args)


class _Active:
    """``with dev.activate():`` makes ``dev``'s device and stream current, restoring both after."""

    __slots__ = ("dev",)

    def __init__(self, dev: CUDADevice) -> None:
        self.dev = dev

    def __enter__(self) -> CUDADevice:
        self.dev.device.__enter__()
        self.dev.stream.__enter__()
        return self.dev

    def __exit__(self, *exc: Any) -> None:
        try:
            self.dev.stream.__exit__(*exc)
        finally:
            self.dev.device.__exit__(*exc)


def _build_error(source: str, text: str, device: str, options: tuple[str, ...], log: str) -> KernelBuildError:
    lines = text.splitlines()
    where = ""
    m = re.search(r"\((\d+)\): (?:error|catastrophic error)", log)  # NVRTC: "<name>(LINE): error: ..."
    if m and 0 < int(m.group(1)) <= len(lines):
        where = f"\n{source} (headers inlined) line {m.group(1)}: {lines[int(m.group(1)) - 1].strip()}"
    return KernelBuildError(f"kernel source {source} failed to build on {device} with options "
                            f"{' '.join(options) or '(none)'}:{where}\ncompiler log:\n{log.strip()}")


def _start_cupy() -> tuple[Any, int]:
    """Import CuPy and count the visible devices, or raise saying what is missing."""
    try:
        import cupy
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == "cupy":
            raise RuntimeError("CuPy is not installed: pip install 'tensorcore[cuda]'") from None
        raise RuntimeError(f"CuPy is installed but failed to import: {exc}") from None
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError: no driver, driver too old, no device
        raise RuntimeError(f"no CUDA driver or GPU: {exc}") from None
    if count == 0:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        raise RuntimeError(f"no CUDA driver or GPU: the driver reports no device{hint}")
    return cupy, count


class CUDABackend(Backend):
    """NVIDIA GPUs through CuPy, with hand-written kernels for the hot paths."""

    name = "cuda"
    # The ops with complex kernels (cuda_ops/complex.py, whose NATIVE must equal this; compiled,
    # never run on a GPU yet; matmul is cuBLAS's through CuPy). Every other op that reads or
    # makes complex numbers runs on cpu, counted (dispatch; docs/array-api.md).
    complex_kernels = frozenset({"add", "subtract", "multiply", "divide", "negative", "positive", "conj", "real",
                                 "imag", "abs", "sum", "mean", "matmul"})

    def __init__(self) -> None:
        cp, count = _start_cupy()
        from tensorcore.backends.cuda_ops import KERNELS

        self.cp = cp
        self._devices = [CUDADevice(cp, i) for i in range(count)]
        self.kernels = KERNELS

    def bind(self, kernel: Any, index: int) -> Any:
        """Kernels take their ``CUDADevice`` first and run with its device and stream current."""
        dev = self._devices[index]

        def bound(*args: Any, **attrs: Any) -> Any:
            with dev.activate():
                return kernel(dev, *args, **attrs)

        bound.__name__ = getattr(kernel, "__name__", "kernel")
        bound.__doc__ = getattr(kernel, "__doc__", None)
        return bound

    def devices(self) -> list[DeviceInfo]:
        """Every visible device with its compute capability and multiprocessor count."""
        return [DeviceInfo(Device("cuda", d.index), d.name, d.memory_bytes,
                           {"compute_capability": d.capability, "multiprocessors": d.sm_count,
                            "cupy": self.cp.__version__})
                for d in self._devices]

    def fuse(self, program: Any, index: int) -> Any:
        """A generated kernel for a fused elementwise chain (see ``cuda_ops/fused.py``)."""
        from tensorcore.backends.cuda_ops.fused import fuse

        return fuse(self._devices[index], program)

    def device(self, index: int) -> CUDADevice:
        """The ``CUDADevice`` of ``cuda:index``."""
        return self._devices[index]

    def _owner(self, data: Any) -> CUDADevice:
        return self._devices[int(data.device.id)]

    # --- creation on the device (cuda_ops/creation.py): no host array, no upload ---------------
    def full(self, shape: tuple[int, ...], value: Any, dtype: np.dtype, index: int) -> Any:
        """A new array of ``value``, allocated from the pool and filled on the device's stream."""
        from tensorcore.backends.cuda_ops import creation

        dev = self._devices[index]
        with dev.activate():
            return creation.full(dev, shape, value, dtype)

    def arange(self, start: Any, stop: Any, step: Any, dtype: np.dtype, index: int) -> Any:
        """NumPy's arange, computed on the device (bool and float16 are built on the host)."""
        from tensorcore.backends.cuda_ops import creation

        dev = self._devices[index]
        with dev.activate():
            out = creation.arange(dev, start, stop, step, dtype)
        return super().arange(start, stop, step, dtype, index) if out is None else out

    def eye(self, n_rows: int, n_cols: int, k: int, dtype: np.dtype, index: int) -> Any:
        """Zeros with ones on diagonal ``k``, written on the device."""
        from tensorcore.backends.cuda_ops import creation

        dev = self._devices[index]
        with dev.activate():
            return creation.eye(dev, n_rows, n_cols, k, dtype)

    def from_numpy(self, array: np.ndarray, index: int) -> Any:
        """Copy to the device on its stream. From pageable host memory the driver stages the
        copy before returning, so the host array may be freed right after."""
        dev = self._devices[index]
        host = np.ascontiguousarray(array) if array.ndim else np.asarray(array).reshape(())
        with dev.activate():
            out = dev.empty(host.shape, host.dtype)
            if out.size:
                out.set(host, stream=dev.stream)
        return out

    def to_numpy(self, data: Any) -> np.ndarray:
        """The values on the host: waits for the stream (the copy is queued after the work that
        produces ``data``), then raises device-side input errors, if any. A strided view is
        first gathered into a contiguous array by the backend's own copy kernel."""
        from tensorcore.backends.cuda_ops.movement_copy import contiguous

        dev = self._owner(data)
        with dev.activate():
            dense = contiguous(dev, data) if data.size else data
            host = dense.get(stream=dev.stream)  # blocking: synchronizes the stream
        dev.finished()
        return np.asarray(host).reshape(data.shape)

    # --- DLPack (zero-copy exchange with CuPy, PyTorch, JAX, ...) -----------------------------
    def to_dlpack(self, data: Any, *, stream: Any = None, max_version: Any = None, dl_device: Any = None,
                  copy: Any = None) -> Any:
        """``data``'s DLPack capsule, zero-copy, with this device's stream current: CuPy's
        ``__dlpack__`` then makes the consumer's ``stream`` wait for the work queued on ours
        (an event, not a host wait). CuPy versions whose ``__dlpack__`` takes only ``stream``
        get only that. Device errors still pending (a bad index found by a kernel) are not
        raised here: that would need a host wait; they come at the next read, as always."""
        dev = self._owner(data)
        extra = {k: v for k, v in (("max_version", max_version), ("dl_device", dl_device), ("copy", copy))
                 if v is not None}
        with dev.activate():
            try:
                return data.__dlpack__(stream=stream, **extra)
            except TypeError:
                if not extra:
                    raise
                if copy or (dl_device is not None and tuple(dl_device) != tuple(data.__dlpack_device__())):
                    raise BufferError(f"CuPy {self.cp.__version__} cannot export to DLPack device {dl_device} "
                                      f"or copy on export (copy={copy}); move the tensor with .to_device first") from None
                return data.__dlpack__(stream=stream)  # an older CuPy: the legacy signature

    def from_dlpack(self, obj: Any, index: int) -> Any:
        """A CuPy array sharing the memory of DLPack producer ``obj`` (which lives on ``cuda:index``),
        imported with ``cuda:index``'s stream current: the producer orders its pending work
        before our stream, as the protocol's ``stream`` argument asks."""
        if not 0 <= index < len(self._devices):
            raise RuntimeError(f"the object lives on CUDA device {index}, but this process sees "
                               f"{len(self._devices)} CUDA device(s) (CUDA_VISIBLE_DEVICES?)")
        dev = self._devices[index]
        with dev.activate():
            return self.cp.from_dlpack(obj)

    def synchronize(self, index: int) -> None:
        """Wait for everything queued on the device's stream."""
        dev = self._devices[index]
        dev.stream.synchronize()
        dev.finished()

    def memory_stats(self, index: int) -> dict[str, int]:
        """Bytes in use, held by CuPy's pool for reuse, and the peak in use (seen at allocations)."""
        dev = self._devices[index]
        with dev.device:
            used, free = int(dev.pool.used_bytes()), int(dev.pool.free_bytes())
        dev.peak = max(dev.peak, used)
        return {"in_use": used, "cached": free, "peak": dev.peak}
