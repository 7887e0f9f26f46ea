"""The placer: decides each node's device, with TensorFlow's rules, and inserts copy nodes.

1. A device asked for with ``tc.device(...)`` inside the traced code wins.
2. An in-place update runs where the tensor it updates lives (a Variable and the ops that
   update it are colocated).
3. Otherwise a node runs where its inputs are (an accelerator over cpu), as eager does.
4. A node whose device has no kernel for it (or whose kernel declined these inputs) moves to
   ``cpu`` under soft placement, deterministically; under strict placement that is an error,
   raised before anything runs, naming the node, the device asked for and the devices that
   have the kernel.

Then a copy node is inserted wherever an edge crosses devices (one per value and device,
until an in-place update may change the value), and a returned value that the placer moved
off the device it had while tracing is copied back there, so the function returns each
tensor where eager mode does (eager mode copies a cpu fallback's result back to the device
asked for). ``partition`` splits the graph per device.
"""

from __future__ import annotations

from tensorcore.device import Device
from tensorcore.errors import PlacementError
from tensorcore.graph.ir import INPLACE, OP, TRANSFER, Graph, Node, rename_structure

CPU = Device("cpu")


def place(graph: Graph, strict: bool) -> None:
    """Set every node's ``device`` and ``reason``, then insert copy nodes (in place)."""
    traced = dict(graph.devices)  # where each value was while tracing: where eager mode has it
    producers = {slot: node for node in graph.nodes for slot in node.outs}
    for node in graph.nodes:
        if node.kind == TRANSFER:
            node.reason = node.reason or _copy_reason(node, producers)
        elif node.kind == INPLACE:
            _place_update(graph, node, strict)
        elif node.kind == OP:
            _place_op(node, strict)
        if node.origin:  # a rewrite made this node: say what it stands for
            node.reason = f"{node.reason}; {node.origin}"
        for slot in node.outs:
            graph.devices[slot] = node.device
    _insert_copies(graph)
    _return_where_traced(graph, traced)


def _copy_reason(node: Node, producers: dict[int, Node]) -> str:
    """Why a copy the trace recorded is there: tc.random (and so dropout) draws on the host and
    copies its values to the device they are for; any other copy is the traced code's own."""
    source = producers.get(node.args[0]) if node.args and type(node.args[0]) is int else None
    if source is not None and source.kind == OP and source.op.name == "random":
        return f"{source.name} draws on the host (tc.random, dropout's mask): its values are copied to {node.device}"
    return "an explicit copy (to_device, or device= of a tensor) in the traced code"


def _where_asked(node: Node) -> str:
    if node.requested is not None:
        return f"requested with tc.device({str(node.requested)!r}) at {node.line}"
    if node.kind == OP and node.op.name == "random":
        return "tc.random draws on the host for every device (the same numbers on each)"
    return "where its inputs are" if node.slots() else "the default device"


def _place_op(node: Node, strict: bool) -> None:
    want = node.requested or node.device
    if node.fallback is None and want in node.op.kernels:
        node.device, node.reason = want, _where_asked(node)
        return
    why = node.fallback or f"no kernel on {want}"
    have = sorted((d for d in node.op.kernels), key=str)
    if strict:
        raise PlacementError(
            f"cannot place node {node.name!r} (op {node.op.name}) from {node.line}: it is asked to run on "
            f"{want} ({_where_asked(node)}), but {why}; devices with its kernel: "
            f"{', '.join(map(str, have)) or 'none'}. Move it there with tc.device(...), or use soft placement "
            "(TENSORCORE_PLACEMENT=soft) to run it on cpu")
    node.device, node.moved_from = CPU, want
    node.reason = f"soft placement: {why}, so it runs on cpu:0 (asked for {want}: {_where_asked(node)})"


