"""The graph: nodes (ops, in-place ops, transfers) over numbered value slots, and its replay.

A traced function becomes a ``Graph``. Slots hold the function's tensor arguments, the
Variables it read (by reference, so updates are seen), constants made while tracing, and the
outputs of nodes. ``run`` replays the nodes in order: each op calls the kernel bound to its
device directly, without eager dispatch's placement and bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tensorcore import dispatch
from tensorcore.autodiff import tape as _tape
from tensorcore.device import Device
from tensorcore.tensor import Tensor

OP, INPLACE, TRANSFER = "op", "inplace", "transfer"


class Literal:
    """A Python value (scalar, None) passed to a node as it is."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


@dataclass
class Node:
    """One step of a graph: ``kind`` is "op", "inplace" or "transfer"."""

    kind: str
    op: Any  # an Op; None for a transfer
    args: tuple  # slot numbers (int) or Literals
    attrs: dict
    device: Device
    outs: tuple[int, ...]  # slots written (none for in-place ops)

    def __str__(self) -> str:
        name = "transfer" if self.op is None else self.op.name
        args = ", ".join(f"%{a}" if isinstance(a, int) else repr(a) for a in self.args)
        outs = ", ".join(f"%{o}" for o in self.outs) or "(in place)"
        return f"{outs} = {name}({args}) on {self.device}"


@dataclass
class Graph:
    """A traced computation."""

    name: str
    slots: int = 0
    inputs: list[int] = field(default_factory=list)  # slot of each tensor argument, in order
    constants: dict[int, Tensor] = field(default_factory=dict)
    variables: dict[int, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    outputs: Any = None  # the return structure, with slots in place of tensors

    def __str__(self) -> str:
        head = [f"graph {self.name}: inputs {['%' + str(s) for s in self.inputs]}, "
                f"{len(self.variables)} variables, {len(self.constants)} constants, {len(self.nodes)} nodes"]
        return "\n".join(head + [f"  {n}" for n in self.nodes])


def run(graph: Graph, args: list[Tensor]) -> Any:
    """Replay ``graph`` on tensor arguments ``args`` (same signature as when it was traced).

    Under a recording GradientTape every node goes through eager dispatch, so the tape sees
    each op; otherwise ops call their bound kernels directly.
    """
    env: list[Any] = [None] * graph.slots
    for slot, t in zip(graph.inputs, args):
        env[slot] = t
    for table in (graph.constants, graph.variables):
        for slot, t in table.items():
            env[slot] = t
    direct = not _tape.recording
    for node in graph.nodes:
        vals = [env[a] if type(a) is int else a.value for a in node.args]
        if node.kind == OP:
            kernel = node.op.kernels.get(node.device) if direct else None
            if kernel is None:
                out = dispatch.apply_on(node.device, node.op, tuple(vals), node.attrs)
                outs = out if isinstance(out, tuple) else (out,)
            else:
                raw = kernel(*[v._data if isinstance(v, Tensor) else v for v in vals], **node.attrs)
                outs = (dispatch.wrap(raw, node.device),) if node.op.n_outputs == 1 else tuple(
                    dispatch.wrap(r, node.device) for r in raw)
        elif node.kind == INPLACE:
            dispatch.apply_inplace(node.op, vals[0], tuple(vals[1:]), node.attrs)
            outs = ()
        else:
            outs = (dispatch.transfer(vals[0], node.device),)
        for slot, value in zip(node.outs, outs):
            env[slot] = value
    return _build(graph.outputs, env)


def _build(structure: Any, env: list[Any]) -> Any:
    if isinstance(structure, int):
        return env[structure]
    if isinstance(structure, Literal):
        return structure.value
    if isinstance(structure, dict):
        return {k: _build(v, env) for k, v in structure.items()}
    return type(structure)(_build(v, env) for v in structure)
