"""Elementwise fusion: a chain (or tree) of elementwise ops on one device becomes one node,
run as one kernel that the device's backend generates (``Backend.fuse``).

A group grows while each new op reads the group's result, that result has no other reader,
and every op has the group's output shape and float dtype. A ``sum`` or ``mean`` over trailing
axes that is the only reader of a group's result ends the group: the kernel then adds the
chain's values up as it makes them, and the chain's result is never written out (where the
backend cannot, the chain is fused without it). Groups end at in-place updates (an op must not
move past an update of what it reads). The fused node runs where the group's last op ran, so
every input is ready and every reader comes after it.
"""

from __future__ import annotations

from typing import Any

from tensorcore import registry
from tensorcore.errors import KernelUnsupported
from tensorcore.graph.ir import FUSED, INPLACE, OP, Graph, Literal, Node
from tensorcore.graph.passes import known
from tensorcore.ops.fusable import FUSABLE, FUSED_DTYPES, FusedProgram, Operand


class FusedOp:
    """The op of a fused node: its program and its kernel on the node's device."""

    n_outputs = 1
    mutates: tuple[int, ...] = ()

    def __init__(self, program: FusedProgram, kernel: Any, members: list[Node]) -> None:
        self.program = program
        self.kernel = kernel
        self.members = [m.name for m in members]
        self.name = f"fused[{program.describe()}]"

    def __repr__(self) -> str:
        return f"FusedOp({self.name})"


def is_fusable(node: Node, graph: Graph) -> bool:
    """An op node this pass can put in a fused kernel: a listed elementwise op whose tensor
    inputs and output share one float dtype, with plain numbers as its other operands, and
    whose shapes are known when the graph is built (a fused kernel is built for one output
    shape; a data-dependent one, from a boolean mask say, changes from run to run)."""
    if node.kind != OP or node.fallback is not None or node.op.name not in FUSABLE:
        return False
    if len(node.args) != FUSABLE[node.op.name].arity or node.attrs:
        return False
    out = graph.specs[node.outs[0]]
    dtype = out.dtype
    if dtype not in FUSED_DTYPES or not known(out):
        return False
    for a in node.args:
        if type(a) is int:
            if graph.specs[a].dtype != dtype or graph.devices[a] != node.device or not known(graph.specs[a]):
                return False
        elif type(a.value) not in (int, float):
            return False
    return True


REDUCTIONS = ("sum", "mean")


def reduces_trailing_axes(node: Node, graph: Graph) -> bool:
    """A ``sum`` or ``mean`` (no dtype change) over the trailing axes of one tensor of known
    shape: what a fused kernel can end in."""
    if node.kind != OP or node.fallback is not None or node.op.name not in REDUCTIONS or len(node.args) != 1:
        return False
    (x,) = node.args
    if type(x) is not int or node.attrs.get("dtype") is not None or not known(graph.specs[x]):
        return False
    ndim, axes = len(graph.specs[x].shape), tuple(node.attrs["axis"])
    return len(axes) > 0 and axes == tuple(range(ndim - len(axes), ndim))


def fuse_elementwise(graph: Graph, min_ops: int = 2) -> int:
    """Replace each group of at least ``min_ops`` fusable ops by one fused node; returns how
    many fused nodes were made."""
    readers: dict[int, set[int]] = {}
    for node in graph.nodes:
        for s in node.slots():
            readers.setdefault(s, set()).add(id(node))
    returned = graph.output_slots()
    group_of: dict[int, list[Node]] = {}  # result slot of an open group -> its members
    groups: list[list[Node]] = []
    for node in graph.nodes:
        if node.kind == INPLACE:
            group_of.clear()
            continue
        if reduces_trailing_axes(node, graph):
            s = node.args[0]
            group = group_of.pop(s, None)
            if group is not None and len(readers[s]) == 1 and s not in returned and group[-1].device == node.device:
                group.append(node)  # the group's last member: its result is the sum, not the chain's
            continue
        if not is_fusable(node, graph):
            continue
        shape = graph.specs[node.outs[0]].shape
        members: list[Node] = []
        for s in dict.fromkeys(node.slots()):
            group = group_of.get(s)
            if (group is not None and len(readers[s]) == 1 and s not in returned
                    and group[-1].device == node.device and graph.specs[s].shape == shape):
                del group_of[s]
                members += group
                groups.remove(group)
        members.append(node)
        groups.append(members)
        group_of[node.outs[0]] = members
    made = 0
    replacement: dict[int, Node | None] = {}
    for members in groups:
        fused = _fused_node(members, graph) if len(members) >= min_ops else None
        if fused is None and members[-1].op.name in REDUCTIONS and len(members) > min_ops:
            members = members[:-1]  # the backend cannot reduce: fuse the chain alone
            fused = _fused_node(members, graph)
        if fused is None:
            continue
        made += 1
        for m in members[:-1]:
            replacement[id(m)] = None
        replacement[id(members[-1])] = fused
    graph.nodes = [replacement.get(id(n), n) for n in graph.nodes if replacement.get(id(n), n) is not None]
    return made


def _fused_node(members: list[Node], graph: Graph) -> Node | None:
    """The fused node for ``members`` (in graph order), or None if the backend cannot fuse it."""
    last = members[-1]
    reduction = None
    chain = members  # the elementwise ops; a reduction ending the group is not a step
    if last.op.name in REDUCTIONS:
        reduction = (last.op.name, tuple(last.attrs["axis"]), bool(last.attrs["keepdims"]))
        chain = members[:-1]
    inside = {m.outs[0]: j for j, m in enumerate(chain)}
    inputs: dict[int, int] = {}
    scalars: list[float] = []
    steps = []
    for m in chain:
        operands: list[Operand] = []
        for a in m.args:
            if type(a) is int and a in inside:
                operands.append(("step", inside[a]))
            elif type(a) is int:
                operands.append(("in", inputs.setdefault(a, len(inputs))))
            else:
                assert isinstance(a, Literal)
                operands.append(("scalar", len(scalars)))
                scalars.append(a.value)
        steps.append((m.op.name, tuple(operands)))
    spec = graph.specs[chain[-1].outs[0]]
    program = FusedProgram(tuple(steps), len(inputs), tuple(scalars), spec.dtype, tuple(spec.shape), reduction)
    try:
        kernel = registry.get_backend(last.device.type).fuse(program, last.device.index)
    except KernelUnsupported:
        kernel = None
    if kernel is None:
        return None
    op = FusedOp(program, kernel, members)
    return Node(FUSED, op, tuple(inputs), {}, last.device, last.outs, name=f"fused_{last.name}",
                line=last.line, requested=last.requested,
                reason=f"{last.reason}; fuses {', '.join(op.members)}" if last.reason else f"fuses {', '.join(op.members)}")
