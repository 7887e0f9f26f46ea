"""Graph rewrites that keep results equal: dead code, common subexpressions, constant folding
and algebraic simplification. Each pass is a function ``pass(graph) -> int`` that rewrites
``graph`` in place and returns how many nodes it removed or rewrote, so it is testable alone.

Two rules keep them sound around in-place updates (optimizer steps, ``assign``, ``x[i] = v``):

- a rewrite that makes one slot stand for another (``x * 1`` -> ``x``, merging two equal
  nodes) is applied only where no in-place node runs between the node and the last reader of
  the slot it removes, so no reader can see the other slot's later update;
- constant folding skips anything an in-place node writes, or derives from (a view of it).
"""

from __future__ import annotations

from typing import Any

from tensorcore import dispatch
from tensorcore.autodiff import tape as _tape
from tensorcore.graph.ir import INPLACE, OP, TRANSFER, Graph, Literal, Node, rename_structure


def eliminate_dead_code(graph: Graph) -> int:
    """Drop op and copy nodes whose outputs nothing reads (in-place updates always stay)."""
    live = graph.output_slots()
    kept: list[Node] = []
    for node in reversed(graph.nodes):
        if node.kind == INPLACE or any(o in live for o in node.outs):
            kept.append(node)
            live.update(node.slots())
    removed = len(graph.nodes) - len(kept)
    graph.nodes = kept[::-1]
    return removed


def eliminate_common_subexpressions(graph: Graph) -> int:
    """Merge nodes that compute the same op on the same slots with the same attributes."""
    seen: dict[Any, Node] = {}
    mapping: dict[int, int] = {}
    kept: list[Node] = []
    safe = _AliasSafety(graph)
    for index, node in enumerate(graph.nodes):
        node.args = tuple(mapping.get(a, a) if type(a) is int else a for a in node.args)
        if node.kind == INPLACE:
            seen.clear()  # values read before an update are not the values read after it
        elif node.kind == TRANSFER or (node.kind == OP and not node.op.stateful):
            key = _key(node)
            first = seen.get(key) if key is not None else None
            if first is not None and all(safe.can_alias(index, o) for o in node.outs):
                mapping.update(zip(node.outs, first.outs))
                continue
            if key is not None:
                seen[key] = node
        kept.append(node)
    removed = len(graph.nodes) - len(kept)
    graph.nodes = kept
    graph.outputs = _renamed_outputs(graph, mapping)
    return removed


def fold_constants(graph: Graph) -> int:
    """Compute, once, every op node whose inputs are all constants; its outputs become constants."""
    frozen = mutable_slots(graph)
    kept: list[Node] = []
    folded = 0
    for node in graph.nodes:
        if (node.kind == OP and node.fallback is None and not node.op.stateful and all(s in graph.constants and s not in frozen for s in node.slots())
                and not any(o in frozen for o in node.outs)):
            for slot, value in zip(node.outs, _evaluate(node, graph)):
                graph.constants[slot] = value
            folded += 1
            continue
        kept.append(node)
    graph.nodes = kept
    return folded


# op name -> the scalar that leaves the other operand unchanged, on the right / on the left
_RIGHT_IDENTITY = {"add": 0, "subtract": 0, "multiply": 1, "divide": 1}
_LEFT_IDENTITY = {"add": 0, "multiply": 1}


def simplify(graph: Graph) -> int:
    """Algebraic identities: ``x + 0``, ``x - 0``, ``x * 1``, ``x / 1``, ``1 * x``, ``-(-x)``,
    a reshape to the same shape, and transposes that undo each other (or compose into one)."""
    producer: dict[int, Node] = {o: n for n in graph.nodes for o in n.outs}
    safe = _AliasSafety(graph)
    mapping: dict[int, int] = {}
    kept: list[Node] = []
    rewrites = 0
    for index, node in enumerate(graph.nodes):
        node.args = tuple(mapping.get(a, a) if type(a) is int else a for a in node.args)
        same = _identity_input(node, graph, producer) if node.kind == OP else None
        if same is not None and safe.can_alias(index, node.outs[0]):
            mapping[node.outs[0]] = same
            rewrites += 1
            continue
        if node.kind == OP and node.op.name == "permute_dims" and _compose_permutes(node, producer):
            rewrites += 1
        kept.append(node)
    graph.nodes = kept
    graph.outputs = _renamed_outputs(graph, mapping)
    return rewrites