def _place_update(graph: Graph, node: Node, strict: bool) -> None:
    target = node.args[0]
    node.device = graph.devices[target]
    node.reason = f"colocated with %{target}, the tensor it updates"
    if node.device in node.op.kernels:
        return
    if strict:
        have = ", ".join(sorted(str(d) for d in node.op.kernels))
        raise PlacementError(
            f"cannot place node {node.name!r} (in-place {node.op.name}) from {node.line}: it must run on "
            f"{node.device}, where %{target} lives, but that device has no kernel for it (kernels on: {have}); "
            "use soft placement (TENSORCORE_PLACEMENT=soft) to update it through cpu")
    node.reason += f"; no kernel on {node.device}: computed on cpu:0 and written back (soft placement)"


def _insert_copies(graph: Graph) -> None:
    placed: list[Node] = []
    copies: dict[tuple[int, Device], int] = {}
    for node in graph.nodes:
        if node.kind != TRANSFER:
            args = []
            for a in node.args:
                if type(a) is int and graph.devices[a] != node.device:
                    a = copies.get((a, node.device)) or _copy(graph, a, node, placed, copies)
                args.append(a)
            node.args = tuple(args)
        placed.append(node)
        if node.kind == INPLACE:
            copies.clear()  # a copy made before an update would be stale after it
    graph.nodes = placed


def _transfer(graph: Graph, slot: int, dev: Device, why: str, line: str = "") -> Node:
    """A copy node writing ``slot``'s value on ``dev`` into a new slot."""
    out = graph.new_slot(graph.specs[slot], dev)
    return Node(TRANSFER, None, (slot,), {}, dev, (out,), name=f"copy_{out}", line=line,
                reason=f"copy inserted by the placer: {why}")


def _copy(graph: Graph, slot: int, reader: Node, placed: list[Node], copies: dict) -> int:
    node = _transfer(graph, slot, reader.device, f"%{slot} is on {graph.devices[slot]}, {reader.name} reads it on "
                     f"{reader.device}", reader.line)
    placed.append(node)
    copies[slot, reader.device] = node.outs[0]
    return node.outs[0]


def _return_where_traced(graph: Graph, traced: dict[int, Device]) -> None:
    """Copy each returned value that now lives off its traced device back there, at the end
    (after every update, so the copy sees the final value)."""
    mapping: dict[int, int] = {}
    for slot in sorted(graph.output_slots()):
        want = traced.get(slot)
        if want is None or graph.devices[slot] == want:
            continue
        node = _transfer(graph, slot, want, f"%{slot} is returned, and was on {want} when traced (eager mode's "
                         f"result), but is computed on {graph.devices[slot]}")
        graph.nodes.append(node)
        mapping[slot] = node.outs[0]
    graph.outputs = rename_structure(graph.outputs, mapping)


def partition(graph: Graph) -> dict[Device, list[Node]]:
    """The nodes of each device, in run order (copy nodes belong to their destination)."""
    parts: dict[Device, list[Node]] = {}
    for node in graph.nodes:
        parts.setdefault(node.device, []).append(node)
    return parts


def report(graph: Graph) -> str:
    """Each node, its device and why, one per line, then the partitions and the collectives
    that join them."""
    lines = [f"placement of {graph.name} ({len(graph.nodes)} nodes):"]
    width = max((len(n.name) for n in graph.nodes), default=0)
    for node in graph.nodes:
        lines.append(f"  {node.name:<{width}}  {str(node.device):<10} {node.reason}")
    parts = ", ".join(f"{dev}: {len(nodes)} nodes" for dev, nodes in partition(graph).items())
    lines.append(f"partitions: {parts or 'none'}")
    for k, members in enumerate(graph.collectives):
        nodes = [graph.nodes[i] for i in members]
        joined = " <-> ".join(f"{n.name} on {n.device}" for n in nodes)
        lines.append(f"collective {k} ({nodes[0].attrs.get('what', nodes[0].op_name)}): {joined}")
    return "\n".join(lines)

