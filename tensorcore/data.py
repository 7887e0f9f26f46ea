"""Batches of host data as device tensors: ``DataLoader`` (prefetching) and ``batches`` (simple).

``DataLoader`` reads rows of NumPy arrays (or of a dataset that takes an array of row indices),
shuffles them per epoch, and hands out each batch as tensors on a device while the next one is
already on its way: a background thread gathers the following batches' rows on the host, and
before a batch is handed out the next one's upload to the device is enqueued. The thread does
host work only (NumPy indexing, the dataset's ``__getitem__``); every tensorcore call happens
in the consumer's thread, on a device resolved in that thread and passed explicitly (per-thread
default devices, DESIGN.md rule 7).
"""

from __future__ import annotations

import math
import queue
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tensorcore.device import Device, current_device, resolve
from tensorcore.ops.creation import from_host


def batches(arrays: Sequence[np.ndarray], batch_size: int, *, shuffle: bool = True, seed: int | None = None,
            drop_last: bool = False, device: Any = None) -> Iterator[tuple[Any, ...]]:
    """Yield tuples of tensors, one batch of rows of each array at a time, on ``device``.

    All arrays must have the same number of rows. With ``shuffle`` the row order is a fresh
    permutation (from ``seed`` if given, else from ``tc.random``'s generator).
    """
    n = len(arrays[0])
    for i, a in enumerate(arrays):
        if len(a) != n:
            raise ValueError(f"batches: array {i} has {len(a)} rows, array 0 has {n}")
    if batch_size <= 0:
        raise ValueError(f"batches: batch_size must be positive, got {batch_size}")
    if shuffle:
        from tensorcore import random

        rng = np.random.default_rng(seed) if seed is not None else random.generator()
        order = rng.permutation(n)
    else:
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        rows = order[start:start + batch_size]
        yield tuple(from_host(np.ascontiguousarray(a[rows]), device) for a in arrays)


class _Arrays:
    """NumPy arrays with the same number of rows, read as one dataset of tuples."""

    def __init__(self, arrays: tuple[np.ndarray, ...]) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(a[rows] for a in self.arrays)


def _as_dataset(data: Any) -> tuple[Any, bool]:
    """(a dataset taking row-index arrays, whether batches are single tensors rather than tuples)."""
    if isinstance(data, np.ndarray):
        return _Arrays((data,)), True
    if isinstance(data, (tuple, list)):
        if not data:
            raise ValueError("DataLoader: got an empty tuple of arrays; pass a NumPy array, a tuple of them or a dataset")
        arrays = tuple(data)
        for i, a in enumerate(arrays):
            if not isinstance(a, np.ndarray) or a.ndim == 0:
                raise TypeError(f"DataLoader: entry {i} must be a NumPy array with at least one dimension (rows), "
                                f"got {type(a).__name__}{'' if not isinstance(a, np.ndarray) else ' of 0 dimensions'}")
            if len(a) != len(arrays[0]):
                raise ValueError(f"DataLoader: array {i} has {len(a)} rows, array 0 has {len(arrays[0])}; "
                                 "every array needs one row per example")
        return _Arrays(arrays), False
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        return data, False
    raise TypeError(f"DataLoader: expected a NumPy array, a tuple of arrays, or a dataset with __len__ and "
                    f"__getitem__(row indices), got {type(data).__name__}")


class DataLoader:
    """Batches of ``data`` as tensors on ``device``, epoch after epoch (PyTorch's ``DataLoader``
    shape, TensorFlow's ``prefetch``).

    ``data``: a NumPy array (each batch is one tensor), a tuple of arrays with one row per
    example (each batch is a tuple of tensors), or a dataset: any object with ``__len__`` and
    ``__getitem__`` taking a 1-D int64 array of row indices and returning an array or a tuple
    of arrays with that many rows. ``shuffle``: a new permutation every epoch, drawn from
    ``seed`` (a fixed sequence of epochs) or, when ``seed`` is None, from ``tc.random``'s
    generator (``tc.random.seed`` controls it). ``drop_last`` drops a short last batch.
    ``device``: where batches go (None: the iterating thread's current device).
    ``prefetch``: batches gathered ahead by a background thread; with ``prefetch >= 1`` the
    next batch's upload is also enqueued before the current one is handed out, so it travels
    while the current one computes. 0 does everything on demand, in the consumer's thread.

    ``len(loader)`` is the number of batches per epoch. Iterating again starts a new epoch. An
    exception raised while gathering a batch is raised by the iterator at that batch. An
    iterator that is closed, exhausted or dropped stops its thread.
    """

    def __init__(self, data: Any, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None, device: Any = None, prefetch: int = 1) -> None:
        self.dataset, self._single = _as_dataset(data)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"DataLoader: prefetch must be an int >= 0 (batches prepared ahead), got {prefetch!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"DataLoader: seed must be an int or None, got {seed!r}")
        self.batch_size, self.shuffle, self.drop_last, self.prefetch = batch_size, bool(shuffle), bool(drop_last), prefetch
        self.device = None if device is None else resolve(device)  # a typo fails here, with a suggestion
        self._rng = None if seed is None else np.random.default_rng(seed)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        if self._rng is not None:
            return self._rng.permutation(n).astype(np.int64, copy=False)
        from tensorcore import random

        return random.generator().permutation(n).astype(np.int64, copy=False)

    def __iter__(self) -> _Epoch:
        order = self._order()  # drawn here, in the consumer's thread: reproducible with tc.random.seed
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        plan = [order[i:i + self.batch_size] for i in range(0, stop, self.batch_size)]
        device = self.device if self.device is not None else current_device()
        return _Epoch(self.dataset, plan, device, self._single, self.prefetch)

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.dataset)} examples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, device={self.device}, prefetch={self.prefetch})")


