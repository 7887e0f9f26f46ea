"""The child process of the OpenCL driver check (``opencl_probe``): runs what tensorcore's
kernels need on one device and reports each step on stdout, so that the parent knows how far
it got even when the driver kills it.

Run as ``python -m tensorcore.backends.opencl_probe <platform index> <device index>``. Each
step prints ``tensorcore-probe: {"start": step}`` before it runs and ``{"passed": step}`` or
``{"failed": step, "error": ...}`` after; the parent reads them once the process has ended.
The steps use tensorcore's own launchers and kernels (not copies), on small shapes whose
every element is compared with NumPy.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from tensorcore.backends.opencl_probe import _MARK, FAULT_ENV

_VECTOR16 = """
__kernel void probe_vector16(__global float* out, __global const float* a, float s) {
    size_t i = get_global_id(0);
    float16 x = vload16(i, a);
    float16 y = mad(x, (float16)(s), x * x);
    vstore16(fmax(y, (float16)(-1.0e30f)), i, out);
}
"""


def _say(**message: Any) -> None:
    print(_MARK + json.dumps(message), flush=True)  # flushed: the process may die at the next line


def _upload(dev: Any, host: np.ndarray) -> Any:
    out = dev.empty(host.shape, host.dtype)
    dev.upload(host, out)
    return out


def _read(dev: Any, arr: Any) -> np.ndarray:
    host = np.empty(arr.shape, arr.dtype)
    if arr.buf is not None:
        dev.cl.enqueue_copy(dev.queue, host, arr.buf, src_offset=arr.offset * arr.dtype.itemsize, is_blocking=True)
    return host


def _expect(what: str, got: np.ndarray, want: np.ndarray, rtol: float) -> None:
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {want.shape}")
    scale = float(np.abs(want).max()) if want.size else 0.0
    err = float(np.abs(got.astype(np.float64) - want).max()) if want.size else 0.0
    if not np.isfinite(err) or err > rtol * max(scale, 1.0):
        raise AssertionError(f"{what}: wrong results (largest error {err:.3g} for values up to {scale:.3g})")


def _vector16(dev: Any, rng: np.random.Generator) -> None:
    a = rng.standard_normal(4 * 16).astype(np.float32)
    kernel = dev.build("opencl_probe (float16 vectors)", _VECTOR16, []).probe_vector16
    out = dev.empty(a.shape, np.float32)
    dev.launch(kernel, (4,), None, out.buf, _upload(dev, a).buf, np.float32(0.5))
    _expect("float16 arithmetic", _read(dev, out), a.astype(np.float64) * 0.5 + a.astype(np.float64) ** 2, 1e-5)


def _gemm(dev: Any, rng: np.random.Generator, dtype: Any = np.float32, rtol: float = 1e-4) -> None:
    from tensorcore.backends.opencl_ops.matmul import matmul

    a = rng.standard_normal((33, 70)).astype(dtype)
    b = rng.standard_normal((70, 47)).astype(dtype)
    bt = np.ascontiguousarray(b.T)
    x, y, yt = _upload(dev, a), _upload(dev, b), _upload(dev, bt)
    want = a.astype(np.float64) @ b.astype(np.float64)
    _expect(f"{np.dtype(dtype)} matmul", _read(dev, matmul(dev, x, y)), want, rtol)
    transposed = yt.view((70, 47), (1, 70), 0)  # packed from columns: the other packer
    _expect(f"{np.dtype(dtype)} matmul of a transposed operand", _read(dev, matmul(dev, x, transposed)), want, rtol)


def _conv2d(dev: Any, rng: np.random.Generator) -> None:
    from tensorcore.backends.opencl_ops.nn_conv import conv2d

    x = rng.standard_normal((2, 3, 9, 16)).astype(np.float32)  # 16 columns: the packer by rows too
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    got = conv2d(dev, _upload(dev, x), _upload(dev, w), _upload(dev, b), stride=(1, 1), padding=(1, 1),
                 dilation=(1, 1), groups=1)
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.zeros((2, 4, 9, 16)) + b.reshape(1, 4, 1, 1)
    for i in range(3):
        for j in range(3):
            want += np.einsum("nchw,oc->nohw", padded[:, :, i:i + 9, j:j + 16], w[:, :, i, j].astype(np.float64))
    _expect("conv2d", _read(dev, got), want, 1e-4)


def _float64(dev: Any, rng: np.random.Generator) -> None:
    _gemm(dev, rng, np.float64, 1e-12)


def main(argv: list[str]) -> int:
    """Check device ``argv[1]`` of platform ``argv[0]``; exit status 0 if every step passed."""
    warnings.simplefilter("ignore")  # compiler chatter would only clutter the parent's report
    try:  # a driver that kills this process must not leave a core file in the user's folder
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    except (ImportError, ValueError, OSError):
        pass
    fault = os.environ.get(FAULT_ENV, "")
    _say(start="start")
    try:
        import pyopencl as cl
        from tensorcore.backends.opencl import CLDevice
        from tensorcore.backends.pyopencl_cache import guard_invoker_cache

        guard_invoker_cache()
        platform_index, device_index = int(argv[0]), int(argv[1])
        dev = CLDevice(0, cl.get_platforms()[platform_index].get_devices()[device_index])
    except Exception as exc:
        _say(failed="start", error=f"{type(exc).__name__}: {exc}"[:500])
        return 1
    _say(passed="start", seconds=0.0)
    steps: list[tuple[str, Callable[..., None]]] = [("vector16", _vector16), ("gemm", _gemm), ("conv2d", _conv2d)]
    if dev.fp64:
        steps.append(("float64", _float64))
    rng = np.random.default_rng(0)
    for step, check in steps:
        _say(start=step)
        began = time.perf_counter()
        if fault == f"abort:{step}":
            os.abort()  # a driver's abort, as the tests need one
        try:
            if fault == f"fail:{step}":
                raise AssertionError(f"failure injected by {FAULT_ENV}={fault}")
            check(dev, rng)
        except Exception as exc:  # reported, not raised: the parent judges
            _say(failed=step, error=f"{type(exc).__name__}: {exc}"[:500])
            return 1
        _say(passed=step, seconds=round(time.perf_counter() - began, 3))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
