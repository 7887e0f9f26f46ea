"""The executor: runs an optimized, placed graph.

Each node is lowered once to a step, a small closure that calls the node's bound kernel on
the slots' raw arrays, with no placement or bookkeeping per call. Kernels on asynchronous
devices (OpenCL, CUDA) only enqueue, so the host waits only at copies to the host and when
the caller reads an output. ``schedule`` orders the nodes so that work for accelerators is
issued before host work that does not depend on it: the devices then run side by side.
Memory follows the plan of ``memory.py``: a value is released after its last reader.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from tensorcore import dispatch, placement, registry
from tensorcore.device import Device
from tensorcore.errors import CollectiveError, KernelUnsupported, OpError, OutOfMemoryError, PlacementError
from tensorcore.graph.fusion import is_fusable
from tensorcore.graph.ir import FUSED, INPLACE, OP, Graph, Node, build_outputs
from tensorcore.graph.memory import MemoryPlan, plan_memory
from tensorcore.ops.fusable import FUSABLE
from tensorcore.tensor import Tensor

CPU = Device("cpu")


def _blocks_host(node: Node) -> bool:
    """Whether running ``node`` keeps the host busy until it is done (cpu work, reads to the host)."""
    return node.device.type == "cpu"


def schedule(graph: Graph) -> None:
    """Reorder ``graph.nodes``: between in-place updates (which keep their place), issue each
    node as soon as its inputs are ready, accelerator work before host work."""
    ordered: list[Node] = []
    segment: list[Node] = []
    for node in graph.nodes + [None]:
        if node is None or node.kind == INPLACE:
            ordered += _list_schedule(segment)
            segment = []
            if node is not None:
                ordered.append(node)
        else:
            segment.append(node)
    graph.nodes = ordered


def _list_schedule(nodes: list[Node]) -> list[Node]:
    made = {o: n for n in nodes for o in n.outs}
    waiting = {id(n): {s for s in n.slots() if s in made} for n in nodes}
    done: set[int] = set()
    order: list[Node] = []
    pending = list(nodes)
    while pending:
        ready = [n for n in pending if waiting[id(n)] <= done]
        pick = next((n for n in ready if not _blocks_host(n)), ready[0])
        pending.remove(pick)
        order.append(pick)
        done.update(pick.outs)
    return order


def _sole_owner(x: Any) -> bool:
    """Whether only the executor's slot table (and the caller's local) refer to array ``x``
    (no view of it, no other slot), so its buffer may be overwritten. Compares reference
    counts with those of an array known to be held only so (``_SOLE``, measured at import,
    so the check follows the interpreter's way of counting)."""
    if type(x) is np.ndarray:
        return x.base is None and x.flags.c_contiguous and x.flags.writeable and sys.getrefcount(x) <= _SOLE[0]
    buf = getattr(x, "buf", None)  # an OpenCL array: its views share its buffer object
    return (buf is not None and x.offset == 0 and x.is_contiguous and sys.getrefcount(x) <= _SOLE[0]
            and sys.getrefcount(buf) <= _SOLE[1])


def _counts(x: Any) -> tuple[int, int]:
    buf = x.buf
    return sys.getrefcount(x), sys.getrefcount(buf)


def _calibrate() -> tuple[int, int]:
    class Probe:  # an array object holding a buffer object, like an OpenCL array
        buf = None

    probe = Probe()
    probe.buf = object()
    env = [probe]
    del probe
    held = env[0]  # as in a step: the table and one local
    return _counts(held)


_SOLE = _calibrate()


class Executable:
    """A graph lowered to Python source, one line (or a few) per node, compiled once.

    Generated code is the cheapest way to call ~20 kernels from Python: each line calls a
    node's bound kernel on entries of the slot table ``env`` with its attributes as keyword
    constants, so a node costs one Python call (torch.fx lowers graphs the same way).
    ``source()`` shows the code. If a kernel declines its inputs at run time, that node runs
    through eager dispatch (the placement policy applies) and the run goes on from the next node.
    """

    def __init__(self, graph: Graph, planned: bool = True) -> None:
        self.graph = graph
        self.memory: MemoryPlan = plan_memory(graph) if planned else MemoryPlan([[] for _ in graph.nodes])
        self.persistent: dict[int, Tensor] = {**graph.constants, **graph.variables}
        self._persistent_items = list(self.persistent.items())
        self._known_slots = set(graph.inputs) | set(graph.variables)
        self.namespace: dict[str, Any] = {"sole": _sole_owner, "KernelUnsupported": KernelUnsupported}
        self.lines = [self._lower(i, node) for i, node in enumerate(graph.nodes)]
        self._functions: dict[int, Callable[[list], None]] = {}
        self.ops_per_device: dict[Device, int] = {}
        for node in graph.nodes:
            self.ops_per_device[node.device] = self.ops_per_device.get(node.device, 0) + 1
        self.fallbacks = [(n.op.name, n.moved_from) for n in graph.nodes if n.moved_from is not None]
        # (argument position, updates): arguments the graph writes in place. As in eager mode
        # each update bumps the tensor's version, so a tape that recorded it refuses a stale gradient.
        writes: dict[int, int] = {}
        for node in graph.nodes:
            if node.kind == INPLACE:
                for s in _written(node):
                    writes[s] = writes.get(s, 0) + 1
        self._argument_writes = [(k, writes[s]) for k, s in enumerate(graph.inputs) if s in writes]

    def source(self, start: int = 0) -> str:
        """The Python source that runs nodes ``start`` onwards (one comment line names each node)."""
        body = []
        for i in range(start, len(self.lines)):
            node = self.graph.nodes[i]
            body.append(f"    # node {i}: {node}" + (f" ({node.name}: {node.origin})" if node.origin else ""))
            body += ["    " + line for line in self.lines[i]]
        return "def run(env):\n" + ("\n".join(body) if body else "    pass") + "\n"

    def _function(self, start: int) -> Callable[[list], None]:
        fn = self._functions.get(start)
        if fn is None:
            code = compile(self.source(start), f"<tc.function {self.graph.name} from node {start}>", "exec")
            scope: dict[str, Any] = {}
            exec(code, self.namespace, scope)  # noqa: S102 - our own generated source
            fn = self._functions[start] = scope["run"]
        return fn

    def _node_at(self, exc: BaseException, start: int) -> int:
        """The node whose line raised ``exc`` in the generated function that began at ``start``."""
        tb, line = exc.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename.startswith("<tc.function"):
                line = tb.tb_lineno
            tb = tb.tb_next
        src = self.source(start).splitlines()[: line or 1]
        return start + sum(1 for text in src if text.startswith("    # node ")) - 1

    def run(self, args: list[Tensor]) -> Any:
        """Run the graph on ``args`` (tensors in the traced signature); returns its outputs."""
        env: list[Any] = [None] * self.graph.slots
        for slot, t in self._persistent_items:
            env[slot] = t._data
        for slot, t in zip(self.graph.inputs, args):
            env[slot] = t._data
        start = 0
        while start < len(self.lines):
            try:
                self._function(start)(env)
                break
            except KernelUnsupported as exc:
                i = self._node_at(exc, start)
                self._fallback(self.graph.nodes[i], env, str(exc))
                start = i + 1
            except (OpError, PlacementError, OutOfMemoryError, MemoryError, CollectiveError):
                raise  # already named; a collective's (a mismatch, a timeout, another replica's abort) as is
            except Exception as exc:
                node = self.graph.nodes[self._node_at(exc, start)]
                raise OpError(f"node {node.name!r} ({node.op_name} on {node.device}, traced at {node.line}) "
                              f"failed: {exc}") from exc
        counts = placement.ops_per_device
        for dev, n in self.ops_per_device.items():
            counts[dev] = counts.get(dev, 0) + n
        for key in self.fallbacks:  # counted per run, as eager mode counts per call
            placement.fallbacks[key] += 1
        for k, n in self._argument_writes:
            args[k]._version += n
        out = self.graph.outputs
        if type(out) is int and out not in self._known_slots:  # one new tensor: the common case
            return dispatch.wrap(env[out], self.graph.devices[out])
        known = dict(zip(self.graph.inputs, args))
        known.update(self.graph.variables)
        return build_outputs(out, _Outputs(env, self.graph.devices, known))

    # --- lowering: each node to lines of source ------------------------------------------

    def _name(self, prefix: str, i: int, value: Any) -> str:
        """Put ``value`` in the generated code's namespace under a fresh name."""
        name = f"{prefix}{i}"
        self.namespace[name] = value
        return name

    def _const(self, value: Any) -> str:
        """A name for a literal argument or attribute value (``repr`` may not round-trip)."""
        name = f"c{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def _args(self, node: Node) -> str:
        """The call arguments of ``node``: slots, literals, then attributes as keywords."""
        parts = [f"env[{a}]" if type(a) is int else self._const(a.value) for a in node.args]
        parts += [f"{key}={self._const(value)}" for key, value in node.attrs.items()]
        return ", ".join(parts)

    def _lower(self, i: int, node: Node) -> list[str]:
        if node.kind == OP:
            lines = self._op_lines(i, node)
        elif node.kind == FUSED:
            lines = self._fused_lines(i, node)
        elif node.kind == INPLACE:
            lines = self._update_lines(i, node)
        else:
            lines = self._copy_lines(i, node)
        return lines + [f"env[{s}] = None" for s in self.memory.frees[i]]

    def _op_lines(self, i: int, node: Node) -> list[str]:
        kernel = node.op.kernels.get(node.device)
        if kernel is None:
            kernel = _declines(f"no kernel on {node.device}")
        k = self._name("k", i, kernel)
        call = f"{k}({self._args(node)})"
        outs = ", ".join(f"env[{o}]" for o in node.outs)
        donor = self.memory.donations.get(i)
        if donor is not None and is_fusable(node, self.graph):
            in_place = self._name("inplace", i, FUSABLE[node.op.name].numpy)
            # ``d`` and ``env`` hold the buffer: what _sole_owner's count expects
            return [f"d = env[{donor}]",
                    f"{outs} = {in_place}(d, {self._args(node)}) if sole(d) else {call}",
                    "d = None"]
        return [f"{outs}{',' if node.op.n_outputs != 1 else ''} = {call}"]

    def _fused_lines(self, i: int, node: Node) -> list[str]:
        f = self._name("fused", i, node.op.kernel)
        ins = ", ".join(f"env[{s}]" for s in node.slots())
        donor = self.memory.donations.get(i)
        if donor is None:
            return [f"env[{node.outs[0]}] = {f}({ins})"]
        # ``sole`` runs before the inputs are loaded: each loaded reference would count
        return [f"d = env[{donor}]", "d = d if sole(d) else None",
                f"env[{node.outs[0]}] = {f}({ins}, out=d)", "d = None"]

    def _update_lines(self, i: int, node: Node) -> list[str]:
        op = node.op
        written = _written(node)
        kernel = op.kernels.get(node.device)
        if kernel is None or any(type(a) is int and self.graph.devices[a] != node.device for a in node.args):
            return [f"{self._name('update', i, self._dispatched_update(node, written))}(env)"]
        lines = [f"{self._name('k', i, kernel)}({self._args(node)})"]
        for s in written:
            if s in self.persistent:  # as eager mode: an update bumps the tensor's version
                lines.append(f"{self._name(f't{s}_', i, self.persistent[s])}._version += 1")
        return lines

    def _dispatched_update(self, node: Node, written: list[int]) -> Callable[[list], None]:
        """An update through eager dispatch, which falls back to cpu and writes back (soft)."""
        tensor_of = self._tensor_of()

        def update(env: list) -> None:
            tensors = [tensor_of(a, env) for a in node.args]
            dispatch.apply_inplace(node.op, tensors[0], tuple(tensors[1:]), node.attrs)
            for s in written:  # the fallback may have given a tensor a new buffer
                env[s] = tensors[node.args.index(s)]._data

        return update

    def _copy_lines(self, i: int, node: Node) -> list[str]:
        (src,), (out,) = node.args, node.outs
        source = registry.get_backend(self.graph.devices[src].type)
        dest, index = registry.get_backend(node.device.type), node.device.index

        def copy(data: Any) -> Any:
            host = source.to_numpy(data)
            placement.bytes_copied[0] += host.nbytes
            return dest.from_numpy(host, index)

        return [f"env[{out}] = {self._name('copy', i, copy)}(env[{src}])"]

    def _tensor_of(self) -> Callable[[Any, list], Any]:
        def tensor_of(a: Any, env: list) -> Any:
            if type(a) is not int:
                return a.value
            t = self.persistent.get(a)
            return t if t is not None else dispatch.wrap(env[a], self.graph.devices[a])

        return tensor_of

    def _fallback(self, node: Node, env: list, reason: str) -> None:
        """A kernel declined its inputs at run time: run the node through eager dispatch, which
        applies the placement policy (cpu under soft placement, an error under strict)."""
        if node.kind == INPLACE:  # eager's in-place path: the kernel again, then cpu and write back
            self._dispatched_update(node, _written(node))(env)
        elif node.kind == OP:
            tensor_of = self._tensor_of()
            out = dispatch.apply_on(node.device, node.op, tuple(tensor_of(a, env) for a in node.args), node.attrs)
            for slot, t in zip(node.outs, out if isinstance(out, tuple) else (out,)):
                env[slot] = t._data
        else:
            raise OpError(f"node {node.name!r} ({node.op_name}) on {node.device} declined its inputs: {reason}")
        for s in self.memory.frees[self.graph.nodes.index(node)]:
            env[s] = None


def _written(node: Node) -> list[int]:
    """The slots an in-place node writes: its target and the state inputs its op mutates."""
    return [node.args[0]] + [node.args[k + 1] for k in node.op.mutates if type(node.args[k + 1]) is int]


def _declines(why: str) -> Callable[..., Any]:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise KernelUnsupported(why)

    return missing


class _Outputs:
    """The slot table seen as tensors, for building the return value."""

    def __init__(self, env: list, devices: dict[int, Device], known: dict[int, Tensor]) -> None:
        self.env, self.devices, self.known = env, devices, known

    def __getitem__(self, slot: int) -> Tensor:
        known = self.known.get(slot)  # an argument or a Variable returned as it is
        return known if known is not None else dispatch.wrap(self.env[slot], self.devices[slot])
