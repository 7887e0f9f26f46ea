"""relu's backward moved before a max pool's backward: ``relu_backward(max_pool2d_backward(g,
idx), y)``, where ``idx`` chose from ``y`` itself, becomes ``max_pool2d_backward(relu_backward(g,
pooled), idx)``.

A CNN block ``max_pool2d(relu(conv2d(x)))`` sends its gradient back through the pool, which
scatters ``g`` to the chosen elements of a zero plane, and then through relu, which masks that
whole plane by ``y > 0``: a pass over the full-size plane for a mask that only the chosen
elements need. Each chosen element is ``y[idx]``, which is the pooled value, so the mask can be
applied to ``g`` at the pooled size first (a quarter of the elements for 2x2 pools) and the
scatter then writes what the mask left. The unchosen elements are zero either way.

Fires only for pools whose windows do not overlap (``overlapping`` false: each element is
chosen at most once, so masking the sum of what reaches it equals summing the masked parts),
under the rules of ``rewrite.py``: the pool's gradient has the relu's backward as its only
reader, no in-place update between the pool and the relu's backward (``y`` and the pooled
values are what they were), one device. On ``cpu`` the result is bitwise that of the two nodes;
on devices whose scatter adds into zeros (OpenCL) a masked negative gradient lands as ``+0.0``
where the two nodes give ``-0.0``, the same number.
"""

from __future__ import annotations

from tensorcore.graph.ir import OP, Graph, Node
from tensorcore.graph.rewrite import Uses, replacement, splice
from tensorcore.ops.registry import OPS


def relu_backward_before_pool(graph: Graph) -> int:
    """Replace each ``relu_backward(max_pool2d_backward(g, idx), y)`` whose ``idx`` a
    ``max_pool2d`` of ``y`` made, for non-overlapping windows, by a ``relu_backward`` of ``g``
    against the pooled values followed by the pool's backward; returns how many."""
    uses = Uses(graph)
    edits: dict[int, list[Node]] = {}
    for node in graph.nodes:
        if node.kind != OP or node.op.name != "relu_backward" or node.fallback is not None:
            continue
        made = _rewrite(uses, node)
        if made is not None:
            backward, edits[id(node)] = made
            edits[id(backward)] = []
    splice(graph, edits)
    return sum(1 for new_nodes in edits.values() if new_nodes)


def _rewrite(uses: Uses, relu_bw: Node) -> tuple[Node, list[Node]] | None:
    """(the pool's backward node, the nodes that replace ``relu_bw``), or None where the
    pattern does not hold."""
    graph = uses.graph
    h, y = relu_bw.args
    backward = uses.made_by(h, "max_pool2d_backward")
    if backward is None or type(y) is not int or backward.attrs.get("overlapping", True):
        return None
    g, idx = backward.args
    pool = uses.made_by(idx, "max_pool2d")
    if pool is None or type(g) is not int or pool.args[0] != y or pool.outs[1] != idx:
        return None
    pooled, dev = pool.outs[0], relu_bw.device
    if (not uses.chain(backward, relu_bw, h) or pool.device != dev or not uses.no_update_between(pool, relu_bw)
            or not uses.on(dev, g, idx, y, pooled, h) or graph.specs[g].dtype.kind != "f"
            or graph.specs[g].dtype != graph.specs[y].dtype or graph.specs[g].shape != graph.specs[pooled].shape):
        return None
    masked = graph.new_slot(graph.specs[g], dev)
    first = replacement(OP, OPS["relu_backward"], (g, pooled), {}, (masked,), [backward, relu_bw])
    first.name = f"relu_backward_pooled_{relu_bw.name}"
    then = replacement(OP, backward.op, (masked, idx), backward.attrs, relu_bw.outs, [backward, relu_bw])
    return backward, [first, then]
