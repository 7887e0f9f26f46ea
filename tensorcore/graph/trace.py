"""Tracing: run a function once while recording what it dispatches into a Graph.

Ops run eagerly while tracing (so shapes, dtypes and the traced devices are real), but
in-place updates are only recorded: the graph applies them when it first runs, so a trace
that fails (a value read, a strict placement error) changes no Variable.

A tensor that the function makes without an op (``tc.zeros``, ``tc.asarray``, ...) becomes a
constant of the graph, read through a copy node (``passes.copy_node``): in eager mode
each call makes a new tensor, so writes into it in place, or a caller changing the returned
tensor, must not carry over to the next call. When the trace ends, the copies of tensors that
are neither written (nor anything computed from them) nor returned are dropped; constant
folding copies a returned value derived from them (``passes.fold_constants``). A tensor
captured from outside the function stays one constant, read and written in place as eager
mode would.
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
from tensorcore.graph.passes import copy_node, known, mutable_slots
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


def _merged(traced: Spec, rule: Any) -> Spec:
    """``traced`` (the shape this trace saw) with ``None`` wherever ``rule``, the op's own spec of
    the result, leaves a dimension unknown."""
    if not isinstance(rule, Spec) or rule.shape is None or len(rule.shape) != len(traced.shape):
        return Spec((None,) * len(traced.shape), traced.dtype)
    return Spec(tuple(None if r is None else t for r, t in zip(rule.shape, traced.shape)), traced.dtype)


class Tracer:
    """Receives every op, in-place op and transfer that dispatch runs while tracing."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.slot_of: dict[int, int] = {}
        self.alive: list[Any] = []  # keeps traced tensors alive, so their ids stay unique
        self.made_here: set[int] = set()  # ids of tensors made while tracing (not by a traced op)
        self.copies: dict[int, int] = {}  # slot of a copy node's result -> the constant it copies
        self.count = 0
        self.outer: Tracer | None = None  # the thread's tracer outside this one (set by dispatch)

    def new_slot(self, t: Tensor, s: Spec | None = None) -> int:
        slot = self.graph.new_slot(spec(t) if s is None else s, t._device)
        self.slot_of[id(t)] = slot
        self.alive.append(t)
        return slot

    def made(self, t: Tensor) -> None:
        """Dispatch made tensor ``t`` while tracing (``dispatch.wrap``); if no traced op produced
        it, the graph must give a new copy of it in each run where it could be changed (see the
        module's docstring)."""
        self.made_here.add(id(t))
        self.alive.append(t)

    def ref(self, x: Any) -> Any:
        """A node argument: the slot of a tensor (a Variable or constant the first time), else a Literal."""
        if not isinstance(x, Tensor):
            return Literal(x)
        slot = self.slot_of.get(id(x))
        if slot is None:
            if isinstance(x, Variable):
                slot = self.new_slot(x)
                self.graph.variables[slot] = x
            elif id(x) in self.made_here:
                constant = self.graph.new_slot(spec(x), x._device)
                self.graph.constants[constant] = x
                slot = self.new_slot(x)
                self.count += 1
                self.graph.nodes.append(copy_node(
                    self.graph, constant, slot, name=f"copy_{self.count}", line=user_line(),
                    reason="a copy of a tensor made while tracing, new in each run as in eager mode"))
                self.copies[slot] = constant
            else:
                slot = self.new_slot(x)
                self.graph.constants[slot] = x
        return slot

    def refuse(self, what: str) -> None:
        """Raise ``TraceError`` for something a graph cannot capture, naming the user's line."""
        raise TraceError(f"tc.function: {what}, at {user_line()}")

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
        specs = self._output_specs(op, args, attrs, outputs)
        self._node(OP, op, args, attrs, dev, tuple(self.new_slot(o, s) for o, s in zip(outputs, specs)),
                   fallback=fallback, **extra)

    def _output_specs(self, op: Any, args: tuple, attrs: dict, outputs: tuple) -> list[Spec]:
        """The outputs' specs for the graph: the traced shapes, except that a dimension that
        depends on the data (a boolean mask's result, ``nonzero``, ``unique``, and whatever is
        computed from them) is ``None``, since the graph runs again on other values. The op's
        ``infer`` rule, run on the inputs' specs, tells which; where it cannot judge unknown
        inputs, every dimension computed from them is unknown."""
        traced = [spec(o) for o in outputs]
        inputs = [self.graph.specs[a] if type(a) is int else a.value for a in args]
        unknown_input = any(isinstance(x, Spec) and not known(x) for x in inputs)
        try:
            rule = op.infer(*inputs, **attrs) if op.infer is not None else None
        except Exception:  # a rule that cannot take unknown dimensions
            rule = None
        if rule is None:
            return [_merged(t, None) for t in traced] if unknown_input else traced
        rules = rule if op.n_outputs != 1 else (rule,)
        return [_merged(t, r) for t, r in zip(traced, rules)]

    def inplace(self, op: Any, target: Tensor, inputs: tuple, attrs: dict) -> None:
        args = (self.ref(target),) + tuple(self.ref(x) for x in inputs)
        self._node(INPLACE, op, args, attrs, target.device, ())

    def transfer(self, x: Tensor, out: Tensor, dev: Any) -> None:
        source = self.ref(x)
        self._node(TRANSFER, None, (source,), {}, dev, (self.new_slot(out, self.graph.specs[source]),))

    def __enter__(self) -> Tracer:
        dispatch.start_tracing(self)  # records this thread's ops only
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        dispatch.stop_tracing(self)
        if exc_type is None:
            self._drop_unneeded_copies()

    def _drop_unneeded_copies(self) -> None:
        """Read a tensor made while tracing directly (not through its copy node) where nothing
        writes it, or anything computed from it, in place and the function does not return it."""
        if not self.copies:
            return
        needed = mutable_slots(self.graph) | self.graph.output_slots()
        mapping = {slot: constant for slot, constant in self.copies.items() if slot not in needed}
        self.graph.nodes = [n for n in self.graph.nodes if not (n.outs and n.outs[0] in mapping)]
        self.graph.rename(mapping)


def refuse_value_read(what: str) -> None:
    """Called when a tensor's value is read: an error while this thread traces, else nothing."""
    if dispatch.current_tracer() is not None:
        raise TraceError(
            f"tc.function: a tensor's value is read while tracing ({what}), at {user_line()}. A graph "
            "cannot branch on values: use tc.where for choices, or return the tensor and read it outside"
        )


def _install() -> None:
    from tensorcore import tensor

    tensor.value_read_hook = refuse_value_read


_install()
