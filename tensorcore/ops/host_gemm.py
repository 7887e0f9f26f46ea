"""Matrix products on the host in whichever of two equivalent BLAS calls is faster here.

``a @ b`` can also be computed as ``(b^T @ a^T)^T``: the same products, with the roles of the
BLAS call's M and N dimensions exchanged. Which of the two is faster depends on the BLAS build,
the CPU, the thread count and the shape. NumPy 2.4's OpenBLAS (Haswell kernels) on an AMD EPYC
of CPU family 23, one thread: a CNN's stacked ``(64, 288) @ (288, 256)`` products run 1.6x
faster transposed and its weight gradient's 2.4x, while the digits MLP's products run 15-40%
slower transposed; with two threads the transposed call won nowhere measured (at best a tie)
(``tensorcore bench host-gemm``).

So :func:`gemm` times both calls the first time it sees a shape and layout at a BLAS thread
count, after warming BLAS (:func:`warm_blas`), keeps the faster (the transposed one only where
it wins by :data:`MARGIN`), and returns a C-contiguous result as ``np.matmul`` does. The two
calls round differently in the last bits. Within a process the call for a given shape, layout
and thread count is fixed, so eager and traced code on the same operands get the same bits.
Another process (an MPI worker, a resumed run) may decide a shape whose two calls are about as
fast differently. ``TENSORCORE_GEMM_AUTOTUNE=0`` (or :func:`set_autotune`) makes every product
``np.matmul``'s own call, bit for bit, for runs that must repeat exactly.
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
_enabled = os.environ.get("TENSORCORE_GEMM_AUTOTUNE", "1").strip() != "0"
_blas_threads: Callable[[], Any] | None = None  # reads NumPy's BLAS thread count; made at first use


def set_autotune(enabled: bool) -> None:
    """Turn the choice between the two calls on or off (off: always ``np.matmul``'s own call);
    forgets the choices made so far."""
    global _enabled
    _enabled = bool(enabled)
    _choices.clear()
    _calls.clear()


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
    return _choices.get((a.shape, b.shape, a.strides, b.strides, a.dtype.char, _threads()))


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
    """``np.matmul(a, b)`` for operands of two or more dimensions, through the faster of its two
    equivalent BLAS calls on this machine; C-contiguous, with NumPy's errors and broadcasting."""
    if not _enabled:
        return np.matmul(a, b)
    key = (a.shape, b.shape, a.strides, b.strides, a.dtype.char, b.dtype.char, _threads())
    call = _calls.get(key)  # the thread count and one lookup: ~2 us a product
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
            call = transposed_call if _time_and_decide(a, b, key[:5] + key[6:], rounds) else np.matmul
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
    """Run one ``(64, 256) @ (256, 128)`` product of ``dtype`` through NumPy's BLAS.

    Measured on the family-23 EPYC (NumPy 2.4's OpenBLAS 0.3.31, Haswell kernels): a process
    starts with small products slow, ``(64, 128) @ (128, 128)`` float32 taking ~130 us with one
    BLAS thread (~90 us with two), and ~62 us (~70 us) for the rest of the process once one
    larger product has run, with the same thread count and dtype; the bits are the same. The
    cause is not known. :func:`gemm` calls this before it times a new shape, so that it times,
    and chooses for, the state that lasts.
    """
    np.matmul(np.ones((64, 256), dtype), np.ones((256, 128), dtype))


def _time_and_decide(a: np.ndarray, b: np.ndarray, key: tuple, rounds: int) -> bool:
    """Warm BLAS, time both calls (after one untimed call of each) and remember the faster.
    Floating-point warnings are the real call's to give, once, so the timed calls keep quiet."""
    with np.errstate(all="ignore"):
        np.matmul(a, b)  # raises NumPy's error for operands that do not fit, before anything is kept
        warm_blas(a.dtype)
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
