"""``tc.function``: trace a Python function into a graph once per input signature, optimize
and place it, then run it with the executor.

The pipeline of one trace (each step its own module): ``trace`` -> ``passes.optimize`` (dead
code, constant folding, algebraic simplification, common subexpressions, and the pattern
rewrites of ``rewrite_linear`` and ``rewrite_sgd``) -> ``placer.place``
(devices, copy nodes) -> ``fusion.fuse_elementwise`` -> ``executor.schedule`` ->
``memory.plan_memory`` (inside the ``Executable``).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tensorcore import dispatch, placement
from tensorcore.autodiff import tape as _tape
from tensorcore.device import default_device, scoped_device
from tensorcore.graph import captures, ir, passes, placer
from tensorcore.graph.executor import Executable, schedule
from tensorcore.graph.fusion import fuse_elementwise
from tensorcore.graph.trace import Tracer
from tensorcore.ops import sampling
from tensorcore.tensor import Tensor

RETRACE_WARNING = 5  # traces of one function before warning, as TensorFlow does


def _flatten(args: Any, tensors: list[Tensor]) -> Any:
    """The hashable signature of ``args``; tensors are appended to ``tensors``."""
    if isinstance(args, Tensor):
        tensors.append(args)
        return (args._data.shape, args._data.dtype, args._device)
    if isinstance(args, (list, tuple)):
        return (type(args).__name__,) + tuple(_flatten(a, tensors) for a in args)
    if isinstance(args, dict):
        return ("dict",) + tuple((k, _flatten(v, tensors)) for k, v in sorted(args.items(), key=lambda kv: repr(kv[0])))
    if type(args) is float:  # by bits: -0.0 and 0.0 give different graphs, and a NaN finds its trace
        return ("value", "float", args.hex())
    try:
        hash(args)
    except TypeError:
        raise TypeError(f"tc.function: argument {args!r} is neither a tensor nor hashable; "
                        "pass tensors, Python scalars, strings or tuples of them") from None
    return ("value", type(args).__name__, args)


def _output_structure(value: Any, tracer: Tracer, name: str) -> Any:
    if isinstance(value, Tensor):
        return tracer.ref(value)
    if value is None:
        return ir.Literal(None)
    if isinstance(value, (list, tuple)):
        return ir.rebuild(value, [_output_structure(v, tracer, name) for v in value])
    if isinstance(value, dict):
        return {k: _output_structure(v, tracer, name) for k, v in value.items()}
    raise TypeError(f"tc.function {name!r} returned a {type(value).__name__} ({value!r}); a traced "
                    "function returns tensors (or tuples, lists and dicts of them)")


# Set by tensorcore.distribute: which replica this thread runs as (None outside strategy.run).
# A traced graph captures the replica's own state (its optimizer slots, its weights), so two
# replicas on one device need graphs of their own even where their signatures agree.
cache_namespace: Callable[[], Any] | None = None


@dataclass
class Compiled:
    """One trace: the graph as traced, the graph as run, and its executable."""

    traced: ir.Graph
    graph: ir.Graph
    executable: Executable
    stats: dict[str, int]


def compile_graph(traced: ir.Graph, strict: bool, fuse: bool = True, plan: bool = True) -> Compiled:
    """Optimize, place, fuse, schedule and lower a traced graph (``traced`` is not changed)."""
    graph = traced.copy()
    stats = passes.optimize(graph)
    placer.place(graph, strict)
    stats["fused nodes"] = fuse_elementwise(graph) if fuse else 0
    schedule(graph)
    return Compiled(traced, graph, Executable(graph, planned=plan), stats)


class Function:
    """A traced function: ``f(*args)`` runs the graph traced for ``args``' signature."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self._compiled: dict[Any, Compiled] = {}
        self.trace_count = 0

    def _lookup(self, args: tuple, kwargs: dict) -> tuple[Compiled | None, list[Tensor], Any]:
        if not kwargs and all(type(a) is Tensor for a in args):  # the common case, kept cheap
            tensors = list(args)
            signature: Any = tuple((t._data.shape, t._data.dtype, t._device) for t in tensors)
        else:
            tensors = []
            signature = _flatten((args, kwargs), tensors)
        # One tensor passed in two places traces as one input: a call passing two tensors there
        # needs a graph of its own (it computed x - x for f(x, z) after tracing f(x, x)).
        ids = [id(t) for t in tensors]
        same = None if len(set(ids)) == len(ids) else tuple(ids.index(i) for i in ids)
        key = (signature, scoped_device(), default_device(), placement.state.strict,
               None if cache_namespace is None else cache_namespace(), same)
        return self._compiled.get(key), tensors, key

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if dispatch.current_tracer() is not None:  # called while this thread traces: its ops join that graph
            return self.fn(*args, **kwargs)
        compiled, tensors, key = self._lookup(args, kwargs)
        if compiled is None:
            compiled = self._trace(key, tensors, args, kwargs)
        if _tape.recording and _tape.recording_here():  # a tape of this thread must see each op
            return ir.replay_eager(compiled.traced, tensors)
        return compiled.executable.run(tensors)

    def _trace(self, key: Any, tensors: list[Tensor], args: tuple, kwargs: dict) -> Compiled:
        name = getattr(self.fn, "__qualname__", "function")
        graph = ir.Graph(name)
        watch = captures.CapturedContainers(self.fn)
        rng = sampling.state()
        try:
            with Tracer(graph) as tracer:  # tapes keep recording: gradients computed inside get traced
                for t in tensors:
                    graph.inputs.append(tracer.new_slot(t))
                result = self.fn(*args, **kwargs)
                graph.outputs = _output_structure(result, tracer, name)
        finally:
            sampling.restore(rng)  # the graph draws when it runs: as if tracing drew nothing
        watch.warn_if_changed(name)
        compiled = self._compiled[key] = compile_graph(graph, strict=key[3])
        self.trace_count += 1
        if self.trace_count == RETRACE_WARNING:
            warnings.warn(f"tc.function {name!r} was traced {self.trace_count} times: each new input "
                          "signature (shapes, dtypes, devices, Python values) traces again; pass tensors "
                          "rather than changing Python values", stacklevel=3)
        return compiled

    def _compiled_for(self, args: tuple, kwargs: dict) -> Compiled:
        compiled, tensors, key = self._lookup(args, kwargs)
        return compiled if compiled is not None else self._trace(key, tensors, args, kwargs)

    def graph(self, *args: Any, **kwargs: Any) -> ir.Graph:
        """The optimized, placed graph that runs for these arguments' signature (traced if needed).

        Export it with ``g.to_dot()`` (Graphviz) or ``g.to_tensorboard(logdir)``."""
        return self._compiled_for(args, kwargs).graph

    def traced_graph(self, *args: Any, **kwargs: Any) -> ir.Graph:
        """The graph as traced, before optimization and placement."""
        return self._compiled_for(args, kwargs).traced

    def placement_report(self, *args: Any, **kwargs: Any) -> str:
        """Each node of the graph for these arguments, its device, and why, as text to print
        (returned, not printed, so a REPL shows it once)."""
        return placer.report(self.graph(*args, **kwargs))

    def code(self, *args: Any, **kwargs: Any) -> str:
        """The Python source the executor runs for these arguments' graph (one line per node)."""
        return self._compiled_for(args, kwargs).executable.source()

    def stats(self, *args: Any, **kwargs: Any) -> dict[str, int]:
        """What each pass changed in the graph for these arguments (nodes removed, folded,
        rewritten, fused), as ``compile_graph`` counted it."""
        return dict(self._compiled_for(args, kwargs).stats)

    def memory_report(self, *args: Any, **kwargs: Any) -> str:
        """Peak bytes of the graph's intermediates with and without memory planning."""
        return self._compiled_for(args, kwargs).executable.memory.summary()


def function(fn: Callable[..., Any] | None = None) -> Any:
    """Trace ``fn`` into a graph per input signature and run it (TensorFlow's ``tf.function``).

    Use as ``@tc.function`` or ``tc.function(fn)``. Python control flow runs once, at trace time
    (loops are unrolled, branches fixed); reading a tensor's value while tracing is an error.
    """
    if fn is None:
        return function
    return Function(fn)
