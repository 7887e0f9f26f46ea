"""TensorBoard summaries with TensorFlow 2's ``tf.summary`` API: ``tc.summary``.

    writer = tc.summary.create_file_writer("logs/run1")
    with writer.as_default():
        tc.summary.scalar("loss", loss, step=step)  # tensors on any device, Python numbers, NumPy

Scalars are written as ``simple_value`` and histograms as ``HistogramProto``: TensorBoard 2
migrates both to its tensor form when it loads a run, and unlike the tensor form they are
also what TensorBoard's legacy ``EventAccumulator.Scalars``/``Histograms`` (and the scripts
built on them) read. Text is the text plugin's string tensor, its only form; a graph is the
``GraphDef`` of ``tensorcore.graph.export``. The default writer, the default step and
``record_if`` belong to the thread that set them (DESIGN.md, rule 7); a writer may be shared
by threads. Under MPI only rank 0 writes (``create_file_writer``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from tensorcore import dispatch
from tensorcore.distribute.values import PerReplica
from tensorcore.graph import ir
from tensorcore.graph.export import to_graph_def
from tensorcore.graph.function import Function
from tensorcore.graph.trace import TraceError, user_line
from tensorcore.summary._writer import SummaryWriter, check_step, create_file_writer, create_noop_writer, pb
from tensorcore.summary._writer import state as _state
from tensorcore.tensor import Tensor

__all__ = ["SummaryWriter", "create_file_writer", "create_noop_writer", "scalar", "histogram", "text", "graph",
           "get_step", "set_step", "record_if", "should_record_summaries", "flush"]

DEFAULT_BUCKETS = 30  # tf.summary.histogram's default
_NUMBER = "a 0-d tensorcore tensor (on any device), a Python int, float or bool, a NumPy scalar or a 0-d NumPy array"
_NUMBERS = "a tensorcore tensor (on any device), a Python number, a NumPy array or scalar, or a list of numbers"
_STRINGS = "a str, bytes, or a NumPy array or (nested) list of str"


# --- the default step and recording ------------------------------------------------------------


def get_step() -> Any:
    """The calling thread's default step (what :func:`set_step` set), or None."""
    return _state.step


def set_step(step: Any) -> None:
    """Set the calling thread's default step: an int, or a 0-d integer tensor or Variable
    (read at each write, so ``set_step(counter)`` follows the counter); None clears it."""
    if step is not None:
        check_step(step, "set_step")
    _state.step = step


@contextmanager
def record_if(condition: bool | Callable[[], Any] | Tensor) -> Iterator[None]:
    """Write summaries in this thread only where ``condition`` holds, inside the ``with`` block:
    a bool, a callable (called at each write, e.g. ``lambda: step % 100 == 0``) or a 0-d tensor.
    The innermost ``record_if`` decides; the previous condition comes back after the block."""
    if not (isinstance(condition, (bool, np.bool_)) or callable(condition)
            or (isinstance(condition, Tensor) and condition.ndim == 0)):
        raise TypeError(f"tc.summary.record_if: condition must be a bool, a callable or a 0-d tensor, got {_what(condition)}")
    old, _state.condition = _state.condition, condition
    try:
        yield
    finally:
        _state.condition = old


def _recording() -> bool:
    c = _state.condition
    if c is True:  # the common case
        return True
    if isinstance(c, Tensor):
        return bool(np.asarray(c.numpy()))
    return bool(c() if callable(c) else c)


def should_record_summaries() -> bool:
    """Whether a summary written now in this thread would reach a file (a default file writer
    is set and ``record_if`` allows it)."""
    writer = _state.writer
    return writer is not None and writer.writes and _recording()


def flush(writer: SummaryWriter | None = None) -> bool:
    """Flush ``writer`` (default: this thread's default writer); False when there is none."""
    writer = writer if writer is not None else _state.writer
    if writer is None:
        return False
    writer.flush()
    return True


# --- the summaries ------------------------------------------------------------------------------


