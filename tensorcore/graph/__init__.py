"""Graph capture: ``tc.function`` traces Python functions into graphs and replays them."""

from tensorcore.graph.function import Function, function
from tensorcore.graph.ir import Graph, Node
from tensorcore.graph.trace import TraceError

__all__ = ["Function", "Graph", "Node", "TraceError", "function"]
