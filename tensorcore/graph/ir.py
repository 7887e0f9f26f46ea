"""The graph: nodes (ops, in-place ops, copies, fused kernels) over numbered value slots.

A traced function becomes a ``Graph``. Slots hold the function's tensor arguments, the
Variables it read (by reference, so updates are seen), constants made while tracing, and the
outputs of nodes; ``specs`` gives every slot's shape and dtype. Nodes are kept in an order
that is valid to run (every slot is written before it is read, and in-place updates stay
where the traced code made them).

``replay_eager`` runs a graph through eager dispatch, so a recording GradientTape sees every
op; the executor (``executor.py``) runs optimized, placed graphs without that overhead.
"""

from __future__ import annotations

import copy as _copy
from dataclasses import dataclass, field
from typing import Any

from tensorcore import dispatch
from tensorcore.device import Device
from tensorcore.ops.registry import Spec
from tensorcore.tensor import Tensor

OP, INPLACE, TRANSFER, FUSED = "op", "inplace", "transfer", "fused"


class Literal:
    """A Python value (scalar, None) passed to a node as it is."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)

    def __eq__(self, other: object) -> bool:
        return type(other) is Literal and type(other.value) is type(self.value) and other.value == self.value

    def __hash__(self) -> int:
        return hash((type(self.value), self.value))


@dataclass
class Node:
    """One step of a graph.

    ``kind`` is "op", "inplace" (writes into its first argument; no outputs), "transfer" (a
    copy to ``device``) or "fused" (``op`` is a :class:`~tensorcore.graph.fusion.FusedOp`).
    ``requested`` is the device a ``tc.device`` scope asked for while tracing; ``device`` is
    where the node runs (the traced device until the placer decides) and ``reason`` why.
    ``fallback`` holds why the traced device could not run it (no kernel, or the kernel
    declined these inputs), for the placer to act on. ``origin`` says which traced nodes a
    rewrite replaced by this one ("replaces matmul_3, add_4"); the placer adds it to ``reason``.
    """

    kind: str
    op: Any
    args: tuple  # slot numbers (int) or Literals
    attrs: dict
    device: Device
    outs: tuple[int, ...]
    name: str = ""
    line: str = ""
    requested: Device | None = None
    fallback: str | None = None
    reason: str = ""
    moved_from: Device | None = None  # set by soft placement when it moved the node to cpu
    origin: str = ""

    @property
    def op_name(self) -> str:
        """The op's name ("transfer" for copies)."""
        return "transfer" if self.op is None else self.op.name

    def slots(self) -> list[int]:
        """The slots this node reads."""
        return [a for a in self.args if type(a) is int]

    def __str__(self) -> str:
        args = ", ".join(f"%{a}" if type(a) is int else repr(a) for a in self.args)
        outs = ", ".join(f"%{o}" for o in self.outs) or "(in place)"
        return f"{outs} = {self.op_name}({args}) on {self.device}"


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
    specs: dict[int, Spec] = field(default_factory=dict)  # every slot's shape and dtype
    devices: dict[int, Device] = field(default_factory=dict)  # where each slot's value lives
    # Groups of nodes (indices into ``nodes``) that exchange data when they run, such as the
    # replicas' all-reduce nodes in a replicated step (tensorcore.distribute); shown, not run.
    collectives: list[tuple[int, ...]] = field(default_factory=list)

    def new_slot(self, spec: Spec, device: Device) -> int:
        """A fresh slot holding a value of ``spec`` on ``device``."""
        slot = self.slots
        self.slots += 1
        self.specs[slot] = spec
        self.devices[slot] = device
        return slot

    def output_slots(self) -> set[int]:
        """The slots the function returns."""
        found: set[int] = set()
        _walk(self.outputs, found)
        return found

    def users(self) -> dict[int, list[Node]]:
        """Slot -> the nodes that read it, in order."""
        table: dict[int, list[Node]] = {}
        for node in self.nodes:
            for s in node.slots():
                table.setdefault(s, []).append(node)
        return table

    def mutated_slots(self, nodes: list[Node] | None = None) -> set[int]:
        """Slots written in place by some node (an update's target and the state it mutates),
        of ``nodes`` if given, else of the whole graph."""
        found: set[int] = set()
        for node in self.nodes if nodes is None else nodes:
            if node.kind == INPLACE:
                found.add(node.args[0])
                for i in node.op.mutates:
                    if i + 1 < len(node.args) and type(node.args[i + 1]) is int:
                        found.add(node.args[i + 1])
        return found

    def rename(self, mapping: dict[int, int]) -> None:
        """Read slot ``mapping[s]`` wherever slot ``s`` was read (node arguments and outputs)."""
        if not mapping:
            return
        for node in self.nodes:
            node.args = tuple(mapping.get(a, a) if type(a) is int else a for a in node.args)
        self.outputs = rename_structure(self.outputs, mapping)

    def copy(self) -> Graph:
        """A copy whose node list and nodes can be rewritten without touching this graph
        (tensors, ops and devices are shared)."""
        new = _copy.copy(self)
        new.nodes = [_copy.copy(n) for n in self.nodes]
        new.inputs = list(self.inputs)
        new.constants = dict(self.constants)
        new.variables = dict(self.variables)
        new.specs = dict(self.specs)
        new.devices = dict(self.devices)
        new.collectives = list(self.collectives)
        return new

    def to_dot(self) -> str:
        """This graph as Graphviz DOT text (see ``graph/export.py``)."""
        from tensorcore.graph.export import to_dot

        return to_dot(self)

    def to_tensorboard(self, logdir: str) -> str:
        """Write this graph for TensorBoard's Graphs tab into ``logdir``; returns the event file."""
        from tensorcore.graph.export import to_tensorboard

        return to_tensorboard(self, logdir)

    def __str__(self) -> str:
        head = [f"graph {self.name}: inputs {['%' + str(s) for s in self.inputs]}, "
                f"{len(self.variables)} variables, {len(self.constants)} constants, {len(self.nodes)} nodes"]
        return "\n".join(head + [f"  {n}" for n in self.nodes])


