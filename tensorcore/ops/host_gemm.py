"""Matrix products on the host: NumPy's BLAS warmed first, and optionally the faster of two
equivalent BLAS calls.

**Warm-up.** On the family-23 EPYC (NumPy 2.4's OpenBLAS 0.3.31, Haswell kernels) a process
starts with small products slow: ``(64, 128) @ (128, 128)`` float32 takes ~135 us with one
BLAS thread until one larger product has run, ~63 us after, with the same bits; the cause is
not known. So :func:`gemm` runs :func:`warm_blas` once per dtype and BLAS thread count before
its first product. The bits do not change, so this is always on.

**Autotuning** (``TENSORCORE_GEMM_AUTOTUNE=1`` or :func:`set_autotune`; off by default).
``a @ b`` can also be computed as ``(b^T @ a^T)^T``: the same products, with the roles of the
BLAS call's M and N dimensions exchanged. Which is faster depends on the BLAS, the CPU, the
thread count and the shape: on that machine, at one thread, a CNN's stacked
``(64, 288) @ (288, 256)`` products run 1.6x faster transposed and its weight gradient's 2.4x,
while the digits MLP's products run 15-40% slower transposed; at two threads the transposed
call won nowhere measured (``tensorcore bench host-gemm``). With autotuning on, :func:`gemm`
times both the first time it sees a shape and layout at a BLAS thread count, keeps the faster
(the transposed one only where it wins by :data:`MARGIN`), and returns a C-contiguous result
as ``np.matmul`` does. The two calls round differently in the last bits, and a shape whose
calls are about as fast may be decided differently by another process: that would break the
bitwise exact resume of ``docs/training.md``, which is why it is opt-in. Within a process the
call for a shape, layout and thread count is fixed, so eager and traced code agree.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

MARGIN = 1.2  # the transposed call must be this much faster to be chosen: borderline shapes stay put
MIN_WORK = 1 << 15  # multiply-adds below which BLAS's fixed cost dominates: not worth timing
BIG_WORK = 1 << 24  # multiply-adds above which a call takes ~1 ms or more: fewer timed rounds
MAX_WORK = 1 << 29  # multiply-adds above which timing both calls costs too much (~20 ms a call)
ROUNDS, BIG_ROUNDS = 5, 2  # timed rounds of each call, interleaved; medians decide
_BLAS_DTYPES = frozenset("fdFD")  # the dtypes NumPy hands to BLAS
MAX_SHAPES = 4096  # operand layouts remembered; a new one beyond takes NumPy's own call, untimed

_choices: dict[tuple, bool] = {}  # (shapes, strides, dtype, BLAS threads) -> whether the transposed call is faster
_calls: dict[tuple, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {}  # every layout seen -> its call
_lock = threading.Lock()
_enabled = os.environ.get("TENSORCORE_GEMM_AUTOTUNE", "0").strip() == "1"
_blas_threads: Callable[[], Any] | None = None  # reads NumPy's BLAS thread count; made at first use
_warmed: set[tuple] = set()  # (dtype char, BLAS threads) warmed in this process


def set_autotune(enabled: bool) -> None:
    """Turn the choice between the two calls on or off (off: always ``np.matmul``'s own call);
    forgets the choices made so far (and which configurations were warmed: warmed again, no harm)."""
    global _enabled
    _enabled = bool(enabled)
    _choices.clear()
    _calls.clear()
    _warmed.clear()


@contextmanager
def autotuning(enabled: bool) -> Iterator[None]:
    """Autotuning on or off inside the block, keeping the choices made (benchmarks' A/B)."""
    global _enabled
    was, _enabled = _enabled, bool(enabled)
    try:
        yield
    finally:
        _enabled = was


def autotune_enabled() -> bool:
    """Whether :func:`gemm` chooses between the two calls."""
    return _enabled


def choices() -> dict[tuple, bool]:
    """The decisions made so far: ``(a.shape, b.shape, a.strides, b.strides, dtype char, BLAS
    threads)`` -> whether the transposed call was chosen (a copy, for reports and tests)."""
    return dict(_choices)


def choice_for(a: np.ndarray, b: np.ndarray) -> bool | None:
    """Whether the transposed call was chosen for ``a @ b`` at the current BLAS thread count
    (None: not decided by timing, so NumPy's own call)."""
    if a.dtype != b.dtype:
        return None
    return _choices.get(_choice_key(a, b, _threads()))


def _choice_key(a: np.ndarray, b: np.ndarray, threads: Any) -> tuple:
    """The key of a timed decision (one dtype: only same-dtype products are timed)."""
    return a.shape, b.shape, a.strides, b.strides, a.dtype.char, threads


def _threads() -> Any:
    global _blas_threads
    if _blas_threads is None:
        _blas_threads = _thread_counter()
    return _blas_threads()


def _thread_counter() -> Callable[[], Any]:
    """A cheap reader of NumPy's BLAS thread count (None where it cannot be read). Which call
    is faster, and whether BLAS is warm, depend on it, and ``threadpool_limits`` changes it.

    threadpoolctl finds the library once (~7 ms); its public ``get_num_threads`` looks the
    symbol up on every call (1 us), so the symbol is taken once where its private lookup exists.
    """
    try:
        from threadpoolctl import ThreadpoolController

        blas = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    except Exception:  # noqa: BLE001 - no thread count is a usable answer
        return lambda: None
    if not blas:
        return lambda: None
    lib = blas[0]
    symbol = "omp_get_max_threads" if getattr(lib, "threading_layer", None) == "openmp" else f"{lib.internal_api}_get_num_threads"
    fast = getattr(lib, "_get_symbol", lambda name: None)(symbol)
    return fast if fast is not None else lib.get_num_threads


def gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul(a, b)``, NumPy's BLAS warmed first; with autotuning, through the faster of its
    two equivalent BLAS calls on this machine. C-contiguous, with NumPy's errors and broadcasting."""
    threads = _threads()
    if (a.dtype.char, threads) not in _warmed:
        _warm_once(a.dtype, threads)
    if not _enabled:
        return np.matmul(a, b)
    key = (a.shape, b.shape, a.strides, b.strides, a.dtype.char, b.dtype.char, threads)
    call = _calls.get(key)  # with the thread count, about 2 us a product
    if call is None:
        call = _first_call(a, b, key)
    return call(a, b)


def _first_call(a: np.ndarray, b: np.ndarray, key: tuple) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The call for a layout not seen before: decided by timing where BLAS runs it, else NumPy's."""
    if len(_calls) >= MAX_SHAPES:
        return np.matmul
    call = np.matmul
    if a.ndim >= 2 and b.ndim >= 2 and a.dtype == b.dtype and a.dtype.char in _BLAS_DTYPES:
        rounds = _rounds(a, b)
        if rounds:
            call = transposed_call if _time_and_decide(a, b, _choice_key(a, b, key[-1]), rounds) else np.matmul
    _calls[key] = call  # an untimed key is NumPy's call: its first real call raises what NumPy raises
    return call


def transposed_call(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` computed as ``(b^T @ a^T)^T``, copied to C order."""
    return np.ascontiguousarray(np.matmul(b.swapaxes(-1, -2), a.swapaxes(-1, -2)).swapaxes(-1, -2))


def decide(direct_s: list[float], transposed_s: list[float]) -> bool:
    """Whether timings (seconds per call of each) say to use the transposed call: its median
    must beat the direct call's by :data:`MARGIN`."""
    return float(np.median(transposed_s)) * MARGIN < float(np.median(direct_s))


def _rounds(a: np.ndarray, b: np.ndarray) -> int:
    """Timed rounds for this product: none where it is not worth timing (too small, too big,
    or M == N, where both calls are the same problem), fewer for a big one."""
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    try:
        stack = int(np.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), dtype=np.int64))
    except ValueError:
        return 0  # stacks that do not broadcast: np.matmul says so
    work = stack * m * k * n
    if m == n or not MIN_WORK <= work <= MAX_WORK:
        return 0
    return ROUNDS if work <= BIG_WORK else BIG_ROUNDS


def warm_blas(dtype: np.dtype | type = np.float32) -> None:
    """Run one ``(64, 256) @ (256, 128)`` product of ``dtype`` through NumPy's BLAS: after it,
    small products of that dtype at the current thread count run up to 2x faster on the machine
    of the module's docstring (the state lasts for the process; the bits are the same)."""
    np.matmul(np.ones((64, 256), dtype), np.ones((256, 128), dtype))


def _warm_once(dtype: np.dtype, threads: Any) -> None:
    if dtype.char in _BLAS_DTYPES:
        warm_blas(dtype)
    _warmed.add((dtype.char, threads))


def _time_and_decide(a: np.ndarray, b: np.ndarray, key: tuple, rounds: int) -> bool:
    """Time both calls (after one untimed call of each; BLAS is warm) and remember the faster.
    Floating-point warnings are the real call's to give, once, so the timed calls keep quiet."""
    with np.errstate(all="ignore"):
        np.matmul(a, b)  # raises NumPy's error for operands that do not fit, before anything is kept
        transposed_call(a, b)
        direct_s, transposed_s = [], []
        for _ in range(rounds):
            direct_s.append(_seconds(np.matmul, a, b))
            transposed_s.append(_seconds(transposed_call, a, b))
        swap = decide(direct_s, transposed_s)
    with _lock:  # the first decision stands, so every thread uses the same call for this shape
        return _choices.setdefault(key, swap)


def _seconds(call: Any, a: np.ndarray, b: np.ndarray) -> float:
    start = time.perf_counter()
    call(a, b)
    return time.perf_counter() - start
