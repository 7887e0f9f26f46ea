"""Summary writers: the thread's default writer and step, event files, the no-op writer, MPI ranks.

A file writer keeps up to ``max_queue`` serialized events in memory and writes them through
tensorboardX's record writer (TFRecord framing, checksums, fsync on flush) when the queue
grows past that, when ``flush_millis`` have passed at a write (TensorFlow's policy; no timer
thread, so nothing to stop at exit), on ``flush()`` and on ``close()``. A finalizer closes the
file when the writer is garbage collected or at interpreter exit, whichever comes first.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import numpy as np

from tensorcore.distribute.devices import launched_by_mpi
from tensorcore.tensor import Tensor

# Where MPI launchers put this process's rank (MPICH/Hydra and Intel MPI, Open MPI, MVAPICH,
# PMIx, Slurm's srun), read without importing mpi4py (importing it starts MPI).
_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")


@functools.cache
def pb() -> SimpleNamespace:
    """tensorboardX's protos and record writer, imported on first use (it takes ~0.3 s)."""
    try:
        from tensorboardX.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorboardX.record_writer import RecordWriter, directory_check
    except ImportError as e:
        raise ImportError(f"tc.summary writes event files with tensorboardX: pip install tensorboardX ({e})") from e
    return SimpleNamespace(Event=event_pb2.Event, Summary=summary_pb2.Summary, Metadata=summary_pb2.SummaryMetadata,
                           Histogram=summary_pb2.HistogramProto, TensorProto=tensor_pb2.TensorProto,
                           Shape=tensor_shape_pb2.TensorShapeProto, DT_STRING=types_pb2.DT_STRING,
                           RecordWriter=RecordWriter, directory_check=directory_check)


class _State(threading.local):
    writer: SummaryWriter | None = None
    step: Any = None
    condition: Any = True  # record_if's: a bool, a callable or a 0-d tensor, read at each write


state = _State()  # per thread (DESIGN.md, rule 7): a new thread starts with no default writer


def check_step(step: Any, where: str) -> None:
    """Refuse a step that is not an int64 (or a 0-d integer tensor, read at each write)."""
    if isinstance(step, Tensor):
        if step.ndim != 0 or step.dtype.kind not in "iu":
            raise TypeError(f"tc.summary.{where}: step must be an integer; got a tensor of shape {step.shape} "
                            f"and dtype {step.dtype}; a 0-d integer tensor or Variable is read at each write")
    elif isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"tc.summary.{where}: step must be an int (or a 0-d integer tensor), got "
                        f"{type(step).__name__} {step!r}")
    elif not -(2**63) <= int(step) < 2**63:
        raise ValueError(f"tc.summary.{where}: step {step} does not fit in int64")


class SummaryWriter:
    """Where summaries go (``tf.summary.SummaryWriter``): from :func:`create_file_writer` or
    :func:`create_noop_writer`. Make it this thread's default with :meth:`as_default`."""

    logdir: str | None = None
    path: str | None = None  # the event file; None for a writer that writes nothing
    writes = False
    _closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @contextmanager
    def as_default(self, step: Any = None) -> Iterator[SummaryWriter]:
        """Make this the calling thread's default writer (and ``step`` its default step) inside
        the ``with`` block; the previous writer and step come back after it, and the writer is
        flushed when the block ends normally."""
        self.check_open()
        if step is not None:
            check_step(step, "as_default")
        old = state.writer, state.step
        state.writer = self
        if step is not None:
            state.step = step
        try:
            yield self
            self.flush()
        finally:
            state.writer, state.step = old

    def set_as_default(self, step: Any = None) -> None:
        """Make this the calling thread's default writer until another one is set."""
        self.check_open()
        if step is not None:
            check_step(step, "set_as_default")
            state.step = step
        state.writer = self

    def flush(self) -> None:
        """Write the queued events to the event file (nothing for a closed or no-op writer)."""

    def close(self) -> None:
        """Flush and close the event file; closing again does nothing."""
        self._closed = True

    def check_open(self) -> None:
        """Raise if the writer is closed."""
        if self.closed:
            raise RuntimeError(f"tc.summary: this summary writer ({self.path or self.logdir or 'no-op'}) is closed; "
                               "create another with tc.summary.create_file_writer(logdir)")

    def add(self, record: bytes) -> None:
        """Queue one serialized ``Event``."""
        raise NotImplementedError


class _NoopWriter(SummaryWriter):
    """A writer that writes nothing: summaries sent to it return False."""

    def __init__(self, logdir: str | None = None, reason: str = "") -> None:
        self.logdir, self.reason = logdir, reason

    def __repr__(self) -> str:
        return f"<tc.summary no-op writer{': ' + self.reason if self.reason else ''}>"


