"""``tc.function``: trace a Python function into a graph once per input signature, then replay it."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

from tensorcore.graph import ir
from tensorcore.graph.trace import Tracer
from tensorcore.tensor import Tensor

RETRACE_WARNING = 5  # traces of one function before warning, as TensorFlow does


def _flatten(args: Any, tensors: list[Tensor]) -> Any:
    """The hashable signature of ``args``; tensors are appended to ``tensors``."""
    if isinstance(args, Tensor):
        tensors.append(args)
        return ("tensor", args.shape, str(args.dtype), str(args.device))
    if isinstance(args, (list, tuple)):
        return (type(args).__name__,) + tuple(_flatten(a, tensors) for a in args)
    if isinstance(args, dict):
        return ("dict",) + tuple((k, _flatten(v, tensors)) for k, v in sorted(args.items()))
    try:
        hash(args)
    except TypeError:
        raise TypeError(f"tc.function: argument {args!r} is neither a tensor nor hashable; "
                        "pass tensors, Python scalars, strings or tuples of them") from None
    return ("value", args)


def _output_structure(value: Any, tracer: Tracer, name: str) -> Any:
    if isinstance(value, Tensor):
        return tracer.ref(value)
    if value is None:
        return ir.Literal(None)
    if isinstance(value, (list, tuple)):
        return type(value)(_output_structure(v, tracer, name) for v in value)
    if isinstance(value, dict):
        return {k: _output_structure(v, tracer, name) for k, v in value.items()}
    raise TypeError(f"tc.function {name!r} returned a {type(value).__name__} ({value!r}); a traced "
                    "function returns tensors (or tuples, lists and dicts of them)")


class Function:
    """A traced function: ``f(*args)`` replays the graph traced for ``args``' signature."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self._graphs: dict[Any, ir.Graph] = {}
        self.trace_count = 0

    def _graph_for(self, args: tuple, kwargs: dict) -> tuple[ir.Graph | None, list[Tensor], Any]:
        tensors: list[Tensor] = []
        key = _flatten((args, kwargs), tensors)
        return self._graphs.get(key), tensors, key

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph, tensors, key = self._graph_for(args, kwargs)
        if graph is not None:
            return ir.run(graph, tensors)
        return self._trace(key, tensors, args, kwargs)

    def _trace(self, key: Any, tensors: list[Tensor], args: tuple, kwargs: dict) -> Any:
        name = getattr(self.fn, "__qualname__", "function")
        graph = ir.Graph(name)
        with Tracer(graph) as tracer:  # tapes keep recording: gradients computed inside get traced
            for t in tensors:
                graph.inputs.append(tracer.new_slot(t))
            result = self.fn(*args, **kwargs)
            graph.outputs = _output_structure(result, tracer, name)
        self._graphs[key] = graph
        self.trace_count += 1
        if self.trace_count == RETRACE_WARNING:
            warnings.warn(f"tc.function {name!r} was traced {self.trace_count} times: each new input "
                          "signature (shapes, dtypes, devices, Python values) traces again; pass tensors "
                          "rather than changing Python values", stacklevel=3)
        return result

    def graph(self, *args: Any, **kwargs: Any) -> ir.Graph:
        """The graph for these arguments' signature (tracing it if needed)."""
        graph, tensors, key = self._graph_for(args, kwargs)
        if graph is None:
            self._trace(key, tensors, args, kwargs)
            graph = self._graphs[key]
        return graph


def function(fn: Callable[..., Any] | None = None) -> Any:
    """Trace ``fn`` into a graph per input signature and replay it (TensorFlow's ``tf.function``).

    Use as ``@tc.function`` or ``tc.function(fn)``. Python control flow runs once, at trace time
    (loops are unrolled, branches fixed); reading a tensor's value while tracing is an error.
    """
    if fn is None:
        return function
    return Function(fn)
