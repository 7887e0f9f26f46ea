"""What the pattern rewrites share (``rewrite_linear.py``, ``rewrite_sgd.py``): who makes and who
reads each slot, whether an in-place update runs between two nodes, and the splice that puts
a replacement node where the nodes it replaces were.

A rewrite finds a small pattern of traced nodes (``matmul`` then ``add``; ``multiply`` then
``assign_sub``) and replaces it by one node of an op that computes the same. Three rules keep
that sound, each checked by :class:`Uses`:

- every intermediate the pattern removes has exactly one reader, the next node of the
  pattern, and the function does not return it;
- no in-place node runs between the first node of the pattern and the last, so the
  replacement, which reads the pattern's inputs where the last node ran, reads the values the
  first node read (``passes.AliasSafety``);
- the pattern's nodes and inputs are all on one device, with no fallback, and that device has
  a kernel for the replacement op (so strict placement accepts the result as it did the
  original).
"""

from __future__ import annotations

from typing import Any

from tensorcore.device import Device
from tensorcore.graph.ir import OP, Graph, Node
from tensorcore.graph.passes import AliasSafety, known


class Uses:
    """Producers, readers and positions of a graph's nodes, taken before a rewrite pass changes
    anything (a pass decides every match on the graph as it was, then splices once)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.producer: dict[int, Node] = {o: n for n in graph.nodes for o in n.outs}
        self.readers: dict[int, list[Node]] = graph.users()
        self.position: dict[int, int] = {id(n): i for i, n in enumerate(graph.nodes)}
        self.returned = graph.output_slots()
        self.safe = AliasSafety(graph)

    def made_by(self, arg: Any, op_name: str) -> Node | None:
        """The op node named ``op_name`` (traced where it has a kernel) that makes slot ``arg``, or None."""
        node = self.producer.get(arg) if type(arg) is int else None
        if node is None or node.kind != OP or node.op.name != op_name or node.fallback is not None:
            return None
        return node

    def only_reader(self, slot: int, node: Node) -> bool:
        """Whether ``node`` is the one reader of ``slot`` (reading it once) and nothing returns it."""
        readers = self.readers.get(slot, [])
        return slot not in self.returned and len(readers) == 1 and readers[0] is node

    def chain(self, first: Node, last: Node, slot: int) -> bool:
        """Whether ``last`` alone reads ``slot`` (made by ``first``), the two run on one device in
        one scope, and no in-place node runs between them: the rules for fusing the pair."""
        return (self.only_reader(slot, last) and first.device == last.device and first.requested == last.requested
                and self.no_update_between(first, last))

    def no_update_between(self, first: Node, last: Node) -> bool:
        """Whether no in-place node runs after ``first`` and before ``last``."""
        return self.safe.no_update_between(self.position[id(first)], self.position[id(last)])

    def on(self, device: Device, *args: Any) -> bool:
        """Whether every slot among ``args`` lives on ``device`` and has a shape known when the
        graph is built (a data-dependent one may differ from run to run)."""
        slots = [a for a in args if type(a) is int]
        return all(self.graph.devices[s] == device and known(self.graph.specs[s]) for s in slots)


def replacement(kind: str, op: Any, args: tuple, attrs: dict, outs: tuple[int, ...], replaced: list[Node]) -> Node:
    """A node of ``op`` that stands for the nodes ``replaced`` (in graph order): it runs where the
    last of them ran, on its device and scope, and its ``origin`` names them all."""
    last = replaced[-1]
    return Node(kind, op, args, attrs, last.device, outs, name=f"{op.name}_{last.name}", line=last.line,
                requested=last.requested, origin=f"replaces {', '.join(_traced_names(n) for n in replaced)}")


def _traced_names(node: Node) -> str:
    """The traced nodes ``node`` stands for: itself, or those an earlier rewrite replaced by it."""
    head = "replaces "
    return node.origin[len(head):] if node.origin and node.origin.startswith(head) else node.name


def splice(graph: Graph, edits: dict[int, list[Node]]) -> None:
    """Replace each node whose ``id`` is a key of ``edits`` by that list of nodes (empty: drop it)."""
    nodes: list[Node] = []
    for node in graph.nodes:
        nodes += edits.get(id(node), [node])
    graph.nodes = nodes