def _walk(structure: Any, found: set[int]) -> None:
    if isinstance(structure, int):
        found.add(structure)
    elif isinstance(structure, dict):
        for v in structure.values():
            _walk(v, found)
    elif isinstance(structure, (list, tuple)):
        for v in structure:
            _walk(v, found)


def rebuild(like: list | tuple, items: list) -> Any:
    """A list or tuple of ``like``'s type holding ``items`` (namedtuples take them as arguments)."""
    return type(like)(*items) if hasattr(like, "_fields") else type(like)(items)


def rename_structure(structure: Any, mapping: dict[int, int]) -> Any:
    if isinstance(structure, int):
        return mapping.get(structure, structure)
    if isinstance(structure, dict):
        return {k: rename_structure(v, mapping) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return rebuild(structure, [rename_structure(v, mapping) for v in structure])
    return structure


def build_outputs(structure: Any, env: list[Any]) -> Any:
    """The return value: ``structure`` with each slot replaced by its value in ``env``."""
    if isinstance(structure, int):
        return env[structure]
    if isinstance(structure, Literal):
        return structure.value
    if isinstance(structure, dict):
        return {k: build_outputs(v, env) for k, v in structure.items()}
    return rebuild(structure, [build_outputs(v, env) for v in structure])


def replay_eager(graph: Graph, args: list[Tensor]) -> Any:
    """Run the (unoptimized) traced ``graph`` through eager dispatch, op by op.

    Used under a recording GradientTape, which must see every op to differentiate through a
    traced function; fused nodes have no gradient, so this takes the graph as traced.
    """
    env: list[Any] = [None] * graph.slots
    for slot, t in zip(graph.inputs, args):
        env[slot] = t
    for table in (graph.constants, graph.variables):
        for slot, t in table.items():
            env[slot] = t
    for node in graph.nodes:
        vals = [env[a] if type(a) is int else a.value for a in node.args]
        if node.kind == OP:
            dev = node.requested or node.device
            out = dispatch.apply_on(dev, node.op, tuple(vals), node.attrs)
            outs = out if isinstance(out, tuple) else (out,)
        elif node.kind == INPLACE:
            dispatch.apply_inplace(node.op, vals[0], tuple(vals[1:]), node.attrs)
            outs = ()
        else:
            outs = (dispatch.transfer(vals[0], node.device),)
        for slot, value in zip(node.outs, outs):
            env[slot] = value
    return build_outputs(graph.outputs, env)
