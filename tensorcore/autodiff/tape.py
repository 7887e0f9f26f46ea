"""GradientTape: records the ops run on watched tensors, then plays them back in reverse.

Recording is decided per op by :func:`record`, which dispatch calls only while at least one
tape is recording. A tape records an op when one of its inputs is watched: a tensor given
to ``watch()``, a trainable Variable (unless ``watch_accessed_variables=False``), or the
floating-point output of an op the tape recorded. Gradient functions are written with
tensorcore ops, so an outer tape records the gradient computation of an inner one, which
gives second-order gradients.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tensorcore.errors import GradientError
from tensorcore.tensor import Tensor

# The tapes recording now in any thread, innermost last. Dispatch reads this list on every
# op, so an empty list must stay the cheap common case; each tape records only the ops of
# the thread that opened it (see record()). Other threads add and remove their tapes at any
# moment, so readers walk a snapshot: iterating the list itself could skip this thread's tape
# when another thread's tape before it is removed meanwhile (an op silently not recorded).
recording: list[GradientTape] = []


class _PauseState(threading.local):
    on = False  # a class default: reading an unset thread-local attribute would be slow


_paused = _PauseState()


class Entry:
    """One recorded op: what the gradient function receives as ``ctx``."""

    __slots__ = ("op", "inputs", "attrs", "outputs", "needs_grad", "versions")

    def __init__(self, op: Any, inputs: tuple, attrs: dict, outputs: tuple, needs_grad: tuple, versions: tuple) -> None:
        self.op, self.inputs, self.attrs, self.outputs = op, inputs, attrs, outputs
        self.needs_grad, self.versions = needs_grad, versions

    @property
    def output(self) -> Any:
        """The single output of a one-output op."""
        return self.outputs[0]


def record(op: Any, inputs: tuple, attrs: dict, outputs: tuple) -> None:
    """Record ``op`` on every tape of this thread that watches one of its inputs."""
    if op.grad is None or _paused.on:
        return
    for tape in _tapes_here():
        tape._record(op, inputs, attrs, outputs)


def _tapes_here() -> list[GradientTape]:
    """This thread's recording tapes, innermost last, from a snapshot of ``recording``."""
    thread = threading.get_ident()
    return [t for t in tuple(recording) if t._thread == thread and not t._stopped]


def recording_here() -> bool:
    """Whether a tape of this thread is recording (another thread's tape does not count)."""
    return bool(_tapes_here())


@contextmanager
def paused() -> Iterator[None]:
    """Stop this thread's tapes from recording inside the block (``custom_gradient`` uses it)."""
    outer = _paused.on
    _paused.on = True
    try:
        yield
    finally:
        _paused.on = outer


def watched_by_recording_tape(x: Any) -> bool:
    """Whether a tape recording in this thread would differentiate through ``x``."""
    return any(t._watches(x) for t in _tapes_here())


class GradientTape:
    """Records operations for automatic differentiation (TensorFlow's ``tf.GradientTape``).

    >>> with tc.GradientTape() as tape:
    ...     y = tc.sum(w * x)
    >>> (dw,) = tape.gradient(y, [w])
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True) -> None:
        self.persistent = persistent
        self.watch_accessed_variables = watch_accessed_variables
        self._watched: dict[int, Any] = {}  # id -> tensor, for tensors whose gradient flows
        self._entries: list[Entry] = []
        self._variables: dict[int, Any] = {}
        self._used = False
        self._thread: int | None = None
        self._stopped = False  # inside stop_recording(): in the list, recording nothing

    def __enter__(self) -> GradientTape:
        if self in recording:
            raise RuntimeError("this GradientTape is already recording")
        self._thread = threading.get_ident()
        recording.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        recording.remove(self)

    def watch(self, tensor: Any) -> None:
        """Watch a tensor (or a list of them) so gradients can be taken with respect to it."""
        for t in tensor if isinstance(tensor, (list, tuple)) else (tensor,):
            if t.dtype.kind not in "fc":  # real or complex floating point
                raise GradientError(f"can only watch floating-point tensors, got {t.dtype}")
            self._watched[id(t)] = t

    @contextmanager
    def stop_recording(self) -> Iterator[None]:
        """Temporarily stop this tape from recording."""
        if self not in recording:
            raise RuntimeError("stop_recording() needs the tape to be recording")
        # A flag, not a removal: the list is shared with other threads (see `recording`).
        outer, self._stopped = self._stopped, True
        try:
            yield
        finally:
            self._stopped = outer

    def reset(self) -> None:
        """Forget everything recorded and watched so far."""
        self._watched.clear()
        self._entries.clear()
        self._variables.clear()

    def watched_variables(self) -> tuple:
        """The variables this tape watched, in the order first accessed."""
        return tuple(self._variables.values())

    def _watches(self, x: Any) -> bool:
        """Whether ``x`` is watched, without starting to watch an accessed variable."""
        return id(x) in self._watched or (self.watch_accessed_variables and getattr(x, "trainable", False))

    def _is_watched(self, x: Any) -> bool:
        """Like ``_watches``, and an accessed trainable variable starts being watched."""
        if id(x) in self._watched:
            return True
        if self._watches(x):
            self._watched[id(x)] = self._variables[id(x)] = x
            return True
        return False

    def _record(self, op: Any, inputs: tuple, attrs: dict, outputs: tuple) -> None:
        needs = tuple(self._is_watched(x) for x in inputs)
        if not any(needs):
            return
        versions = tuple([x._version if isinstance(x, Tensor) else 0 for x in inputs])
        self._entries.append(Entry(op, inputs, attrs, outputs, needs, versions))
        for out in outputs:
            if out.dtype.kind in "fc":
                self._watched[id(out)] = out

    def gradient(
        self,
        target: Any,
        sources: Any,
        output_gradients: Any = None,
        unconnected_gradients: str = "none",
    ) -> Any:
        """Gradients of ``target`` (summed if it is a list) with respect to ``sources``.

        ``sources`` is a tensor or a list/tuple of them; the result has the same structure.
        A source that this tape never watched raises ``GradientError``. A watched source
        that ``target`` does not depend on gets ``None`` (or zeros with
        ``unconnected_gradients="zero"``).
        """
        from tensorcore.autodiff.backprop import backprop

        if self._used and not self.persistent:
            raise GradientError(
                "gradient() was already called on this non-persistent GradientTape; "
                "use GradientTape(persistent=True) to compute several gradients"
            )
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError(f"unconnected_gradients must be 'none' or 'zero', not {unconnected_gradients!r}")
        self._used = True
        single = not isinstance(sources, (list, tuple))
        flat_sources = [sources] if single else list(sources)
        for i, s in enumerate(flat_sources):
            if not self._watches(s):
                raise GradientError(
                    f"gradient source {i} ({_describe(s)}) was not watched by this tape; "
                    "call tape.watch(x) before using it"
                    + ("" if getattr(s, "trainable", None) is not None else ", or make it a trainable tc.Variable")
                )
        targets = list(target) if isinstance(target, (list, tuple)) else [target]
        seeds = None
        if output_gradients is not None:
            seeds = list(output_gradients) if isinstance(output_gradients, (list, tuple)) else [output_gradients]
        grads = backprop(self._entries, targets, seeds, flat_sources, unconnected_gradients == "zero")
        if not self.persistent:  # free the recorded values; watched_variables() stays answerable
            self._entries.clear()
            self._watched.clear()
        if single:
            return grads[0]
        return type(sources)(grads) if isinstance(sources, tuple) else grads


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    return f"{type(x).__name__} {getattr(x, 'dtype', '?')}{list(shape) if shape is not None else ''}"
