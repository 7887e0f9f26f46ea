"""Graph capture: ``tc.function`` traces Python functions into graphs, optimizes, places and runs them."""

from tensorcore.graph.export import to_dot, to_graph_def, to_tensorboard
from tensorcore.graph.function import Function, function
from tensorcore.graph.ir import Graph, Node
from tensorcore.graph.trace import TraceError

__all__ = ["Function", "Graph", "Node", "TraceError", "function", "to_dot", "to_graph_def", "to_tensorboard"]