def _what(data: Any) -> str:
    """``data`` described for an error message."""
    if isinstance(data, Tensor):
        return f"a tensor of shape {data.shape} and dtype {data.dtype} on {data.device}"
    if isinstance(data, np.ndarray):
        return f"a NumPy array of shape {data.shape} and dtype {data.dtype}"
    if isinstance(data, np.generic):
        return f"a NumPy {data.dtype} scalar"
    if isinstance(data, PerReplica):
        return "a PerReplica (one value per replica: reduce it first, e.g. strategy.reduce('mean', value))"
    text = repr(data)
    return f"{type(data).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def _begin(kind: str, name: str, step: Any, description: str | None) -> tuple[SummaryWriter, Any] | None:
    """The default writer and the step of a summary, or None when nothing is to be written.
    Checks what needs no value read, so that a no-op writer (MPI ranks other than 0) refuses
    the same mistakes as a file writer without waiting for a device."""
    writer = _state.writer
    if writer is None or not _recording():
        return None
    if dispatch.current_tracer() is not None:
        call = "tc.summary.graph(...)" if kind == "graph" else f"tc.summary.{kind}({name!r})"
        instead = ("call tc.summary.graph(f, *example_args) outside the traced function" if kind == "graph" else
                   f"return the value from the function and log it outside: `out = f(x); {call[:-1]}, out, step=i)`")
        raise TraceError(f"{call} was called while tc.function traces, at {user_line()}. A traced function runs its "
                         "Python once, when it is traced, so the summary would be written once (and a tensor has no "
                         f"value yet): {instead}")
    writer.check_open()
    if kind == "graph":
        return writer, 0  # as tf.summary.graph: a run's graph is written at step 0
    if not isinstance(name, str) or not name:
        raise TypeError(f"tc.summary.{kind}: name must be a non-empty str, got {_what(name)}")
    if description is not None and not isinstance(description, str):
        raise TypeError(f"tc.summary.{kind}({name!r}): description must be a str or None, got {_what(description)}")
    if step is None:
        step = _state.step
        if step is None:
            raise ValueError(f"tc.summary.{kind}({name!r}): no step: pass step=, or set a default with "
                             "tc.summary.set_step(step) or writer.as_default(step=step)")
    check_step(step, f"{kind}({name!r})")
    return writer, step


def _write(writer: SummaryWriter, step: Any, value: Any = None, **event: Any) -> bool:
    if isinstance(step, Tensor):  # a step counter: its value now
        step = int(np.asarray(step.numpy()))
    if value is not None:
        event["summary"] = pb().Summary(value=[value])
    writer.add(pb().Event(wall_time=time.time(), step=int(step), **event).SerializeToString())
    return True


def _metadata(plugin: str, description: str | None) -> Any:
    return pb().Metadata(plugin_data=pb().Metadata.PluginData(plugin_name=plugin), summary_description=description or "")


def _host(data: Any) -> np.ndarray:
    """The value of checked data on the host (a device tensor is read: this waits for its device)."""
    return np.asarray(data.numpy() if isinstance(data, Tensor) else data)


def _real(kind: str, name: str, data: Any, accepts: str) -> Any:
    """``data`` if it holds real numbers (bools count): a tensor as is (not read), a list as NumPy."""
    if isinstance(data, (bool, int, float)):
        return data
    if isinstance(data, (list, tuple)) and kind == "histogram":
        try:
            data = np.asarray(data)
        except ValueError:  # ragged
            raise TypeError(f"tc.summary.{kind}({name!r}): data must be {accepts}; got a ragged {type(data).__name__}") from None
    if not isinstance(data, (Tensor, np.ndarray, np.generic)):
        raise TypeError(f"tc.summary.{kind}({name!r}): data must be {accepts}; got {_what(data)}")
    if data.dtype.kind not in "biuf":
        raise TypeError(f"tc.summary.{kind}({name!r}): data must hold real numbers ({accepts}); got {_what(data)}")
    return data


def scalar(name: str, data: Any, step: Any = None, description: str | None = None) -> bool:
    """Write one real number as the scalar summary ``name`` at ``step`` (default: the default step).

    ``data``: a 0-d tensorcore tensor on any device (read to the host), a Python number or
    bool, a NumPy scalar or 0-d array; stored as float32. Returns True if written, False when
    this thread has no default writer (or a no-op one, or ``record_if`` says no)."""
    begun = _begin("scalar", name, step, description)
    if begun is None:
        return False
    writer, step = begun
    data = _real("scalar", name, data, _NUMBER)
    shape = np.shape(data) if not isinstance(data, Tensor) else data.shape  # np.shape would read a tensor
    if shape != ():
        hint = "index it (x[0]) or reduce it" if int(np.prod(shape)) == 1 else "reduce it"
        raise ValueError(f"tc.summary.scalar({name!r}): data must be a single number, {_NUMBER}; got {_what(data)} "
                         f"({hint}, e.g. tc.mean(x))")
    if not writer.writes:
        return False
    value = float(_host(data))
    return _write(writer, step, pb().Summary.Value(tag=name, simple_value=value, metadata=_metadata("scalars", description)))


def histogram(name: str, data: Any, step: Any = None, buckets: int | None = None, description: str | None = None) -> bool:
    """Write the distribution of ``data``'s values (any shape, flattened) as a histogram of
    ``buckets`` equal-width buckets from its minimum to its maximum (default 30).

    ``data``: a tensorcore tensor on any device, a Python number, a NumPy array or scalar, or a
    list of numbers; NaN and infinity are refused. Returns True if written, False when nothing
    is recorded (see :func:`scalar`)."""
    begun = _begin("histogram", name, step, description)
    if begun is None:
        return False
    writer, step = begun
    count = DEFAULT_BUCKETS if buckets is None else buckets
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"tc.summary.histogram({name!r}): buckets must be an int >= 1 (or None for {DEFAULT_BUCKETS}), got {buckets!r}")
    data = _real("histogram", name, data, _NUMBERS)
    if not writer.writes:
        return False
    values = _host(data).astype(np.float64).ravel()
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"tc.summary.histogram({name!r}): data holds {values.size - int(finite.sum())} NaN or infinite "
                         f"value(s) of {values.size}; a histogram needs finite values")
    if values.size == 0:
        histo = pb().Histogram(num=0, bucket_limit=[0.0], bucket=[0.0])
    else:
        low, high = float(values.min()), float(values.max())
        limits, counts = _buckets(values, low, high, int(count))
        histo = pb().Histogram(min=low, max=high, num=float(values.size), sum=float(values.sum()),
                               sum_squares=float(np.dot(values, values)), bucket_limit=limits, bucket=counts)
    return _write(writer, step, pb().Summary.Value(tag=name, histo=histo, metadata=_metadata("histograms", description)))


