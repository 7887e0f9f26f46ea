"""A weight gradient and its plain SGD step become one GEMM that updates the weight.

``sgd_step(p, linear_backward_weight(g, x), None, lr, step)`` without momentum, Nesterov or
weight decay becomes ``linear_weight_sgd_step(p, g, x, lr, step)`` (and so does the gradient of
``x @ w`` written as users write it, ``matmul(permute_dims(g), x)`` of 2-D operands): on OpenCL one GEMM whose
epilogue writes ``p - rate * value`` over each tile of ``p``, so the gradient is never written
and the update's pass over ``p`` and the gradient goes (1.05-1.08x for a 784-512-512-10 step
on a Xeon; docs/performance.md, session 14), bit for bit the two nodes' result: the epilogue
rounds as ``sgd_step`` does (a product, then a difference). On ``cpu`` the op runs the two
references, the same work in one node, which measured no faster (0.95-1.02x on the digits
MLP), so there the pass fires only when asked (``on_cpu=True``, as the tests do).

The two nodes run at different places: a traced training step computes every weight gradient,
then runs every update. The fused node must read each input with the value the node it
replaces read, so it goes where one of them was, under one of two rules:

- **where the update was**, if nothing between the two writes ``g`` or ``x`` or a view of them:
  both must be made by ops whose results are new storage (``FRESH``: activations and
  gradients), so that nothing else can reach them, and no in-place node between may write
  them or any slot computed from them by other ops (a view). A function argument is not enough
  (a caller could pass a view of a parameter that the step updates in between). ``g`` and ``x``
  then live until the update instead of the gradient, so this place is taken only where they
  are not larger than the gradient (a layer wider than the batch): otherwise the step's memory
  peak could grow (it did, by a quarter, for a 64-128-128-10 MLP on a batch of 256).
- **where the gradient was**, if moving the update earlier changes nothing anyone sees: every
  input of the fused node (the learning rate and step counter included: a callable learning
  rate is computed from the counter after the gradients) is made before the gradient; the
  nodes between are only gradient and update ops (``QUIET``: none of them checks device input,
  whose error must leave the step's parameters and counter as they were); none of them reads or
  writes ``p`` or a slot that may share its storage (computed from it by ops outside
  ``FRESH``, or a function argument or captured tensor of its dtype, which could be a view of
  it), writes the learning rate or anything of its dtype (unless an op made it, the rate may be
  a view of a tensor updated there), or reads or writes the step counter. The first layer's weight,
  whose input is the function's argument, is fused this way: nothing reads it after its
  gradient.

And the rules of ``rewrite.py``: the gradient has the update as its only reader and is not
returned, one device, whose backend has the fused kernel (``cpu``, ``opencl``).
"""

from __future__ import annotations

import math
from typing import Any

from tensorcore.graph.ir import INPLACE, Graph, Literal, Node
from tensorcore.graph.rewrite import Uses, replacement, splice
from tensorcore.ops.registry import OPS

# Ops whose every built-in kernel returns new storage, never a view of an input.
FRESH = frozenset({
    "linear", "matmul", "matmul_relu_backward", "conv2d", "conv2d_backward_input", "relu", "relu_backward",
    "sigmoid", "sigmoid_backward", "tanh", "gelu", "gelu_backward", "cross_entropy_backward",
    "softmax_backward", "log_softmax_backward", "max_pool2d_backward", "avg_pool2d_backward", "embedding",
})
# Ops a fused update may move before (see the module): gradients and updates that read no labels
# or indices, so they raise no device error that should have stopped the update.
QUIET = frozenset({
    "linear_backward_weight", "linear_backward_bias", "matmul", "matmul_relu_backward", "relu_backward",
    "sigmoid_backward", "gelu_backward", "permute_dims", "sum", "sgd_step", "linear_weight_sgd_step",
})
_PLAIN = {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0}


def weight_gradient_into_sgd(graph: Graph, on_cpu: bool = False) -> int:
    """Replace each plain ``sgd_step`` of a ``linear_backward_weight`` that only it reads by one
    ``linear_weight_sgd_step`` (see the module for where it runs; on ``cpu`` only with
    ``on_cpu``); returns how many."""
    uses = Uses(graph)
    edits: dict[int, list[Node]] = {}
    for node in graph.nodes:
        if node.kind != INPLACE or node.op.name != "sgd_step" or id(node) in edits:
            continue
        if node.device.type == "cpu" and not on_cpu:
            continue
        found = _match(uses, node)
        if found is None:
            continue
        backward, (g, x), early = found
        p, _, _, lr, step = node.args
        fused = replacement(INPLACE, OPS["linear_weight_sgd_step"], (p, g, x, lr, step), {}, (), [backward, node])
        fused.origin += " (where the gradient was)" if early else " (where the update was)"
        edits[id(backward)], edits[id(node)] = ([fused], []) if early else ([], [fused])
    splice(graph, edits)
    return sum(1 for new_nodes in edits.values() if new_nodes)


