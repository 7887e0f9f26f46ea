"""Tracing: run a function eagerly once while recording what it dispatches into a Graph."""

from __future__ import annotations

import os
import traceback
from typing import Any

from tensorcore import dispatch
from tensorcore.autodiff.variable import Variable
from tensorcore.graph.ir import INPLACE, OP, TRANSFER, Graph, Literal, Node
from tensorcore.tensor import Tensor

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TraceError(RuntimeError):
    """A traced function did something a graph cannot capture (names the line)."""


def user_line() -> str:
    """``file:line`` of the innermost frame outside tensorcore: where the user's code is."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE):
            return f"{frame.filename}:{frame.lineno}: {frame.line}"
    return "<unknown line>"


class Tracer:
    """Receives every op, in-place op and transfer that dispatch runs while tracing."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.slot_of: dict[int, int] = {}
        self.alive: list[Any] = []  # keeps traced tensors alive, so their ids stay unique

    def new_slot(self, t: Tensor) -> int:
        slot = self.graph.slots
        self.graph.slots += 1
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

    def op(self, op: Any, inputs: tuple, attrs: dict, outputs: tuple, dev: Any) -> None:
        args = tuple(self.ref(x) for x in inputs)
        self.graph.nodes.append(Node(OP, op, args, dict(attrs), dev, tuple(self.new_slot(o) for o in outputs)))

    def inplace(self, op: Any, target: Tensor, inputs: tuple, attrs: dict) -> None:
        args = (self.ref(target),) + tuple(self.ref(x) for x in inputs)
        self.graph.nodes.append(Node(INPLACE, op, args, dict(attrs), target.device, ()))

    def transfer(self, x: Tensor, out: Tensor, dev: Any) -> None:
        self.graph.nodes.append(Node(TRANSFER, None, (self.ref(x),), {}, dev, (self.new_slot(out),)))

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
