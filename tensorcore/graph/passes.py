"""Graph rewrites that keep results equal: dead code, common subexpressions, constant folding
and algebraic simplification. Each pass is a function ``pass(graph) -> int`` that rewrites
``graph`` in place and returns how many nodes it removed or rewrote, so it is testable alone.
``optimize`` runs them, and the pattern rewrites of ``rewrite_linear.py`` and ``rewrite_sgd.py``.

Two rules keep them sound around in-place updates (optimizer steps, ``assign``, ``x[i] = v``):

- a rewrite that makes one slot stand for another (``x * 1`` -> ``x``, merging two equal
  nodes) is applied only where no in-place node runs between the node and the last reader of
  the slot it removes, so no reader can see the other slot's later update;
- constant folding skips anything an in-place node writes, or derives from (a view of it).

Keys and identities compare Python numbers by type and sign as well as value: ``0.0 == -0.0``
and ``1 == 1.0 == True`` in Python, yet ``x * 0.0`` and ``x * -0.0`` differ (in the sign of
zero), as can the dtypes an op gives for ``1`` and ``1.0``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tensorcore import dispatch
from tensorcore.graph.ir import INPLACE, OP, TRANSFER, Graph, Literal, Node, rename_structure
from tensorcore.ops.registry import OPS


def eliminate_dead_code(graph: Graph) -> int:
    """Drop op and copy nodes whose outputs nothing reads (in-place updates always stay)."""
    live = graph.output_slots()
    kept: list[Node] = []
    for node in reversed(graph.nodes):
        # updates and random draws always run: a draw nobody reads still moves the generator
        if node.kind == INPLACE or (node.kind == OP and node.op.stateful) or any(o in live for o in node.outs):
            kept.append(node)
            live.update(node.slots())
    removed = len(graph.nodes) - len(kept)
    graph.nodes = kept[::-1]
    for table in (graph.constants, graph.variables):  # tensors nothing reads any more
        for slot in [s for s in table if s not in live]:
            del table[slot]
    return removed


def eliminate_common_subexpressions(graph: Graph) -> int:
    """Merge nodes that compute the same op on the same slots with the same attributes."""
    seen: dict[Any, Node] = {}
    mapping: dict[int, int] = {}
    kept: list[Node] = []
    safe = AliasSafety(graph)
    returned = graph.output_slots()
    for index, node in enumerate(graph.nodes):
        node.args = tuple(mapping.get(a, a) if type(a) is int else a for a in node.args)
        if node.kind == INPLACE:
            seen.clear()  # values read before an update are not the values read after it
        elif node.kind == TRANSFER or (node.kind == OP and not node.op.stateful):
            key = _key(node)
            first = seen.get(key) if key is not None else None
            if (first is not None and all(safe.can_alias(index, o) for o in node.outs)
                    and not (returned & set(node.outs) and returned & set(first.outs))):  # two results, one tensor
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
    """Compute, once, every op node whose inputs are all constants; its outputs become constants.

    ``astype`` of a constant to its own dtype (how the tracer copies a tensor made while tracing,
    see ``trace.py``) folds to that constant itself, without a copy. A folded value that the
    function returns is copied at the end of each run (a copy node), so each call returns a new
    tensor, as in eager mode, and never the graph's own constant, which a caller could change.
    """
    frozen = mutable_slots(graph)
    traced_constants = set(graph.constants)  # captured tensors (returned as they are, as eager mode does)
    kept: list[Node] = []
    folded = 0
    for node in graph.nodes:
        if (node.kind == OP and node.fallback is None and not node.op.stateful and all(s in graph.constants and s not in frozen for s in node.slots())
                and not any(o in frozen for o in node.outs)):
            if _is_same_dtype_copy(node, graph):
                graph.constants[node.outs[0]] = graph.constants[node.args[0]]
            else:
                for slot, value in zip(node.outs, _evaluate(node, graph)):
                    graph.constants[slot] = value
            folded += 1
            continue
        kept.append(node)
    graph.nodes = kept
    mapping: dict[int, int] = {}
    for slot in sorted(graph.output_slots()):
        if slot in graph.constants and slot not in traced_constants:
            mapping[slot] = _append_copy(graph, slot)
    graph.outputs = _renamed_outputs(graph, mapping)
    return folded


def _is_same_dtype_copy(node: Node, graph: Graph) -> bool:
    return (node.op.name == "astype" and len(node.args) == 1
            and node.attrs.get("dtype") == graph.specs[node.args[0]].dtype)


def _append_copy(graph: Graph, slot: int) -> int:
    """A copy of ``slot`` made by a node at the end of the graph (a fresh tensor each run); returns
    the copy's slot."""
    out = graph.new_slot(graph.specs[slot], graph.devices[slot])
    graph.nodes.append(copy_node(graph, slot, out, name=f"copy_of_constant_{slot}",
                                 reason="a copy of a folded constant that the function returns"))
    return out


