"""The in-process collective: replicas in threads meet and sum their buffers.

Each replica thread hands in its sources (host arrays, often views of device memory: the
tensors of one bucket, read as if concatenated), a scale (its share of the batch, for a mean),
an output buffer, and a description of what the sources are (name, shape and dtype of each
tensor). When the last replica arrives, that thread checks that the descriptions agree. Then
the replicas sum at once, each one a chunk of its own (a reduce-scatter and an all-gather in
one pass, with NumPy releasing the GIL so that every core adds): replica r adds chunk r of
every replica's scaled sources, in replica order, block by block (a block stays in cache),
and writes the sum into chunk r of every output. The chunks are disjoint, so no two threads
touch the same bytes, and the sum of every element is taken in the same order whichever
thread came last: every replica gets the same bits, which keeps mirrored replicas bitwise in
sync. A second barrier holds everyone until every chunk is written. An output may be its
replica's only source (an in-place sum).

Across processes (MPI) the first barrier's thread instead sums every replica's sources into
replica 0's output, hands that to the cross-process step (which sums it over the processes
in place), and the other replicas copy it.

A replica that fails aborts the group, which wakes the others with :class:`ReplicaAborted`;
a replica that does not arrive within the timeout fails all of them with
:class:`CollectiveTimeoutError`, naming who did not join.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tensorcore.errors import CollectiveError

DEFAULT_TIMEOUT = 300.0  # seconds; TENSORCORE_COLLECTIVE_TIMEOUT overrides

# What a contribution is: one (name, shape, dtype) per tensor packed into it.
Description = tuple[tuple[str, tuple[int, ...], str], ...]

BLOCK = 1 << 16  # elements summed at a time: few Python steps, and the blocks stay in cache


class CollectiveTimeoutError(CollectiveError):
    """A collective waited longer than ``TENSORCORE_COLLECTIVE_TIMEOUT`` for its participants."""


class CollectiveMismatchError(CollectiveError):
    """Participants of one collective handed in different tensors (count, shape or dtype)."""


class ReplicaAborted(CollectiveError):  # noqa: N818 - the signal that another replica failed
    """This replica stopped because another replica of the same step failed."""


def collective_timeout() -> float:
    """Seconds a collective waits for every participant: ``TENSORCORE_COLLECTIVE_TIMEOUT``."""
    raw = os.environ.get("TENSORCORE_COLLECTIVE_TIMEOUT")
    if raw is None or raw.strip() == "":
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"TENSORCORE_COLLECTIVE_TIMEOUT must be a positive number of seconds, got {raw!r}")
    return value


def mismatch(what: str, left: Description, right: Description, left_name: str, right_name: str) -> str | None:
    """Why two descriptions of one collective differ (naming the tensor), or None if they agree."""
    if len(left) != len(right):
        return (f"{what}: {left_name} handed in {len(left)} tensors but {right_name} handed in {len(right)} "
                f"({[n for n, _, _ in left]} against {[n for n, _, _ in right]}); every participant must "
                f"reduce the same tensors in the same order")
    for a, b in zip(left, right):
        if a != b:
            label = a[0] if a[0] == b[0] else f"{a[0]!r} against {b[0]!r}"
            return (f"{what}: {label} is {a[2]}{list(a[1])} on {left_name} but "
                    f"{b[2]}{list(b[1])} on {right_name}; every participant must hand in the same shapes and dtypes")
    return None


class LocalGroup:
    """The replicas of one process, meeting in collectives (see the module docstring).

    ``cross`` (the multi-process step) sums a host buffer over every process in place, and
    ``cross_check`` checks a description against every process's; None in a single process. ``names`` label the replicas in errors (their devices).
    """

    def __init__(self, names: Sequence[str], cross: Callable[[np.ndarray, str, Description], np.ndarray] | None = None,
                 cross_check: Callable[[str, Description], None] | None = None) -> None:
        self.names = list(names)
        self.size = len(self.names)
        self.cross, self.cross_check = cross, cross_check
        self._arrive = threading.Barrier(self.size, action=self._check_and_cross)
        self._leave = threading.Barrier(self.size)
        self._lock = threading.Lock()
        self._inputs: list[Any] = [None] * self.size
        self._whats: list[str] = [""] * self.size  # each replica's collective: all must be at the same one
        self._arrived = [False] * self.size
        self._leaving = 0  # replicas that reached this round's second barrier
        self._what = ""
        self._offsets: list[int] = [0]
        self._error: BaseException | None = None
        self._abort_reason: str | None = None

    def all_reduce(self, index: int, what: str, description: Description, buffer: np.ndarray,
                   timeout: float | None = None, *, sources: list[np.ndarray] | None = None,
                   scale: Any = None) -> None:
        """Replica ``index``'s part of a sum over every replica into ``buffer`` (a flat or
        C-contiguous host array): of ``sources`` (flat host arrays read in order as one
        buffer; default: ``buffer`` itself, an in-place sum), each times ``scale`` (a NumPy
        scalar of the buffer's dtype; None: not scaled)."""
        timeout = collective_timeout() if timeout is None else timeout
        out = buffer.reshape(-1)
        with self._lock:
            self._inputs[index] = (description, [out] if sources is None else sources, scale, out)
            self._arrived[index] = True
            self._what = self._whats[index] = what
        self._wait(self._arrive, what, timeout)
        try:
            if self._error is None:
                if self.cross is not None:
                    if index != 0:
                        np.copyto(out, self._inputs[0][3])
                else:
                    n = out.size
                    self._sum(n * index // self.size, n * (index + 1) // self.size, spread=True)
        finally:
            self._wait_to_leave(what, timeout)  # every chunk is written
            self._inputs[index] = None  # only this replica writes its slot: no race with the next round
        if self._error is not None:
            raise self._error

    def meet(self, index: int, what: str, description: Description, timeout: float | None = None) -> None:
        """Replica ``index`` meets the others and the descriptions are checked (across
        processes too, through ``cross_check``), without moving data: for NCCL, which sums on
        the devices afterwards."""
        timeout = collective_timeout() if timeout is None else timeout
        with self._lock:
            self._inputs[index] = (description, None, None, None)
            self._arrived[index] = True
            self._what = self._whats[index] = what
        try:
            self._wait(self._arrive, what, timeout)
        finally:
            self._inputs[index] = None
        if self._error is not None:
            raise self._error

    def _sum(self, lo: int, hi: int, spread: bool) -> None:
        """Elements ``lo:hi`` of the sum, into replica 0's output (``spread``: every output)."""
        inputs = self._inputs
        outputs = [entry[3] for entry in inputs]
        offsets = self._offsets
        scaled = any(entry[2] is not None for entry in inputs)
        scratch = np.empty(min(BLOCK, max(hi - lo, 0)), outputs[0].dtype) if scaled else None
        for a in range(lo, hi, BLOCK):
            b = min(a + BLOCK, hi)
            total = outputs[0][a:b]
            pieces = _segments(offsets, a, b)  # the same for every replica (equal shapes)
            for j, (_, sources, scale, _) in enumerate(inputs):
                for k, s_lo, s_hi, at in pieces:
                    piece, into = sources[k][s_lo:s_hi], total[at - a:at - a + s_hi - s_lo]
                    if j == 0 and scale is None:  # the first replica's term starts the sum
                        np.copyto(into, piece)  # (the output may be its source: then a no-op)
                    elif j == 0:
                        np.multiply(piece, scale, out=into)
                    elif scale is not None:
                        term = scratch[:s_hi - s_lo]
                        np.multiply(piece, scale, out=term)
                        np.add(into, term, out=into)
                    else:
                        np.add(into, piece, out=into)
            if spread:
                for other in outputs[1:]:
                    np.copyto(other[a:b], total)

    def _wait(self, barrier: threading.Barrier, what: str, timeout: float) -> None:
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            raise self._broken(what, timeout) from None

    def _wait_to_leave(self, what: str, timeout: float) -> None:
        """The second barrier. An abort that breaks it once every replica has reached it (the
        instant it releases, before a waiter wakes) comes after the collective completed: no
        replica raises for it then, or one would apply the update and another not."""
        with self._lock:
            self._leaving += 1
        try:
            self._leave.wait(timeout)
        except threading.BrokenBarrierError:
            with self._lock:
                completed = self._leaving == self.size
            if not completed:
                raise self._broken(what, timeout) from None

    def _check_and_cross(self) -> None:
        """The last replica to arrive: check the descriptions; across processes, sum the local
        buffers into replica 0's and hand it to the cross-process step."""
        self._error = None
        self._arrived = [False] * self.size  # for the next round's timeout message
        self._leaving = 0  # everyone has left the previous round's second barrier
        try:
            inputs = self._inputs
            if any(w != self._whats[0] for w in self._whats):  # reduce('mean') against reduce('sum')...
                at = ", ".join(f"replica {i} ({n}) at {w!r}" for i, (n, w) in enumerate(zip(self.names, self._whats)))
                raise CollectiveMismatchError(f"the replicas are at different collectives ({at}); every replica "
                                              f"must run the same collectives in the same order")
            first = inputs[0][0]
            if inputs[0][1] is not None:  # where each source starts in the flat sum (equal shapes: checked below)
                self._offsets = np.cumsum([0] + [src.size for src in inputs[0][1]]).tolist()
            for i in range(1, self.size):
                why = mismatch(self._what, first, inputs[i][0], f"replica 0 ({self.names[0]})", f"replica {i} ({self.names[i]})")
                if why is not None:
                    raise CollectiveMismatchError(why)
            if inputs[0][1] is None:  # meet(): the check alone
                if self.cross_check is not None:
                    self.cross_check(self._what, first)
            elif self.cross is not None:
                total = inputs[0][3]
                self._sum(0, total.size, spread=False)
                self.cross(total, self._what, first)
        except BaseException as exc:  # every replica raises it, not only this thread
            self._error = exc

    def _broken(self, what: str, timeout: float) -> BaseException:
        if self._abort_reason is not None:
            return ReplicaAborted(f"{what}: stopped because {self._abort_reason}")
        with self._lock:
            missing = [f"replica {i} ({n})" for i, (n, a) in enumerate(zip(self.names, self._arrived)) if not a]
        return CollectiveTimeoutError(
            f"{what}: {', '.join(missing) or 'a replica'} did not join within {timeout:g} s "
            f"(TENSORCORE_COLLECTIVE_TIMEOUT); every replica must run the same collectives in the same order")

    def abort(self, reason: str) -> None:
        """Wake every replica waiting in a collective with :class:`ReplicaAborted`."""
        self._abort_reason = reason
        self._arrive.abort()
        self._leave.abort()

    def reset(self) -> None:
        """Ready the group for the next step after an abort or a timeout."""
        self._arrive.reset()
        self._leave.reset()
        with self._lock:
            self._inputs = [None] * self.size
            self._arrived = [False] * self.size
            self._leaving = 0
        self._abort_reason = None


def _segments(offsets: list[int], lo: int, hi: int) -> list[tuple[int, int, int, int]]:
    """The pieces of the flat range ``lo:hi`` over sources starting at ``offsets`` (with the
    end last): (source, start and stop within it, start in the flat range)."""
    out = []
    k = bisect.bisect_right(offsets, lo) - 1
    while lo < hi:
        stop = min(hi, offsets[k + 1])
        if stop > lo:
            out.append((k, lo - offsets[k], stop - offsets[k], lo))
        lo = stop
        k += 1
    return out
