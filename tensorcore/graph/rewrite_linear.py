"""``matmul(x, w)`` then a broadcast ``add`` of a 1-D bias becomes one ``linear`` node.

``linear(x, weight, bias)`` computes ``x @ weight.T + bias`` with ``weight`` of shape
``(out_features, in_features)``, in one GEMM whose bias is added as the tiles are stored
(OpenCL, CUDA): one launch and one pass over the result instead of two. Code written as
``x @ w + b`` holds ``w`` as ``(in, out)``, so the node reads ``permute_dims(w, (1, 0))``,
which is a view (no copy) on the built-in backends; code written as ``x @ w.T + b`` (PyTorch's
layout) already has that transpose in the graph, and ``linear`` reads ``w`` itself. On a
backend whose ``permute_dims`` may copy, the pattern is left alone.

The rewrite fires only where it computes the same (``rewrite.py`` has the rules it shares
with the other rewrites), and in particular not where

- the product has another reader, or is returned (it would be computed twice);
- an in-place update runs between the ``matmul`` and the ``add`` (it could change ``x``,
  ``w`` or the bias between the two);
- the "bias" is not 1-D of the product's last dimension (a 2-D operand, or one that
  broadcasts the product to a larger shape), or the dtypes differ, or are not floating;
- ``w`` is not 2-D (a batched product).

``x`` may have any number of dimensions. One case may cost a gather: an N-D ``x`` whose
leading dimensions do not merge into rows (a transposed or sliced view) is made contiguous by
``linear``'s OpenCL and CUDA launchers, where ``matmul`` reads it as it is; activations, the
usual ``x``, are contiguous, and a 1-D or 2-D ``x`` is never copied.

On ``cpu`` the result is bitwise that of the two nodes (``linear``'s NumPy reference runs the
same ``host_gemm.gemm`` product, whose call is fixed per shape, layout and thread count, and
``+=``); on other devices within float rounding of the GEMM.

A second pass, :func:`fold_activations`, then folds a ``relu``, ``gelu`` (either form),
``sigmoid`` or ``tanh`` of a ``linear`` (or of a ``conv2d``, whose kernels run the same GEMM)
into it as the GEMM's epilogue (``linear(x, w, b, activation="relu")``: the kernel applies the
activation to each value as it stores the tile; ``ops/_nn.EPILOGUES``), under the same rules:
the ``linear`` result has the activation as its only reader and is not returned, no update
between them, one device whose built-in kernels take the attribute. The gradient is the
activation's own: relu's, sigmoid's and tanh's backward read the activated output, which the
fused node writes to the same slot; gelu's reads the pre-activation, which the fused op's
gradient computes again (a traced training step keeps it for ``gelu_backward``, a second
reader, so there gelu is not folded). On ``cpu`` bitwise the two nodes' result (the epilogue
is the op's reference); elsewhere relu bitwise too, the others the formula of the activation's
own kernel, within rounding (on vectors, whose ``exp`` may round the last bit otherwise).

Its counterpart in the backward pass, :func:`relu_backward_to_epilogue`, folds
``relu_backward(matmul(g, w), y)`` (the gradient flowing into a relu, through the next
layer's weight) into ``matmul_relu_backward(g, w, y)``: one GEMM that multiplies each value by
``y > 0`` as it stores its tiles, for 2-D operands, under the same rules; bitwise the two
nodes' result (the epilogue is relu_backward's expression, ``(y > 0) * v``, NaN for ``0 * inf``).
"""

from __future__ import annotations

from tensorcore.device import Device
from tensorcore.graph.ir import OP, Graph, Node
from tensorcore.graph.rewrite import Uses, replacement, splice
from tensorcore.ops._nn import EPILOGUES, epilogue_of
from tensorcore.ops.registry import OPS, Spec

# Backends whose permute_dims kernel returns a view (strides permuted, no copy): cpu (NumPy),
# opencl (backends/opencl_ops/movement_views.py), cuda (backends/cuda_ops/movement_views.py).
# A third-party backend is not assumed to: there a transposed weight could cost a copy per run.
VIEW_PERMUTE = frozenset({"cpu", "opencl", "cuda"})
# Backends whose linear and conv2d kernels take the ``activation`` attribute (every epilogue).
EPILOGUE = frozenset({"cpu", "opencl", "cuda"})
_TRANSPOSE = (1, 0)


def matmul_bias_to_linear(graph: Graph) -> int:
    """Replace each ``add(matmul(x, w), b)`` (or ``add(b, matmul(x, w))``) with a 1-D bias ``b``
    by ``linear(x, w.T, b)``; returns how many were replaced."""
    uses = Uses(graph)
    edits: dict[int, list[Node]] = {}
    for node in graph.nodes:
        if node.kind != OP or node.op.name != "add" or node.fallback is not None or len(node.args) != 2:
            continue
        for product, bias in (node.args, node.args[::-1]):  # either operand order
            made = _rewrite(uses, node, product, bias)
            if made is not None:
                matmul, edits[id(node)] = made
                edits[id(matmul)] = []
                break
    splice(graph, edits)
    return sum(1 for new_nodes in edits.values() if new_nodes)


