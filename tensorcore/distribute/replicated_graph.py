"""The replicated step as one graph: every replica's partition, joined at its collectives.

Inside ``strategy.run``, a ``tc.function`` is traced once per replica (as TensorFlow's
``MirroredStrategy`` calls the step once per replica while tracing): each trace is that
replica's partition, placed on its device, with an ``all_reduce`` node per gradient bucket.
:func:`merge` puts the partitions side by side in one :class:`~tensorcore.graph.ir.Graph`:
slots renumbered apart, node names prefixed with their replica (``replica1/matmul_3``), the
outputs a tuple with one entry per replica, and ``collectives`` listing the nodes that meet in
each all-reduce (the k-th ``all_reduce`` node of every partition). That graph is what
``strategy.graph`` returns and what ``strategy.placement_report`` and ``to_dot`` show.

At run time each partition runs in its replica's thread, through the executable compiled
for it, and the partitions exchange data only in their ``all_reduce`` nodes.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence

from tensorcore.graph import ir

_SLOT = re.compile(r"%(\d+)")  # a slot named in a placement reason ("colocated with %20")


def merge(name: str, partitions: Sequence[ir.Graph]) -> ir.Graph:
    """One graph holding every replica's partition (``partitions[i]`` is replica ``i``'s),
    with ``collectives`` pairing their ``all_reduce`` nodes in the order each issued them."""
    merged = ir.Graph(f"{name} ({len(partitions)} replicas)")
    outputs = []
    reduces: list[list[int]] = []
    for r, graph in enumerate(partitions):
        offset = merged.slots
        merged.slots += graph.slots
        shift = {s: s + offset for s in range(graph.slots)}
        merged.inputs += [shift[s] for s in graph.inputs]
        for table, source in ((merged.constants, graph.constants), (merged.variables, graph.variables),
                              (merged.specs, graph.specs), (merged.devices, graph.devices)):
            table.update({shift[s]: value for s, value in source.items()})
        mine = []
        for node in graph.nodes:
            moved = copy.copy(node)
            moved.args = tuple(shift[a] if type(a) is int else a for a in node.args)
            moved.outs = tuple(shift[s] for s in node.outs)
            moved.name = f"replica{r}/{node.name}"
            moved.reason = _shift_slots(node.reason, offset)
            if node.op_name == "all_reduce":
                mine.append(len(merged.nodes))
            merged.nodes.append(moved)
        reduces.append(mine)
        outputs.append(ir.rename_structure(graph.outputs, shift))
    merged.outputs = tuple(outputs)
    merged.collectives = _pair(reduces, merged)
    return merged


def _shift_slots(text: str, offset: int) -> str:
    """``text`` with every slot it names (``%20``) renumbered as in the merged graph."""
    return _SLOT.sub(lambda m: f"%{int(m[1]) + offset}", text)


def _pair(reduces: list[list[int]], merged: ir.Graph) -> list[tuple[int, ...]]:
    """The k-th all-reduce of every partition, as one collective; partitions that issue
    different collectives would fail at run time, so they are an error here too."""
    counts = [len(r) for r in reduces]
    if len(set(counts)) > 1:
        raise ValueError(f"the replicas' partitions issue different numbers of all-reduces: {counts}")
    collectives = []
    for k, members in enumerate(zip(*reduces)):
        whats = {merged.nodes[i].attrs.get("what") for i in members}
        if len(whats) > 1:
            raise ValueError(f"all-reduce {k} differs between the replicas' partitions: {sorted(map(str, whats))}")
        collectives.append(tuple(members))
    return collectives
