"""Memory planning: when each intermediate buffer can be released, and which node may write
its result into an input's buffer (in place) because that input dies there.

The executor drops its reference to a value right after its last reader runs, so the
backend's pool (NumPy's allocator, pyopencl's and CuPy's pools) reuses the memory for later
nodes; without a plan every intermediate would stay alive until the graph returns. A node
that donates is an elementwise one (or a fused chain) whose dead input has the output's
shape and dtype (both known before the run); the executor still checks at run time that
nothing else (a view) holds that buffer before writing into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tensorcore.graph.fusion import is_fusable
from tensorcore.graph.ir import FUSED, Graph
from tensorcore.graph.passes import known, mutable_slots


@dataclass
class MemoryPlan:
    """Per node (by position): the slots to release after it, and the input it may write into."""

    frees: list[list[int]]
    donations: dict[int, int] = field(default_factory=dict)
    peak_bytes: int = 0  # intermediates and results alive at once, with this plan
    unplanned_peak_bytes: int = 0  # the same when nothing is released before the end

    def summary(self) -> str:
        """One line: planned and unplanned peak, and how many nodes work in place."""
        saved = 1 - self.peak_bytes / self.unplanned_peak_bytes if self.unplanned_peak_bytes else 0.0
        return (f"peak {self.peak_bytes:,} bytes with the plan, {self.unplanned_peak_bytes:,} without "
                f"({saved:.0%} less); {len(self.donations)} nodes write in place")


def _nbytes(graph: Graph, slot: int) -> int:
    """The size of a slot's value; 0 where it depends on the data (not known before the run)."""
    spec = graph.specs[slot]
    return math.prod(spec.shape) * spec.dtype.itemsize if known(spec) else 0


def plan_memory(graph: Graph) -> MemoryPlan:
    """Lifetimes and in-place reuse for ``graph`` (placed and fused; nodes in run order)."""
    owned_elsewhere = set(graph.inputs) | set(graph.constants) | set(graph.variables) | graph.output_slots()
    last_read: dict[int, int] = {}
    for i, node in enumerate(graph.nodes):
        for s in node.slots():
            last_read[s] = i
    frees: list[list[int]] = [[] for _ in graph.nodes]
    for i, node in enumerate(graph.nodes):
        for o in node.outs:
            if o not in last_read and o not in owned_elsewhere:
                frees[i].append(o)  # an output nothing reads (a second result of an op)
    for s, i in last_read.items():
        if s not in owned_elsewhere:
            frees[i].append(s)
    plan = MemoryPlan(frees)
    shared = mutable_slots(graph)
    for i, node in enumerate(graph.nodes):
        if node.kind != FUSED and not (node.device.type == "cpu" and is_fusable(node, graph)):
            continue
        out = node.outs[0]
        for s in dict.fromkeys(node.slots()):
            if (s in frees[i] and s not in shared and graph.specs[s] == graph.specs[out] and known(graph.specs[s])
                    and graph.devices[s] == node.device):
                plan.donations[i] = s
                break
    plan.peak_bytes = _peak(graph, plan)
    plan.unplanned_peak_bytes = sum(_nbytes(graph, o) for n in graph.nodes for o in n.outs)
    return plan


def _peak(graph: Graph, plan: MemoryPlan) -> int:
    live = peak = 0
    for i, node in enumerate(graph.nodes):
        donor = plan.donations.get(i)
        for o in node.outs:
            if donor is None:
                live += _nbytes(graph, o)
        peak = max(peak, live)
        for s in plan.frees[i]:
            if s != donor:
                live -= _nbytes(graph, s)
    return peak
