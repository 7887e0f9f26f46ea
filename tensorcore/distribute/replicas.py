"""Replica threads: one long-lived worker thread per local replica.

``ReplicaThreads.run(task)`` calls ``task(i)`` in replica ``i``'s thread for every ``i`` and
waits for all of them. Threads are reused across steps (a step is milliseconds; starting
threads each time would cost more than the collective). Per-thread state (tapes, device
scopes, graph tracers) therefore belongs to the replica, as DESIGN.md's rule 7 asks.

Each run keeps its own results, so a run whose caller was interrupted (Ctrl-C) while it
waited cannot hand its late results to the next one: the interruption wakes the replicas
waiting in a collective, and the next run first waits for that run's replicas to finish.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

_STOP = object()
SWITCH_INTERVAL = 5e-4  # seconds; CPython's default is 5e-3

_switching_lock = threading.Lock()
_switching_users = 0
_switching_saved = 0.0


@contextmanager
def quick_thread_switching() -> Iterator[None]:
    """While replicas run, the interpreter hands the GIL between threads every 0.5 ms instead
    of 5 ms: replicas dispatch ops from Python threads, and one waiting for the GIL while
    another computes delayed every collective (a 4 KiB in-process all-reduce took 1.2-1.3 ms
    with the default and 0.95 ms with this, on 2 cores). Restored when the last run ends."""
    global _switching_users, _switching_saved
    with _switching_lock:
        if _switching_users == 0:
            _switching_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switching_saved, SWITCH_INTERVAL))
        _switching_users += 1
    try:
        yield
    finally:
        with _switching_lock:
            _switching_users -= 1
            if _switching_users == 0:
                sys.setswitchinterval(_switching_saved)


class Group(Protocol):
    """What the threads need of the replicas' collectives (``collective.LocalGroup``)."""

    def abort(self, reason: str) -> None: ...

    def reset(self) -> None: ...


class _Run:
    """One call of :meth:`ReplicaThreads.run`: each replica's result or error, and how many
    replicas are still at it."""

    def __init__(self, task: Callable[[int], Any], n: int) -> None:
        self.task = task
        self.results: list[Any] = [None] * n
        self.errors: list[BaseException | None] = [None] * n
        self.left = n
        self.aborted = False  # its caller was interrupted and aborted the group
        self.settled = False  # waited for, and the group reset after a failure or an abort
        self._finished = threading.Condition()

    def finish(self, index: int, value: Any, error: BaseException | None) -> None:
        self.results[index], self.errors[index] = value, error
        with self._finished:
            self.left -= 1
            self._finished.notify_all()

    def wait(self) -> None:
        with self._finished:
            while self.left:
                self._finished.wait()


class ReplicaThreads:
    """Worker threads named after their replicas' devices; daemon threads, so a forgotten
    strategy never keeps the interpreter alive. ``on_failure(i, exc)`` runs in replica
    ``i``'s thread when its task raises; ``group`` is reset after a run in which one did."""

    def __init__(self, names: Sequence[str], on_failure: Callable[[int, BaseException], None], group: Group) -> None:
        self.names = list(names)
        self._on_failure = on_failure
        self._group = group
        self._tasks: list[queue.SimpleQueue] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # one run at a time
        self._last: _Run | None = None

    def _start(self) -> None:
        for i, name in enumerate(self.names):
            tasks: queue.SimpleQueue = queue.SimpleQueue()
            thread = threading.Thread(target=self._serve, args=(i, tasks), name=f"tensorcore-replica-{i}-{name}", daemon=True)
            self._tasks.append(tasks)
            self._threads.append(thread)
            thread.start()

    def _serve(self, index: int, tasks: queue.SimpleQueue) -> None:
        while True:
            run = tasks.get()
            if run is _STOP:
                return
            self._execute(run, index)

    def _execute(self, run: _Run, index: int) -> None:
        try:
            value, error = run.task(index), None
        except BaseException as exc:  # handed to the caller of run(), which re-raises it
            value, error = None, exc
            self._on_failure(index, exc)
        run.finish(index, value, error)

    def run(self, task: Callable[[int], Any], inline: bool = False,
            before: Callable[[], None] | None = None) -> tuple[list[Any], list[BaseException | None]]:
        """``task(i)`` in every replica's thread; (results, errors), each in replica order.
        ``inline`` (one replica only): in the calling thread instead, which saves two thread
        hand-offs per step (about 1 ms here) where a process has one replica, as an MPI rank
        with one device does. ``before()`` runs first, once no earlier step's replica runs (the
        replicas' random streams are refreshed there)."""
        if threading.current_thread() in self._threads:
            raise RuntimeError("strategy.run was called inside strategy.run; replicas cannot start replicas")
        if inline and len(self.names) != 1:
            raise ValueError(f"only one replica can run in the calling thread, not {len(self.names)}")
        with self._lock:
            if self._last is not None and not self._last.settled:
                self._settle(self._last)  # its caller was interrupted
            if before is not None:
                before()
            run = self._last = _Run(task, len(self.names))
            if inline:
                self._execute(run, 0)
                self._settle(run)
                self._last = None
                return run.results, run.errors
            if not self._threads:
                self._start()
            with quick_thread_switching():
                for tasks in self._tasks:
                    tasks.put(run)
                try:
                    run.wait()
                except BaseException:  # interrupted: wake the replicas that wait in a collective
                    run.aborted = True
                    self._group.abort("strategy.run was interrupted")
                    raise
            self._settle(run)
            self._last = None  # keep neither the step's closure nor its results alive
        return run.results, run.errors

    def _settle(self, run: _Run) -> None:
        """Wait for ``run``'s replicas; after a failure or an abort, ready the group for the next run."""
        run.wait()
        if run.aborted or any(e is not None for e in run.errors):
            self._group.reset()
        run.settled = True
        run.task = None

    def stop(self) -> None:
        """Ask the threads to end once they are idle, without waiting (safe from any thread,
        a garbage collector's finalizer included)."""
        for tasks in self._tasks:
            tasks.put(_STOP)

    def close(self) -> None:
        """Stop the threads and wait for them (they are daemons; this only tidies up)."""
        with self._lock:
            self.stop()
            for thread in self._threads:
                thread.join(timeout=5)
            self._tasks, self._threads = [], []
