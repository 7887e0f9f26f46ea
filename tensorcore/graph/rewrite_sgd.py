"""The hand-written SGD update becomes the fused ``sgd_step`` that ``optim.SGD`` runs.

Two forms, each one node afterwards instead of two or three (one launch, no temporary):

- ``p.assign_sub(lr * g)``: ``multiply(lr, g)`` (either order) read only by ``assign_sub(p, .)``;
- ``p.assign(p - lr * g)``: ``multiply`` read only by ``subtract(p, .)``, read only by ``assign(p, .)``.

And either of them preceded by the heavy-ball momentum update of the velocity it reads,
``v.assign(m * v + g)`` (``m`` a number; products and sums in either order), five or six
nodes afterwards one: ``sgd_step(p, g, v, lr, None, momentum=m)``, which computes
``v = v * m + g`` then ``p -= rate * v``, each rounded as the nodes round it (the kernels do not
contract a multiply and an add). Besides the rules below, nothing may read ``v`` between its
update and the step's product (it would read the old velocity once the update moves to the
step), and the momentum update must be the only in-place node between its product and the
parameter's update.

``sgd_step(p, g, None, lr, None, momentum=0, nesterov=False, weight_decay=0)`` then computes
``p -= rate * g`` with ``rate`` the learning rate rounded to ``p``'s dtype, which is what the
two forms compute (NumPy rounds a Python float into the array's dtype; the device kernels do
the same, without contracting the multiply and the subtraction). It counts no step: the
velocity and the step counter are None, as for a parameter whose step another one counts.

The rewrite fires only where the semantics are the same:

- ``p``, ``g`` and the product have one floating dtype (float32 or float64, the dtypes the
  fused kernels take) and one shape (a broadcast gradient is left alone);
- ``lr`` is a number literal (a float, or an int up to 2**53; not a bool; dispatch records a
  NumPy scalar as a Python number) or a 0-d tensor of ``p``'s dtype on ``p``'s device;
- the product (and the difference) has no other reader and is not returned, and no in-place
  update runs between the ``multiply`` and the update (``rewrite.py``).

The fused kernels read the learning rate from a 0-d tensor in the device's state dtype
(float64, float32 on a device without float64): a Python number becomes a constant of the
graph in that dtype (exact: a float is a float64), and a tensor of another dtype is widened by
an ``astype`` node (exact), shared by every update where nothing in the graph writes the
learning rate (or what it was computed from), else one before each update.

On ``cpu`` the pass fires only when asked (``on_cpu=True``, as the tests do): there the two
NumPy calls it would replace (the product written into the gradient's buffer, then
``np.subtract(p, ., out=p)``) cost less than ``sgd_step``'s NumPy reference with its checks
and bookkeeping (at 64x128 on family 23: 23 us against 6 us before its shape check got a
fast path, 9.2 us against 5.8 us after).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from tensorcore import dispatch, registry
from tensorcore.device import Device
from tensorcore.graph.ir import INPLACE, OP, Graph, Literal, Node
from tensorcore.graph.passes import ancestors, mutable_slots
from tensorcore.graph.rewrite import Uses, replacement, splice
from tensorcore.ops.creation import from_host
from tensorcore.ops.registry import OPS, Spec

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_NO_MOMENTUM = {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0}


def updates_to_sgd_step(graph: Graph, on_cpu: bool = False) -> int:
    """Replace each ``p.assign_sub(lr * g)`` and ``p.assign(p - lr * g)`` by one ``sgd_step``
    node (on ``cpu`` only with ``on_cpu``); returns how many updates were replaced."""
    uses = Uses(graph)
    rates = _Rates(graph)
    edits: dict[int, list[Node]] = {}
    for node in graph.nodes:
        if node.kind != INPLACE or node.op.name not in ("assign_sub", "assign") or len(node.args) != 2:
            continue
        if node.device.type == "cpu" and not on_cpu:
            continue
        found = _match(uses, node)
        if found is None:
            continue
        removed, lr, g = found
        rate = rates.slot(lr, node.device)
        if rate is None:
            continue
        lr_slot, first = rate
        velocity, attrs = Literal(None), dict(_NO_MOMENTUM)
        heavy_ball = _momentum(uses, node.args[0], g, removed[0])
        if heavy_ball is not None:
            momentum_nodes, attrs["momentum"], grad = heavy_ball
            velocity, g, removed = g, grad, momentum_nodes + removed
        sgd = replacement(INPLACE, OPS["sgd_step"], (node.args[0], g, velocity, lr_slot, Literal(None)),
                          attrs, (), removed + [node])
        for old in removed:
            edits[id(old)] = []
        edits[id(node)] = first + [sgd]
    splice(graph, edits)
    return sum(1 for new_nodes in edits.values() if new_nodes)


def _match(uses: Uses, update: Node) -> tuple[list[Node], Any, int] | None:
    """(the nodes that ``update`` replaces with it, the learning rate, the gradient's slot) where
    ``update`` is one of the two forms, else None."""
    p, value = update.args
    removed: list[Node] = []
    if update.op.name == "assign":  # p.assign(p - lr * g)
        diff = uses.made_by(value, "subtract")
        if diff is None or diff.args[0] != p or not uses.only_reader(value, update):
            return None
        removed, value = [diff], diff.args[1]
    product = uses.made_by(value, "multiply")
    if product is None or not uses.only_reader(value, removed[0] if removed else update):
        return None
    dev, graph = update.device, uses.graph
    for lr, g in (product.args, product.args[::-1]):
        if type(g) is int and _is_rate(graph, lr, p) and _fits(graph, p, g, value, dev):
            nodes = [product] + removed
            if all(n.device == dev and n.requested in (None, dev) for n in nodes) and \
                    uses.on(dev, p, g, lr, value) and uses.no_update_between(product, update):
                return nodes, lr, g
    return None


def _momentum(uses: Uses, p: int, v: int, step_product: Node) -> tuple[list[Node], float, int] | None:
    """(the nodes of the velocity update, the momentum, the gradient's slot) where the step
    ``step_product`` (``lr * v``) reads a velocity ``v`` just updated as ``v.assign(m * v + g)``,
    else None (see the module for the rules)."""
    graph, pos = uses.graph, uses.position
    at = pos[id(step_product)]
    update = next((n for n in reversed(graph.nodes[:at]) if n.kind == INPLACE and v in n.args), None)
    if update is None or update.op.name != "assign" or update.args[0] != v or v == p:
        return None
    total = uses.made_by(update.args[1], "add")
    if total is None or not uses.only_reader(update.args[1], update):
        return None
    for scaled, g in (total.args, total.args[::-1]):
        product = uses.made_by(scaled, "multiply")
        if product is None or type(g) is not int or not uses.only_reader(scaled, total):
            continue
        for m, read in (product.args, product.args[::-1]):
            if read != v or type(m) is not Literal or not _is_rate(graph, m, p):
                continue
            nodes = [product, total, update]
            dev = update.device
            readers_between = [r for r in uses.readers.get(v, []) if pos[id(update)] < pos[id(r)] < at]
            if (all(n.device == dev and n.requested in (None, dev) for n in nodes) and uses.on(dev, v, g, scaled)
                    and _fits(graph, v, g, scaled, dev) and graph.specs[v] == graph.specs[p] and not readers_between
                    and uses.no_update_between(product, update) and uses.no_update_between(update, step_product)):
                return nodes, float(m.value), g
    return None


def _is_rate(graph: Graph, lr: Any, p: int) -> bool:
    """Whether ``lr`` is a learning rate the fused step reads as the product did (see the module)."""
    if type(lr) is Literal:  # an int beyond 2**53 would round twice on its way through a float64
        return type(lr.value) is float or (type(lr.value) is int and abs(lr.value) <= 2**53)
    spec = graph.specs[lr]
    return spec.shape == () and spec.dtype == graph.specs[p].dtype


def _fits(graph: Graph, p: int, g: int, product: int, dev: Device) -> bool:
    """Whether ``p``, ``g`` and the product share a float dtype and a shape (the CUDA kernel
    takes no broadcast gradient; a Variable's update needs the shape anyway), in a dtype the
    fused kernels take, and ``dev`` has the fused kernel."""
    ps, gs, out = graph.specs[p], graph.specs[g], graph.specs[product]
    return (ps.dtype == gs.dtype == out.dtype and ps.shape == gs.shape == out.shape and ps.dtype in _FLOATS
            and dev in OPS["sgd_step"].kernels)


class _Rates:
    """The learning rates as the fused kernels read them: a 0-d tensor in the device's state
    dtype (see the module)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.made: dict[tuple, int] = {}  # (number, device) -> its constant's slot
        self.written = mutable_slots(graph)

    def slot(self, lr: Any, dev: Device) -> tuple[int, list[Node]] | None:
        """(the slot of ``lr`` as a state-dtype tensor on ``dev``, the nodes to run first to make
        it), or None where ``dev`` cannot widen it."""
        dtype = state_dtype(dev)
        if type(lr) is Literal:
            key = (float(lr.value).hex(), dev)  # one constant per value and device, read by every update
            if key not in self.made:
                with dispatch.untraced():  # a pass may run while this thread traces
                    tensor = from_host(np.asarray(lr.value, dtype), dev)
                self.made[key] = self.graph.new_slot(Spec((), dtype), dev)
                self.graph.constants[self.made[key]] = tensor
            return self.made[key], []
        if self.graph.specs[lr].dtype == dtype:
            return lr, []
        if dev not in OPS["astype"].kernels:
            return None
        key = (lr, dev)
        if key in self.made:  # widened once already, and nothing writes it: read that
            return self.made[key], []
        out = self.graph.new_slot(Spec((), dtype), dev)
        if not ancestors(self.graph, [lr]) & self.written:
            self.made[key] = out
        widen = Node(OP, OPS["astype"], (lr,), {"dtype": dtype, "copy": True}, dev, (out,), name=f"astype_{out}",
                     origin=f"the learning rate %{lr} in {dtype}, as the fused step reads it")
        return out, [widen]


@functools.cache
def state_dtype(dev: Device) -> np.dtype:
    """The dtype of the learning-rate tensors the fused optimizer kernels read on ``dev``: float64
    unless the device has none (the rule of ``optim._lr.state_dtype``, which sits above this layer)."""
    info = next((d for d in registry.get_backend(dev.type).devices() if d.device == dev), None)
    return np.dtype(np.float32 if info is not None and info.details.get("float64") is False else np.float64)