def _buckets(values: np.ndarray, low: float, high: float, count: int) -> tuple[list[float], list[float]]:
    """The right edges and counts of ``count`` equal-width buckets from ``low`` to ``high``
    (TensorFlow's rule: a value's bucket is floor((x - low) / width), the last one closed).
    Not np.histogram: it refuses ranges of a few ulps. Divided before subtracting, so that
    max - min cannot overflow."""
    width = high / count - low / count
    if not width > 0:  # one value, or a range too small to split: one bucket
        return [high], [float(values.size)]
    index = np.clip(np.floor(values / width - low / width), 0, count - 1).astype(np.int64)
    t = np.arange(1, count + 1) / count
    limits = low * (1 - t) + high * t
    limits[-1] = high
    return limits.tolist(), np.bincount(index, minlength=count).astype(np.float64).tolist()


def _strings(name: str, data: Any) -> tuple[tuple[int, ...], list[bytes]]:
    """``data``'s shape and its strings as UTF-8, flattened; a TypeError naming what it is."""
    array = None
    if isinstance(data, (str, bytes)):
        array = np.empty((), object)
        array[()] = data
    elif isinstance(data, np.ndarray) and data.dtype.kind in "USO":
        array = data.astype(object)
    elif isinstance(data, (list, tuple)):
        array = np.array(data, dtype=object)  # a ragged list becomes an array of lists: refused below
    if array is None or not all(isinstance(s, (str, bytes)) for s in array.flat):
        hint = " (a tensor holds numbers: format it first, e.g. f'{x.item():.4f}')" if isinstance(data, Tensor) else ""
        raise TypeError(f"tc.summary.text({name!r}): data must be {_STRINGS}; got {_what(data)}{hint}")
    return array.shape, [s.encode() if isinstance(s, str) else s for s in array.flat]


def text(name: str, data: Any, step: Any = None, description: str | None = None) -> bool:
    """Write text (Markdown) as a text summary: a str, or a NumPy array or (nested) list of str
    that TensorBoard shows as a table. Returns True if written, False when nothing is recorded."""
    begun = _begin("text", name, step, description)
    if begun is None:
        return False
    writer, step = begun
    shape, strings = _strings(name, data)
    if not writer.writes:
        return False
    tensor = pb().TensorProto(dtype=pb().DT_STRING, string_val=strings,
                              tensor_shape=pb().Shape(dim=[pb().Shape.Dim(size=n) for n in shape]))
    return _write(writer, step, pb().Summary.Value(tag=name, tensor=tensor, metadata=_metadata("text", description)))


def graph(graph_data: Any, *args: Any, **kwargs: Any) -> bool:
    """Write a traced graph for TensorBoard's Graphs tab (at step 0, as ``tf.summary.graph``).

    ``graph_data``: a ``tc.function`` with example arguments (``graph(f, x, w)`` writes
    ``f.graph(x, w)``, tracing it if needed), a graph from ``f.graph(...)``, or a ``GraphDef``
    (``tensorcore.graph.export.to_graph_def``). TensorBoard shows one graph per run, the last
    one written. Returns True if written, False when nothing is recorded."""
    begun = _begin("graph", "graph", None, None)
    if begun is None:
        return False
    writer, step = begun
    is_graph_def = type(graph_data).__name__ == "GraphDef" and hasattr(graph_data, "SerializeToString")
    if (isinstance(graph_data, ir.Graph) or is_graph_def) and (args or kwargs):
        raise TypeError("tc.summary.graph: example arguments go with a tc.function, not with a graph or GraphDef")
    if not isinstance(graph_data, (Function, ir.Graph)) and not is_graph_def:
        hint = " (wrap it: tc.function(fn), and pass example arguments)" if callable(graph_data) else ""
        raise TypeError(f"tc.summary.graph: graph_data must be a tc.function with example arguments, a graph from "
                        f"f.graph(...), or a GraphDef; got {_what(graph_data)}{hint}")
    if not writer.writes:
        return False
    if isinstance(graph_data, Function):
        graph_data = graph_data.graph(*args, **kwargs)
    graph_def = graph_data if is_graph_def else to_graph_def(graph_data)
    return _write(writer, step, graph_def=graph_def.SerializeToString())