def copy_node(graph: Graph, slot: int, out: int, **fields: Any) -> Node:
    """A node that writes a new copy of ``slot`` into ``out`` on the same device: ``astype`` to
    the same dtype, or, on a device without an ``astype`` kernel, a copy node through the host
    (which needs no kernel, so strict placement accepts it)."""
    dev, astype = graph.devices[slot], OPS["astype"]
    if dev in astype.kernels:
        return Node(OP, astype, (slot,), {"dtype": graph.specs[slot].dtype, "copy": True}, dev, (out,),
                    requested=None, **fields)
    return Node(TRANSFER, None, (slot,), {}, dev, (out,), requested=None, **fields)


# op name -> the scalar that leaves the other operand unchanged, on the right / on the left
_RIGHT_IDENTITY = {"add": 0, "subtract": 0, "multiply": 1, "divide": 1, "pow": 1}
_LEFT_IDENTITY = {"add": 0, "multiply": 1}


def simplify(graph: Graph) -> int:
    """Algebraic identities: ``x + 0``, ``x - 0``, ``x * 1``, ``x / 1``, ``x ** 1``, ``1 * x``, ``-(-x)``,
    a reshape to the same shape, and transposes that undo each other (or compose into one)."""
    producer: dict[int, Node] = {o: n for n in graph.nodes for o in n.outs}
    position = {id(n): i for i, n in enumerate(graph.nodes)}
    safe = AliasSafety(graph)
    mapping: dict[int, int] = {}
    kept: list[Node] = []
    rewrites = 0
    for index, node in enumerate(graph.nodes):
        node.args = tuple(mapping.get(a, a) if type(a) is int else a for a in node.args)
        same = _identity_input(node, graph, producer) if node.kind == OP else None
        if same is not None and node.op.name == "negative" and not safe.no_update_between(position[id(producer[node.args[0]])], index):
            same = None  # -(-x) is x only if x was not updated between the two negations
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


def known(spec: Any) -> bool:
    """Whether every dimension of ``spec`` is known when the graph is built: ``None`` marks one
    that depends on the data (a boolean mask's result, and what is computed from it)."""
    return spec.shape is not None and None not in spec.shape


def mutable_slots(graph: Graph) -> set[int]:
    """Slots an in-place node writes, and every slot they were computed from (one of which a
    view may share storage with)."""
    return ancestors(graph, graph.mutated_slots())


def ancestors(graph: Graph, slots: Any) -> set[int]:
    """``slots`` and every slot they were computed from, through the graph's nodes."""
    producer = {o: n for n in graph.nodes for o in n.outs}
    found: set[int] = set()
    todo = list(slots)
    while todo:
        slot = todo.pop()
        if slot in found:
            continue
        found.add(slot)
        node = producer.get(slot)
        if node is not None:
            todo.extend(node.slots())
    return found


class AliasSafety:
    """Answers: may slot ``s``, made by node ``i``, be replaced by another slot?

    Only if no in-place node runs after node ``i`` and up to ``s``'s last reader (a returned
    slot is read at the end), so no reader can tell the two slots' storage apart."""

    def __init__(self, graph: Graph) -> None:
        end = len(graph.nodes)
        self.last_read: dict[int, int] = {s: end for s in graph.output_slots()}
        for i, node in enumerate(graph.nodes):
            for s in node.slots():
                self.last_read[s] = max(self.last_read.get(s, i), i)
        # end + 1 where no update follows: returned values are read at ``end``, after every node
        self.next_inplace: list[int] = [end + 1] * (end + 1)
        for i in range(end - 1, -1, -1):
            self.next_inplace[i] = i if graph.nodes[i].kind == INPLACE else self.next_inplace[i + 1]

    def no_update_between(self, first: int, last: int) -> bool:
        """Whether no in-place node runs after node ``first`` and before node ``last``."""
        return self.next_inplace[first + 1] >= last

    def can_alias(self, index: int, slot: int) -> bool:
        """Whether ``slot``, made by node ``index``, may be read as another slot from now on."""
        return self.last_read.get(slot, index) < self.next_inplace[index + 1]