def _match(uses: Uses, update: Node) -> tuple[Node, tuple[int, int], bool] | None:
    """(the weight gradient's node, the fused op's (g, x), whether the fused node goes where the
    gradient's was) where ``update`` can take it in, else None."""
    graph = uses.graph
    if len(update.args) != 5 or {k: update.attrs.get(k) for k in _PLAIN} != _PLAIN:
        return None
    p, grad, velocity, lr, step = update.args
    backward, operands = _weight_gradient(uses, grad)
    dev = update.device
    if (backward is None or type(velocity) is not Literal or velocity.value is not None or type(lr) is not int
            or not (type(step) is int or (type(step) is Literal and step.value is None))
            or not uses.only_reader(grad, update) or backward.device != dev or backward.requested != update.requested
            or dev not in OPS["linear_weight_sgd_step"].kernels or not uses.on(dev, p, grad, lr, *operands)
            or graph.specs[grad] != graph.specs[p] or graph.specs[p].dtype.kind != "f"):
        return None
    between = graph.nodes[uses.position[id(backward)] + 1:uses.position[id(update)]]
    written = graph.mutated_slots(between)
    if all(_fresh(uses, s) and not written & _may_share(uses, s) for s in operands) and \
            sum(_nbytes(graph, s) for s in operands) <= _nbytes(graph, grad):
        return backward, operands, False
    if _may_move_before(uses, between, written, p, lr, step):
        return backward, operands, True
    return None


def _may_move_before(uses: Uses, between: list[Node], written: set[int], p: int, lr: int, step: Any) -> bool:
    """Whether the update of ``p`` may run where its gradient ran, before the nodes ``between``
    (which write ``written``): the rules of the module."""
    graph = uses.graph
    counter = {step} if type(step) is int else set()
    made_between = {o for n in between for o in n.outs}
    if made_between & ({p, lr} | counter) or any(getattr(n.op, "name", None) not in QUIET for n in between):
        return False
    # The learning rate is read earlier too: unless an op made it, it may be a view of a tensor
    # written between (a learned rate, a bias), so nothing of its dtype may be written there.
    if not _fresh(uses, lr) and any(graph.specs[s].dtype == graph.specs[lr].dtype for s in written):
        return False
    dtype = graph.specs[p].dtype
    outside = {s for s in (*graph.inputs, *graph.constants) if graph.specs[s].dtype == dtype and s not in (lr, step)}
    shared = _may_share(uses, p, *outside)
    read = {s for n in between for s in n.slots()}
    return not (written & (shared | {lr} | counter) or read & (shared | counter))


def _weight_gradient(uses: Uses, grad: int) -> tuple[Node | None, tuple[int, int]]:
    """(the node, the fused op's (g, x)) where ``grad`` is a weight gradient ``g.T @ x``: made by
    ``linear_backward_weight(g, x)`` (``F.linear``), or by ``matmul(permute_dims(g), x)`` of 2-D
    operands, as the gradient of ``x @ w`` reaches ``w``; else (None, ())."""
    node = uses.made_by(grad, "linear_backward_weight")
    if node is not None and all(type(a) is int for a in node.args):
        return node, tuple(node.args)
    node = uses.made_by(grad, "matmul")
    if node is None or not all(type(a) is int for a in node.args):
        return None, ()
    transposed, x = node.args
    view = uses.made_by(transposed, "permute_dims")
    if (view is None or view.attrs.get("axes") != (1, 0) or type(view.args[0]) is not int
            or view.device != node.device or len(uses.graph.specs[x].shape) != 2):
        return None, ()
    # the transpose is a view of g, which the fused op reads where it runs: nothing may write g
    # between the view and the product (checked here) or after (the rules of _match)
    if not uses.no_update_between(view, node):
        return None, ()
    return node, (view.args[0], x)


def _nbytes(graph: Graph, slot: int) -> int:
    spec = graph.specs[slot]
    return math.prod(spec.shape) * spec.dtype.itemsize


def _fresh(uses: Uses, slot: Any) -> bool:
    """Whether ``slot`` is made by an op whose result is new storage (views of it are not:
    the callers check writes to what ``_may_share`` finds)."""
    node = uses.producer.get(slot)
    return node is not None and node.fallback is None and getattr(node.op, "name", None) in FRESH


def _may_share(uses: Uses, *slots: int) -> set[int]:
    """``slots`` and every slot computed from them by ops outside ``FRESH`` (views among them)."""
    found, todo = set(), list(slots)
    while todo:
        s = todo.pop()
        if s in found:
            continue
        found.add(s)
        for reader in uses.readers.get(s, []):
            if reader.kind != INPLACE and getattr(reader.op, "name", None) not in FRESH:
                todo.extend(reader.outs)
    return found