_END = object()


def _gather(dataset: Any, rows: np.ndarray) -> Any:
    """``dataset[rows]``; a user's dataset's arrays are copied at once, since it may reuse its
    buffers for the next batch while this one waits in the queue (or, on cpu, lives on as a
    tensor sharing its memory). Our own arrays' fancy indexing already makes new ones."""
    batch = dataset[rows]
    if isinstance(dataset, _Arrays):
        return batch
    if isinstance(batch, (tuple, list)):
        return tuple(np.array(a, copy=True) for a in batch)
    return np.array(batch, copy=True)


class _Failed:
    """A producer's exception, to be raised in the consumer at the batch that failed."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _produce(dataset: Any, plan: list[np.ndarray], out: queue.Queue, stop: threading.Event) -> None:
    """The background thread: gather each batch's rows in order into ``out`` until done or stopped.
    It holds no reference to the iterator, so dropping the iterator can stop it."""

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    try:
        for rows in plan:
            if stop.is_set() or not put(_gather(dataset, rows)):
                return
    except BaseException as exc:  # any failure belongs to the consumer
        put(_Failed(exc))
        return
    put(_END)


def _shut(stop: threading.Event, pending: queue.Queue, thread: threading.Thread | None) -> None:
    """Stop the producer: set the flag, empty the queue (a blocked put returns) and wait for the
    thread to finish the gather it is in, so no thread outlives the iterator."""
    stop.set()
    while True:
        try:
            pending.get_nowait()
        except queue.Empty:
            break
    if thread is not None and thread is not threading.current_thread():
        thread.join()


class _Epoch:
    """One pass over a DataLoader (what ``iter(loader)`` returns)."""

    def __init__(self, dataset: Any, plan: list[np.ndarray], device: Device, single: bool, prefetch: int) -> None:
        self._dataset, self._plan, self._device, self._single = dataset, plan, device, single
        self._ahead = prefetch > 0
        self._next = 0  # the next batch to take from the plan (prefetch 0) or the queue
        self._ready: Any = None  # the next batch, already uploaded (its copy enqueued)
        self._error: BaseException | None = None  # the batch after the current one failed
        self._done = False
        self._queue: queue.Queue = queue.Queue(maxsize=max(prefetch, 1))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self._ahead and plan:
            self._thread = threading.Thread(target=_produce, args=(dataset, plan, self._queue, self._stop),
                                            name="tensorcore.data.DataLoader", daemon=True)
            self._thread.start()
        self._finalizer = weakref.finalize(self, _shut, self._stop, self._queue, self._thread)

    def __len__(self) -> int:
        return len(self._plan)

    def __iter__(self) -> _Epoch:
        return self

    def _host_batch(self) -> Any:
        """The next gathered batch (host arrays), or _END."""
        if self._next >= len(self._plan):
            return _END
        if not self._ahead:
            batch = _gather(self._dataset, self._plan[self._next])
        else:
            while True:
                try:
                    batch = self._queue.get(timeout=0.1)
                    break
                except queue.Empty:
                    if self._thread is None or not self._thread.is_alive():
                        raise RuntimeError("DataLoader: the producer thread ended without a batch") from None
            if isinstance(batch, _Failed):
                raise batch.exc
        self._next += 1
        return batch

    def _upload(self, batch: Any) -> Any:
        """Host arrays -> tensors on the device (uploads are enqueued, not waited for)."""
        if isinstance(batch, (tuple, list)):
            parts, as_one = tuple(batch), self._single
        else:
            parts, as_one = (batch,), True
        rows = len(self._plan[self._next - 1])
        tensors = []
        for k, a in enumerate(parts):
            a = np.asarray(a)
            if a.ndim == 0 or len(a) != rows:
                raise ValueError(f"DataLoader: the dataset returned shape {a.shape} for part {k} of a batch of "
                                 f"{rows} rows; expected one row per index")
            tensors.append(from_host(np.ascontiguousarray(a), self._device))
        return tensors[0] if as_one else tuple(tensors)

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        if self._error is not None:
            error, self._error = self._error, None
            self.close()
            raise error
        current, self._ready = self._ready, None
        if current is None:
            try:
                batch = self._host_batch()  # raises at the batch that failed
                current = _END if batch is _END else self._upload(batch)
            except BaseException:
                self.close()
                raise
            if current is _END:
                self.close()
                raise StopIteration
        if self._ahead:
            # The next batch: its upload goes on the device's queue before the caller's work on
            # this one, so it is there when asked for. A failure surfaces at that batch.
            try:
                batch = self._host_batch()
                self._ready = None if batch is _END else self._upload(batch)
            except Exception as exc:
                self._error = exc
        return current

    @property
    def prefetched(self) -> int:
        """Batches already on their way to the device ahead of the ones handed out (0 or 1)."""
        return 0 if self._ready is None else 1

    def close(self) -> None:
        """Stop the background thread (waits for the batch it is gathering); idempotent. Later
        ``next()`` calls raise StopIteration."""
        self._done, self._ready = True, None
        self._finalizer()

    def __enter__(self) -> _Epoch:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["DataLoader", "batches"]