def mutable_slots(graph: Graph) -> set[int]:
    """Slots an in-place node writes, and every slot they were computed from (one of which a
    view may share storage with)."""
    producer = {o: n for n in graph.nodes for o in n.outs}
    found: set[int] = set()
    todo = list(graph.mutated_slots())
    while todo:
        slot = todo.pop()
        if slot in found:
            continue
        found.add(slot)
        node = producer.get(slot)
        if node is not None:
            todo.extend(node.slots())
    return found


class _AliasSafety:
    """Answers: may slot ``s``, made by node ``i``, be replaced by another slot?

    Only if no in-place node runs after node ``i`` and up to ``s``'s last reader (a returned
    slot is read at the end), so no reader can tell the two slots' storage apart."""

    def __init__(self, graph: Graph) -> None:
        end = len(graph.nodes)
        self.last_read: dict[int, int] = {s: end for s in graph.output_slots()}
        for i, node in enumerate(graph.nodes):
            for s in node.slots():
                self.last_read[s] = max(self.last_read.get(s, i), i)
        self.next_inplace: list[int] = [end] * (end + 1)
        for i in range(end - 1, -1, -1):
            self.next_inplace[i] = i if graph.nodes[i].kind == INPLACE else self.next_inplace[i + 1]

    def can_alias(self, index: int, slot: int) -> bool:
        return self.last_read.get(slot, index) < self.next_inplace[index + 1]


def _key(node: Node) -> Any:
    """A hashable identity of what ``node`` computes, or None if its attributes cannot be hashed."""
    key = (node.kind, node.op, node.args, _freeze(node.attrs), node.device, node.requested)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _is_number(arg: Any, value: int) -> bool:
    return type(arg) is Literal and type(arg.value) in (int, float) and arg.value == value


def _identity_input(node: Node, graph: Graph, producer: dict[int, Node]) -> int | None:
    """The slot ``node``'s output always equals (same shape and dtype), or None."""
    name, args, out = node.op.name, node.args, node.outs[0]
    candidate = None
    if len(args) == 2 and name in _RIGHT_IDENTITY and _is_number(args[1], _RIGHT_IDENTITY[name]):
        candidate = args[0]
    elif len(args) == 2 and name in _LEFT_IDENTITY and _is_number(args[0], _LEFT_IDENTITY[name]):
        candidate = args[1]
    elif name == "negative":
        inner = producer.get(args[0])
        if inner is not None and inner.kind == OP and inner.op.name == "negative":
            candidate = inner.args[0]
    elif name == "reshape" or (name == "permute_dims" and node.attrs.get("axes") == tuple(range(len(node.attrs["axes"])))):
        candidate = args[0]
    if type(candidate) is not int or graph.specs.get(candidate) != graph.specs.get(out):
        return None
    if out in graph.output_slots() and (candidate in graph.inputs or candidate in graph.variables or candidate in graph.constants):
        return None  # returning an argument or a Variable itself would alias the caller's tensor
    return candidate


def _compose_permutes(node: Node, producer: dict[int, Node]) -> bool:
    """``permute_dims(permute_dims(x, a), b)`` -> ``permute_dims(x, a[b])`` (an identity is
    then removed by the next ``simplify``)."""
    inner = producer.get(node.args[0]) if type(node.args[0]) is int else None
    if inner is None or inner.kind != OP or inner.op is not node.op or inner.device != node.device:
        return False
    a, b = inner.attrs["axes"], node.attrs["axes"]
    node.args = (inner.args[0],) + node.args[1:]
    node.attrs = {**node.attrs, "axes": tuple(a[i] for i in b)}
    return True


def _renamed_outputs(graph: Graph, mapping: dict[int, int]) -> Any:
    return rename_structure(graph.outputs, mapping)


def _evaluate(node: Node, graph: Graph) -> tuple:
    """Run ``node`` now on its constant inputs (untraced, unrecorded)."""
    vals = tuple(graph.constants[a] if type(a) is int else a.value for a in node.args)
    outer = dispatch.tracers[:]
    dispatch.tracers.clear()
    try:
        with _tape.paused():
            out = dispatch.apply_on(node.device, node.op, vals, node.attrs)
    finally:
        dispatch.tracers.extend(outer)
    return out if isinstance(out, tuple) else (out,)


def optimize(graph: Graph) -> dict[str, int]:
    """The rewrite pipeline before placement: returns what each pass changed."""
    stats = {"dead code": eliminate_dead_code(graph), "constants folded": fold_constants(graph)}
    stats["simplified"] = simplify(graph) + simplify(graph)  # the second removes identities the first made
    stats["common subexpressions"] = eliminate_common_subexpressions(graph)
    stats["dead code"] += eliminate_dead_code(graph)
    return stats