def _rewrite(uses: Uses, add: Node, product: object, bias: object) -> tuple[Node, list[Node]] | None:
    """(the matmul, the nodes that replace ``add``) where ``add`` adds the 1-D ``bias`` to the
    result of a matmul it alone reads, else None."""
    graph = uses.graph
    matmul = uses.made_by(product, "matmul")
    if matmul is None or type(bias) is not int or not uses.chain(matmul, add, product):
        return None
    x, w = matmul.args
    dev = add.device
    if not uses.on(dev, x, w, bias, product):
        return None
    out, b, ws = graph.specs[product], graph.specs[bias], graph.specs[w]
    if (len(ws.shape) != 2 or b.shape != out.shape[-1:] or graph.specs[add.outs[0]] != out
            or out.dtype.kind != "f" or not (graph.specs[x].dtype == ws.dtype == b.dtype == out.dtype)):
        return None
    if dev.type not in VIEW_PERMUTE or not all(dev in OPS[name].kernels for name in ("linear", "permute_dims")):
        return None
    weight, transpose = _weight(uses, w, dev)
    linear = replacement(OP, OPS["linear"], (x, weight, bias), {}, add.outs, [matmul, add])
    if transpose is None:
        return matmul, [linear]
    transpose.name, transpose.origin = f"permute_dims_{linear.name}", f"the weight of {linear.name}, as a view"
    transpose.line, transpose.requested = add.line, add.requested
    return matmul, [transpose, linear]


def _weight(uses: Uses, w: int, dev: Device) -> tuple[int, Node | None]:
    """The slot holding ``w.T`` for ``linear``: the slot ``w`` was transposed from, if the graph
    made ``w`` by such a view, else a new node's (returned too) that transposes ``w``."""
    graph = uses.graph
    source = uses.made_by(w, "permute_dims")
    if (source is not None and source.attrs.get("axes") == _TRANSPOSE and source.device == dev
            and uses.on(dev, *source.args) and type(source.args[0]) is int):
        # a view: its source holds the same storage wherever it is read, so linear may read that
        return source.args[0], None
    shape = graph.specs[w].shape
    out = graph.new_slot(Spec((shape[1], shape[0]), graph.specs[w].dtype), dev)
    return out, Node(OP, OPS["permute_dims"], (w,), {"axes": _TRANSPOSE}, dev, (out,))


def fold_activations(graph: Graph) -> dict[str, int]:
    """Replace each ``act(linear(...))`` (or ``act(conv2d(...))``) whose result only the
    activation reads by one ``linear(..., activation=...)`` (``conv2d``), for each activation op
    with an epilogue (``_nn.EPILOGUES``: relu, gelu in either form, sigmoid, tanh); returns how
    many were replaced per epilogue, as ``{"linear+<epilogue> -> epilogue": count}``."""
    uses = Uses(graph)
    edits: dict[int, list[Node]] = {}
    counts = {f"linear+{name} -> epilogue": 0 for name in EPILOGUES}
    for node in graph.nodes:
        if node.kind != OP or node.fallback is not None or len(node.args) != 1 or type(node.args[0]) is not int:
            continue
        activation = epilogue_of(node.op.name, node.attrs)
        if activation is None:
            continue
        product = node.args[0]
        linear = uses.made_by(product, "linear") or uses.made_by(product, "conv2d")
        dev = node.device
        if (linear is None or linear.attrs.get("activation") is not None or not uses.chain(linear, node, product)
                or dev.type not in EPILOGUE or not uses.on(dev, product)
                or graph.specs[product] != graph.specs[node.outs[0]]):
            continue
        fused = replacement(OP, linear.op, linear.args, {**linear.attrs, "activation": activation}, node.outs,
                            [linear, node])
        fused.origin = f"{activation} as its epilogue; {fused.origin}"
        edits[id(linear)], edits[id(node)] = [], [fused]
        counts[f"linear+{activation} -> epilogue"] += 1
    splice(graph, edits)
    return counts


def relu_backward_to_epilogue(graph: Graph) -> int:
    """Replace each ``relu_backward(matmul(a, b), y)`` of 2-D operands whose product only the
    ``relu_backward`` reads by one ``matmul_relu_backward(a, b, y)``; returns how many."""
    uses = Uses(graph)
    edits: dict[int, list[Node]] = {}
    for node in graph.nodes:
        if node.kind != OP or node.op.name != "relu_backward" or node.fallback is not None:
            continue
        product, y = node.args
        matmul = uses.made_by(product, "matmul")
        dev = node.device
        if (matmul is None or type(y) is not int or not uses.chain(matmul, node, product) or dev.type not in EPILOGUE
                or dev not in OPS["matmul_relu_backward"].kernels or not uses.on(dev, *matmul.args, product, y)):
            continue
        a, b = (graph.specs[x] for x in matmul.args)
        out, mask = graph.specs[product], graph.specs[y]
        if (len(a.shape) != 2 or len(b.shape) != 2 or out.dtype.kind != "f" or mask != out
                or graph.specs[node.outs[0]] != out or not a.dtype == b.dtype == out.dtype):
            continue
        fused = replacement(OP, OPS["matmul_relu_backward"], (*matmul.args, y), {}, node.outs, [matmul, node])
        edits[id(matmul)], edits[id(node)] = [], [fused]
    splice(graph, edits)
    return sum(1 for new_nodes in edits.values() if new_nodes)