def _key(node: Node) -> Any:
    """A hashable identity of what ``node`` computes, or None if its attributes cannot be hashed."""
    args = tuple(a if type(a) is int else ("literal", _freeze(a.value)) for a in node.args)
    key = (node.kind, node.op, args, _freeze(node.attrs), node.device, node.requested)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _freeze(value: Any) -> Any:
    """``value`` as a hashable key that tells apart what Python's ``==`` does not: numbers of
    different types (``1``, ``1.0``, ``True``) and zeros of different signs."""
    if isinstance(value, dict):
        return ("dict",) + tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__,) + tuple(_freeze(v) for v in value)
    if isinstance(value, (float, np.floating)):
        return (type(value).__name__, value, math.copysign(1.0, value))
    if isinstance(value, (bool, int, np.generic)):
        return (type(value).__name__, value)
    return value


def _is_number(arg: Any, value: int) -> bool:
    return type(arg) is Literal and type(arg.value) in (int, float) and arg.value == value


def _keeps_float_zero_sign(name: str, literal: Literal) -> bool:
    """Whether ``x + literal`` / ``x - literal`` (a zero) returns every float ``x`` unchanged. In
    IEEE arithmetic ``-0.0 + 0.0`` is ``+0.0``: only ``x + (-0.0)`` and ``x - (+0.0)`` are exact."""
    negative = math.copysign(1.0, literal.value) < 0
    return negative if name == "add" else not negative


def _identity_input(node: Node, graph: Graph, producer: dict[int, Node]) -> int | None:
    """The slot ``node``'s output always equals (same shape and dtype), or None."""
    name, args, out = node.op.name, node.args, node.outs[0]
    candidate, literal = None, None
    if len(args) == 2 and name in _RIGHT_IDENTITY and _is_number(args[1], _RIGHT_IDENTITY[name]):
        candidate, literal = args[0], args[1]
    elif len(args) == 2 and name in _LEFT_IDENTITY and _is_number(args[0], _LEFT_IDENTITY[name]):
        candidate, literal = args[1], args[0]
    elif name == "negative":
        inner = producer.get(args[0])
        if inner is not None and inner.kind == OP and inner.op.name == "negative":
            candidate = inner.args[0]
    elif name == "reshape" or (name == "permute_dims" and node.attrs.get("axes") == tuple(range(len(node.attrs["axes"])))):
        candidate = args[0]
    if type(candidate) is not int or graph.specs.get(candidate) != graph.specs.get(out):
        return None
    if not known(graph.specs[out]):
        return None  # two data-dependent shapes may differ at run time though their specs are equal
    if name in ("add", "subtract") and graph.specs[out].dtype.kind == "f" and not _keeps_float_zero_sign(name, literal):
        return None
    returned = graph.output_slots()
    if out in returned and (candidate in returned or candidate in graph.inputs or candidate in graph.variables
                            or candidate in graph.constants):
        return None  # two results as one tensor, or an argument or Variable returned as a result
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
    with dispatch.untraced():  # pauses this thread's tracing (a pass may run inside a trace) and tapes
        out = dispatch.apply_on(node.device, node.op, vals, node.attrs)
    return out if isinstance(out, tuple) else (out,)


def optimize(graph: Graph) -> dict[str, int]:
    """The rewrite pipeline before placement: returns what each pass changed."""
    # imported here: the pattern rewrites build on this module's helpers
    from tensorcore.graph.rewrite_linear import fold_activations, matmul_bias_to_linear, relu_backward_to_epilogue
    from tensorcore.graph.rewrite_pool import relu_backward_before_pool
    from tensorcore.graph.rewrite_sgd import updates_to_sgd_step
    from tensorcore.graph.rewrite_sgd_gemm import weight_gradient_into_sgd

    stats = {"dead code": eliminate_dead_code(graph), "constants folded": fold_constants(graph)}
    stats["simplified"] = simplify(graph) + simplify(graph)  # the second removes identities the first made
    stats["common subexpressions"] = eliminate_common_subexpressions(graph)
    # after CSE, which may give a product a second reader; then CSE again, which merges the
    # weight transposes linear reads with the backward pass's, and dead code, which drops those
    # linear no longer reads
    stats["matmul+bias -> linear"] = matmul_bias_to_linear(graph)
    stats.update(fold_activations(graph))  # "linear+<activation> -> epilogue", one key per activation
    stats["matmul+relu_backward -> epilogue"] = relu_backward_to_epilogue(graph)
    stats["relu_backward before max_pool2d_backward"] = relu_backward_before_pool(graph)
    stats["updates -> sgd_step"] = updates_to_sgd_step(graph)
    stats["weight gradient+sgd_step -> one GEMM"] = weight_gradient_into_sgd(graph)
    stats["common subexpressions"] += eliminate_common_subexpressions(graph)
    stats["dead code"] += eliminate_dead_code(graph)
    return stats
