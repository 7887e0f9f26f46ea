"""Replica threads: one long-lived worker thread per local replica.

``ReplicaThreads.run(task)`` calls ``task(i)`` in replica ``i``'s thread for every ``i`` and
waits for all of them. Threads are reused across steps (a step is milliseconds; starting
threads each time would cost more than the collective). Per-thread state (tapes, device
scopes, graph tracers) therefore belongs to the replica, as DESIGN.md's rule 7 asks.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

_STOP = object()


class ReplicaThreads:
    """Worker threads named after their replicas' devices; daemon threads, so a forgotten
    strategy never keeps the interpreter alive."""

    def __init__(self, names: Sequence[str], on_failure: Callable[[int, BaseException], None]) -> None:
        self.names = list(names)
        self._on_failure = on_failure
        self._tasks: list[queue.SimpleQueue] = []
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # one run at a time

    def _start(self) -> None:
        for i, name in enumerate(self.names):
            tasks: queue.SimpleQueue = queue.SimpleQueue()
            thread = threading.Thread(target=self._serve, args=(i, tasks), name=f"tensorcore-replica-{i}-{name}", daemon=True)
            self._tasks.append(tasks)
            self._threads.append(thread)
            thread.start()

    def _serve(self, index: int, tasks: queue.SimpleQueue) -> None:
        while True:
            task = tasks.get()
            if task is _STOP:
                return
            try:
                self._done.put((index, task(index), None))
            except BaseException as exc:  # handed to the caller of run(), which re-raises it
                self._on_failure(index, exc)
                self._done.put((index, None, exc))

    def run(self, task: Callable[[int], Any]) -> tuple[list[Any], list[BaseException | None]]:
        """``task(i)`` in every replica's thread; (results, errors), each in replica order."""
        if threading.current_thread() in self._threads:
            raise RuntimeError("strategy.run was called inside strategy.run; replicas cannot start replicas")
        with self._lock:
            if not self._threads:
                self._start()
            for tasks in self._tasks:
                tasks.put(task)
            results: list[Any] = [None] * len(self.names)
            errors: list[BaseException | None] = [None] * len(self.names)
            for _ in self.names:
                i, value, error = self._done.get()
                results[i], errors[i] = value, error
        return results, errors

    def close(self) -> None:
        """Stop the threads (they are daemons; this only tidies up)."""
        with self._lock:
            for tasks in self._tasks:
                tasks.put(_STOP)
            for thread in self._threads:
                thread.join(timeout=5)
            self._tasks, self._threads = [], []
