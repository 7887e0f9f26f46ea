"""Tracing: run a function once while recording what it dispatches into a Graph.

Ops run eagerly while tracing (so shapes, dtypes and the traced devices are real), but
in-place updates are only recorded: the graph applies them when it first runs, so a trace
that fails (a value read, a strict placement error) changes no Variable.
"""

from __future__ import annotations

import linecache
import os
import sys
from typing import Any

from tensorcore import dispatch
from tensorcore.autodiff.variable import Variable
from tensorcore.device import scoped_device
from tensorcore.graph.ir import INPLACE, OP, TRANSFER, Graph, Literal, Node
from tensorcore.ops.registry import Spec
from tensorcore.tensor import Tensor

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TraceError(RuntimeError):
    """A traced function did something a graph cannot capture (names the line)."""


def user_line() -> str:
    """``file:line: source`` of the innermost frame outside tensorcore: where the user's code is."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
    if frame is None:
        return "<unknown line>"
    filename, lineno = frame.f_code.co_filename, frame.f_lineno
    return f"{filename}:{lineno}: {linecache.getline(filename, lineno).strip()}"


def spec(t: Tensor) -> Spec:
    """A tensor's shape and dtype."""
    return Spec(tuple(t._data.shape), t._data.dtype)


class Tracer:
    """Receives every op, in-place op and transfer that dispatch runs while tracing."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.slot_of: dict[int, int] = {}
        self.alive: list[Any] = []  # keeps traced tensors alive, so their ids stay unique
        self.count = 0

    def new_slot(self, t: Tensor) -> int:
        slot = self.graph.new_slot(spec(t), t._device)
        self.slot_of[id(t)] = slot
        self.alive.append(t)
        return slot

    def ref(self, x: Any) -> Any:
        """A node argument: the slot of a tensor (a Variable or constant the first time), else a Literal."""
        if not isinstance(x, Tensor):
            return Literal(x)
        slot = self.slot_of.get(id(x))
        if slot is None:
            slot = self.new_slot(x)
            table = self.graph.variables if isinstance(x, Variable) else self.graph.constants
            table[slot] = x
        return slot

    def alias(self, copy: Tensor, original: Tensor) -> None:
        """Let ``copy`` (made by soft placement while tracing) stand for ``original``'s slot: the
        node that reads it reads the original, and the placer inserts the copy node."""
        self.slot_of[id(copy)] = self.ref(original)
        self.alive.append(copy)

    def _node(self, kind: str, op: Any, args: tuple, attrs: dict, dev: Any, outs: tuple, **extra: Any) -> None:
        self.count += 1
        name = f"{'transfer' if op is None else op.name}_{self.count}"
        extra.setdefault("requested", scoped_device())
        self.graph.nodes.append(Node(kind, op, args, dict(attrs), dev, outs, name=name, line=user_line(), **extra))

    def op(self, op: Any, inputs: tuple, attrs: dict, outputs: tuple, dev: Any, fallback: str | None = None,
           **extra: Any) -> None:
        """An op ran on ``dev`` (or would have, had it a kernel there: ``fallback`` says why not).
        ``extra`` sets other node fields, e.g. ``requested=None`` for an op that runs on the host
        whatever the ``tc.device`` scope."""
        args = tuple(self.ref(x) for x in inputs)
        self._node(OP, op, args, attrs, dev, tuple(self.new_slot(o) for o in outputs), fallback=fallback, **extra)

    def inplace(self, op: Any, target: Tensor, inputs: tuple, attrs: dict) -> None:
        args = (self.ref(target),) + tuple(self.ref(x) for x in inputs)
        self._node(INPLACE, op, args, attrs, target.device, ())

    def transfer(self, x: Tensor, out: Tensor, dev: Any) -> None:
        self._node(TRANSFER, None, (self.ref(x),), {}, dev, (self.new_slot(out),))

    def __enter__(self) -> Tracer:
        dispatch.tracers.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        dispatch.tracers.remove(self)


def refuse_value_read(what: str) -> None:
    """Called when a tensor's value is read: an error while tracing, else nothing."""
    if dispatch.tracers:
        raise TraceError(
            f"tc.function: a tensor's value is read while tracing ({what}), at {user_line()}. A graph "
            "cannot branch on values: use tc.where for choices, or return the tensor and read it outside"
        )


def _install() -> None:
    from tensorcore import tensor

    tensor.value_read_hook = refuse_value_read


_install()