class _EventFile:
    """One writer's event file and its queue. It holds no reference to the writer, so that a
    finalizer can close it when the writer is dropped."""

    def __init__(self, path: str, max_queue: int, flush_millis: float) -> None:
        self.path, self.max_queue, self.flush_seconds = path, max_queue, flush_millis / 1000
        self.lock = threading.Lock()  # a writer may be shared by threads
        self.pending: list[bytes] = []
        self.closed = False
        self.pid = os.getpid()
        self.records = pb().RecordWriter(path)
        self.records.write(pb().Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
        self.records.flush()  # a valid (if empty) event file exists from the start
        self.last_flush = time.monotonic()

    def add(self, record: bytes) -> None:
        with self.lock:
            if self.closed:
                raise RuntimeError(f"tc.summary: the summary writer of {self.path} is closed")
            if os.getpid() != self.pid:
                raise RuntimeError(f"tc.summary: this writer belongs to process {self.pid}, of which this process "
                                   "is a fork; create a writer in this process")
            self.pending.append(record)
            if len(self.pending) > self.max_queue or time.monotonic() - self.last_flush >= self.flush_seconds:
                self._flush()

    def flush(self) -> None:
        with self.lock:
            if not self.closed and os.getpid() == self.pid:
                self._flush()

    def _flush(self) -> None:
        pending, self.pending = self.pending, []
        if pending:
            for record in pending:
                self.records.write(record)
            self.records.flush()  # one fsync per batch of events
        self.last_flush = time.monotonic()

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            if os.getpid() != self.pid:  # a forked child exiting: the queue is the parent's to write
                return
            try:
                self._flush()
            finally:
                self.records.close()


class _FileWriter(SummaryWriter):
    """A writer of one new event file in ``logdir`` (see :func:`create_file_writer`)."""

    writes = True

    def __init__(self, logdir: str, max_queue: int, flush_millis: float, filename_suffix: str) -> None:
        if "://" in logdir:  # s3://, gs://: tensorboardX's storage backends make the directory
            pb().directory_check(logdir)
        else:
            os.makedirs(logdir, exist_ok=True)
        # TensorFlow's file name: time, host, process and a unique id, so that writers of one
        # directory (threads, processes, hosts, restarts in the same second) never share a file.
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}."
                f"{uuid.uuid4().hex[:12]}{filename_suffix}")
        self.logdir = logdir
        self._file = _EventFile(os.path.join(logdir, name), max_queue, flush_millis)
        self.path = self._file.path
        # Runs at close(), when the writer is garbage collected, or at interpreter exit
        # (weakref.finalize's atexit hook), whichever comes first; only once.
        self._finalizer = weakref.finalize(self, self._file.close)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._file.closed

    def flush(self) -> None:
        """Write the queued events to the event file and sync it to disk."""
        self._file.flush()

    def close(self) -> None:
        """Flush and close the event file; closing again does nothing."""
        self._finalizer()

    def add(self, record: bytes) -> None:
        """Queue one serialized ``Event``; written out by the flush policy."""
        self._file.add(record)

    def __repr__(self) -> str:
        return f"<tc.summary file writer {self.path}{' (closed)' if self.closed else ''}>"


def _mpi_rank() -> int:
    """This process's MPI rank: mpi4py's if MPI is running, else the launcher's environment
    variable; 0 when not launched as one of several MPI processes."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized() and mpi.COMM_WORLD.Get_size() > 1:
        return int(mpi.COMM_WORLD.Get_rank())
    if not launched_by_mpi():
        return 0
    for name in _RANK_VARIABLES:
        try:
            return int(os.environ[name])
        except (KeyError, ValueError):
            continue
    warnings.warn("tc.summary: launched by MPI, but this process's rank is unknown (none of "
                  f"{', '.join(_RANK_VARIABLES)} is set); writing summaries from every process", stacklevel=3)
    return 0


def create_file_writer(logdir: str | os.PathLike[str], max_queue: int | None = 10, flush_millis: float | None = 120_000,
                       filename_suffix: str | None = ".v2") -> SummaryWriter:
    """A writer of a new event file in ``logdir`` (created if needed).

    Up to ``max_queue`` events wait in memory; a write also flushes when ``flush_millis`` have
    passed since the last flush. Under MPI with several processes (``mpiexec``, ``srun``), ranks
    other than 0 get a no-op writer: call this on every rank with the same ``logdir``.
    """
    try:
        logdir = os.fspath(logdir)
    except TypeError:
        raise TypeError(f"create_file_writer: logdir must be a path (str or os.PathLike), got {type(logdir).__name__}") from None
    if not isinstance(logdir, str) or not logdir:
        raise ValueError(f"create_file_writer: logdir must be a non-empty str path, got {logdir!r}")
    max_queue = 10 if max_queue is None else max_queue
    if isinstance(max_queue, bool) or not isinstance(max_queue, (int, np.integer)) or max_queue < 0:
        raise ValueError(f"create_file_writer: max_queue must be an int >= 0, got {max_queue!r}")
    flush_millis = 120_000 if flush_millis is None else flush_millis
    if isinstance(flush_millis, bool) or not isinstance(flush_millis, (int, float, np.integer, np.floating)) \
            or not flush_millis >= 0:  # `not >=` also refuses NaN
        raise ValueError(f"create_file_writer: flush_millis must be a number >= 0, got {flush_millis!r}")
    filename_suffix = "" if filename_suffix is None else filename_suffix
    if not isinstance(filename_suffix, str) or "/" in filename_suffix or os.sep in filename_suffix:
        raise ValueError(f"create_file_writer: filename_suffix must be a str without a path separator, got {filename_suffix!r}")
    rank = _mpi_rank()
    if rank != 0:
        return _NoopWriter(logdir, f"MPI rank {rank}: only rank 0 writes summaries")
    return _FileWriter(logdir, int(max_queue), float(flush_millis), filename_suffix)


def create_noop_writer() -> SummaryWriter:
    """A writer that writes nothing; while it is the default writer, summaries return False."""
    return _NoopWriter()
