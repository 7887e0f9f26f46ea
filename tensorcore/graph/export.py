"""Export a graph for inspection: Graphviz DOT text and TensorBoard's Graphs tab.

Both views show the same things: one node per graph node (its op, device and output shapes;
a fused node lists the ops it fuses), the graph's inputs, Variables and constants, edges
labelled with the shape and dtype of the tensor they carry, the per-device partitions that the
placer made, copy nodes between them, and in-place updates with the tensor they update.

``to_dot`` needs nothing beyond the standard library. ``to_tensorboard`` writes a ``GraphDef``
event with tensorboardX (``pip install 'tensorcore[tensorboard]'``), imported only when called.
Neither changes the graph.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tensorcore.device import Device
from tensorcore.graph.ir import FUSED, INPLACE, TRANSFER, Graph, Literal, Node
from tensorcore.ops.registry import Spec

__all__ = ["to_dot", "to_graph_def", "to_tensorboard"]

INSTALL_HINT = "pip install 'tensorcore[tensorboard]'"


# --- what both exports share: the sources of values and who produced each slot -----------------


@dataclass
class _Source:
    """A value the graph does not compute: an input, a Variable or a constant."""

    kind: str  # "input", "variable", "constant", or "state": a captured tensor updated in place
    slot: int
    device: Device
    name: str  # e.g. "input_0", "variable_9"


@dataclass
class _View:
    """The graph as both exports walk it (built once; the graph is not changed)."""

    sources: list[_Source] = field(default_factory=list)
    producer: dict[int, tuple[str, int]] = field(default_factory=dict)  # slot -> (key, output index)
    node_keys: list[str] = field(default_factory=list)  # a unique key per node, in graph order
    # per node (by index): the in-place updates that must run before it, because it reads a
    # slot they wrote (the executor keeps that order; the drawing should show it)
    after: dict[int, list[int]] = field(default_factory=dict)


def _view(graph: Graph) -> _View:
    view = _View()
    for i, slot in enumerate(graph.inputs):
        view.sources.append(_Source("input", slot, graph.devices[slot], f"input_{i}"))
    # An optimizer's moments are plain tensors, so the graph holds them as constants, but the
    # graph updates them: call them state, not constants, so the picture does not mislead.
    mutated = graph.mutated_slots()
    for kind, table in (("variable", graph.variables), ("constant", graph.constants)):
        for slot in sorted(table):
            k = "state" if kind == "constant" and slot in mutated else kind
            view.sources.append(_Source(k, slot, graph.devices[slot], f"{k}_{slot}"))
    for src in view.sources:
        view.producer[src.slot] = (src.name, 0)
    last_update: dict[int, int] = {}  # slot -> index of the latest in-place node that wrote it
    for i, node in enumerate(graph.nodes):
        key = f"n{i}"
        view.node_keys.append(key)
        waits = {last_update[s] for s in node.slots() if s in last_update}
        if waits:
            view.after[i] = sorted(waits)
        for k, slot in enumerate(node.outs):
            view.producer[slot] = (key, k)
        for slot in _updated_slots(node):
            last_update[slot] = i
    return view


def _updated_slots(node: Node) -> list[int]:
    """The slots an in-place node writes: its target and any state its op mutates."""
    if node.kind != INPLACE:
        return []
    found = [node.args[0]]
    for i in getattr(node.op, "mutates", ()):
        if i + 1 < len(node.args) and type(node.args[i + 1]) is int:
            found.append(node.args[i + 1])
    return found


def _shape_text(spec: Spec | None) -> str:
    """``float32[4, 5]``; ``?`` for a dimension known only at run time."""
    if spec is None:
        return "?"
    if spec.shape is None:
        return f"{spec.dtype.name}[...]"
    return f"{spec.dtype.name}[{', '.join('?' if d is None else str(d) for d in spec.shape)}]"


def _arg_text(a: Any) -> str:
    return f"%{a}" if type(a) is int else repr(a.value if isinstance(a, Literal) else a)


# --- Graphviz DOT -------------------------------------------------------------------------------

# Fill colors per device type (clusters, then nodes); types not listed cycle through the rest.
_CLUSTER_COLORS = {"cpu": "#eef3fb", "opencl": "#eef8ee", "cuda": "#fdf3e6"}
_NODE_COLORS = {"cpu": "#c6dbf5", "opencl": "#c8e8c8", "cuda": "#f8d9a8"}
_SPARE = [("#f4eefa", "#dccbef"), ("#f9eef2", "#f0cad8"), ("#eef7f7", "#c5e4e4")]


def _quote(text: str) -> str:
    """A DOT double-quoted string. Backslashes are doubled first, so a value can never end the
    string early or form an escape such as ``\\n`` by accident; real newlines become ``\\n``."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n") + '"'


def _label(*lines: str) -> str:
    """A label of several lines: each line quoted as text, joined by DOT's ``\\n`` line breaks."""
    return _quote("\n".join(lines))


def _attrs(**attrs: str) -> str:
    return "[" + ", ".join(f"{k}={v}" for k, v in attrs.items()) + "]"


def _cluster_id(device: Device) -> str:
    # "cluster_" is what makes Graphviz draw a box; "opencl:0" is not a bare DOT ID.
    return "cluster_" + re.sub(r"\W", "_", str(device))


def _colors(device: Device, spare: dict[str, tuple[str, str]]) -> tuple[str, str]:
    if device.type in _CLUSTER_COLORS:
        return _CLUSTER_COLORS[device.type], _NODE_COLORS[device.type]
    if device.type not in spare:
        spare[device.type] = _SPARE[len(spare) % len(_SPARE)]
    return spare[device.type]


def _tooltip(node: Node) -> str:
    parts = [f"{node.name}: {node}"]
    if node.attrs:
        parts.append("attrs: " + ", ".join(f"{k}={v!r}" for k, v in node.attrs.items()))
    if node.reason:
        parts.append(f"placed: {node.reason}")
    if node.line:
        parts.append(f"at {node.line}")
    return "\n".join(parts)


def _dot_node(graph: Graph, node: Node, key: str, fill: str) -> str:
    call = f"{node.name or node.op_name}({', '.join(_arg_text(a) for a in node.args)})"
    outs = [f"-> %{s}: {_shape_text(graph.specs.get(s))}" for s in node.outs]
    common = {"tooltip": _quote(_tooltip(node))}
    if node.kind == TRANSFER:
        src = graph.devices.get(node.args[0]) if node.args and type(node.args[0]) is int else None
        lines = ["copy", f"{src} -> {node.device}", node.name, *outs]
        # Copies are drawn apart from compute: a dashed, arrow-shaped orange node.
        return f"    {key} {_attrs(label=_label(*lines), shape='cds', margin=_quote('0.25,0.06'), style=_quote('filled,dashed'), fillcolor=_quote('#ffd8a8'), color=_quote('#d9480f'), **common)};"
    if node.kind == INPLACE:
        lines = [f"{node.op_name} (in place)", call, f"on {node.device}"]
        return f"    {key} {_attrs(label=_label(*lines), shape='box', style=_quote('filled,bold'), fillcolor=_quote('#ffe3e3'), color=_quote('#c92a2a'), **common)};"
    if node.kind == FUSED:
        members = getattr(node.op, "members", [])
        lines = [node.op_name, f"fuses {len(members)} ops: {', '.join(members)}", call, f"on {node.device}", *outs]
        return f"    {key} {_attrs(label=_label(*lines), shape='box3d', style='filled', fillcolor=_quote(fill), **common)};"
    lines = [node.op_name, call, f"on {node.device}", *outs]
    return f"    {key} {_attrs(label=_label(*lines), shape='box', style=_quote('rounded,filled'), fillcolor=_quote(fill), **common)};"


_SOURCE_SHAPES = {"input": "invhouse", "variable": "cylinder", "state": "cylinder", "constant": "note"}


def _output_paths(structure: Any, path: str, found: list[tuple[str, int]]) -> None:
    """Each returned slot with where it sits in the return value (``[0]``, ``['loss']``)."""
    if isinstance(structure, int):
        found.append((path, structure))
    elif isinstance(structure, dict):
        for k, v in structure.items():
            _output_paths(v, f"{path}[{k!r}]", found)
    elif isinstance(structure, (list, tuple)):
        for i, v in enumerate(structure):
            _output_paths(v, f"{path}[{i}]", found)


def to_dot(graph: Graph) -> str:
    """The graph as Graphviz DOT text (render with ``dot -Tsvg``).

    One cluster per device holds that device's nodes and values; copies are orange arrows, an
    in-place update has a bold red edge to the tensor it updates (and dotted edges to the nodes
    that must run after it), nodes that meet in a collective (the replicas' all-reduces) are
    joined by dashed blue lines, fused nodes list their members, and every edge is labelled with
    its slot, dtype and shape. Node tooltips (in SVG) say why each node runs where it does.
    """
    view = _view(graph)
    spare: dict[str, tuple[str, str]] = {}
    by_device: dict[Device, list[str]] = {}

    for src in view.sources:
        _, fill = _colors(src.device, spare)
        label = _label(src.name, f"%{src.slot}: {_shape_text(graph.specs.get(src.slot))}")
        by_device.setdefault(src.device, []).append(
            f"    {src.name} {_attrs(label=label, shape=_SOURCE_SHAPES[src.kind], style='filled', fillcolor=_quote(fill))};")
    for key, node in zip(view.node_keys, graph.nodes):
        _, fill = _colors(node.device, spare)
        by_device.setdefault(node.device, []).append(_dot_node(graph, node, key, fill))

    lines = [f"digraph {_quote(graph.name or 'graph')} {{",
             f"  label={_quote(f'tc.function {graph.name}')}; labelloc=t; fontname=Helvetica; newrank=true;",
             "  node [fontname=Helvetica, fontsize=10];",
             "  edge [fontname=Helvetica, fontsize=9];"]
    for device, body in by_device.items():
        cluster_fill, _ = _colors(device, spare)
        lines += [f"  subgraph {_cluster_id(device)} {{",
                  f"    label={_quote(str(device))}; style=\"rounded,filled\"; fillcolor={_quote(cluster_fill)}; color=\"#888888\";",
                  *body, "  }"]

    missing: set[int] = set()

    def tail(slot: int) -> str:
        if slot not in view.producer:  # no producer: a malformed graph; draw the slot anyway
            missing.add(slot)
            return f"slot_{slot}"
        return view.producer[slot][0]

    edges: list[str] = []
    for i, (key, node) in enumerate(zip(view.node_keys, graph.nodes)):
        for a in dict.fromkeys(a for a in node.args if type(a) is int):
            edges.append(f"  {tail(a)} -> {key} {_attrs(label=_quote(f'%{a}: {_shape_text(graph.specs.get(a))}'))};")
        for slot in _updated_slots(node):
            # constraint=false: the back edge shows what is written without bending the layout.
            edges.append(f"  {key} -> {tail(slot)} {_attrs(label=_quote(f'updates %{slot}'), color=_quote('#c92a2a'), fontcolor=_quote('#c92a2a'), style='bold', constraint='false')};")
        for j in view.after.get(i, ()):
            edges.append(f"  {view.node_keys[j]} -> {key} {_attrs(style='dotted', color=_quote('#c92a2a'), arrowhead='empty', tooltip=_quote('runs after this update'))};")
    for members in graph.collectives:  # nodes that exchange data at run time: a dashed blue line
        keys = [view.node_keys[i] for i in members]
        edges += [f"  {a} -> {b} {_attrs(dir='both', style='dashed', color=_quote('#1864ab'), constraint='false', tooltip=_quote('exchange data (collective)'))};"
                  for a, b in zip(keys, keys[1:])]
    outputs: list[tuple[str, int]] = []
    _output_paths(graph.outputs, "", outputs)
    for n, (path, slot) in enumerate(outputs):
        lines.append(f"  output_{n} {_attrs(label=_quote(f'output{path}' if path else 'output'), shape='house', style='filled', fillcolor=_quote('#f1f3f5'))};")
        edges.append(f"  {tail(slot)} -> output_{n} {_attrs(label=_quote(f'%{slot}: {_shape_text(graph.specs.get(slot))}'))};")
    lines += [f"  slot_{s} {_attrs(label=_quote(f'%{s} (no producer)'), shape='octagon', color='red')};" for s in sorted(missing)]
    return "\n".join(lines + edges + ["}"]) + "\n"


# --- TensorBoard --------------------------------------------------------------------------------

# NumPy dtype -> TensorFlow's DataType enum (types.proto). uint32/uint64 are DT_UINT32 = 22 and
# DT_UINT64 = 23 in TensorFlow; tensorboardX's copy of the enum stops at 20, but proto3 enums
# are open, so the numbers serialize and TensorBoard shows them.
_DT = {"float16": 19, "float32": 1, "float64": 2, "int8": 6, "int16": 5, "int32": 3, "int64": 9,
       "uint8": 4, "uint16": 17, "uint32": 22, "uint64": 23, "bool": 10, "complex64": 8, "complex128": 18}
_TB_OPS = {"input": "Placeholder", "variable": "VariableV2", "state": "VariableV2", "constant": "Const"}
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")
_ATTR_NAME = re.compile(r"^[a-z][a-z0-9_]+$")


def _tb_device(device: Device) -> str:
    """The NodeDef ``device`` string for a tensorcore device: ``/device:opencl:0``.

    TensorFlow's form, so TensorBoard's device list (which keeps names ending in
    ``device:<type>:<index>``) and its "color by device" legend pick it up."""
    return f"/device:{device.type}:{device.index}"


def _tb_scope(device: Device) -> str:
    """The name scope of a device's nodes, ``opencl_0`` (``:`` is not allowed in node names)."""
    return f"{device.type}_{device.index}"


def _tb_names(graph: Graph, view: _View) -> dict[str, str]:
    """A unique TensorBoard node name per source and node key: ``<device scope>/<name>``."""
    taken: set[str] = set()
    names: dict[str, str] = {}

    def claim(key: str, device: Device, base: str) -> None:
        stem = f"{_tb_scope(device)}/{_NAME_CHARS.sub('_', base).lstrip('_.-') or 'node'}"
        name, n = stem, 1
        while name in taken:  # e.g. two placer copies of one value (names repeat after an update)
            name, n = f"{stem}_{n}", n + 1
        taken.add(name)
        names[key] = name

    for src in view.sources:
        claim(src.name, src.device, src.name)
    for i, (key, node) in enumerate(zip(view.node_keys, graph.nodes)):
        claim(key, node.device, node.name or f"{node.op_name}_{i}")
    return names


def _attr_value(value: Any, attr_value_pb2: Any) -> Any:
    """An op attribute as an AttrValue: numbers, bools, strings and tuples of ints natively,
    anything else as its repr."""
    av = attr_value_pb2.AttrValue
    if isinstance(value, (bool, np.bool_)):
        return av(b=bool(value))
    if isinstance(value, (int, np.integer)) and -(2**63) <= int(value) < 2**63:
        return av(i=int(value))
    if isinstance(value, (float, np.floating)):
        return av(f=float(value))
    if isinstance(value, str):
        return av(s=value.encode())
    if isinstance(value, (tuple, list)) and value and all(type(v) is int for v in value):
        return av(list=av.ListValue(i=list(value)))
    return av(s=repr(value).encode())


def _graph_def(graph: Graph, pb: Any) -> Any:
    """The GraphDef of ``graph``; ``pb`` is a namespace of tensorboardX's proto modules."""
    av = pb.attr_value_pb2.AttrValue
    shape_proto = pb.tensor_shape_pb2.TensorShapeProto

    def shape_of(slot: int) -> Any:
        spec = graph.specs.get(slot)
        if spec is None or spec.shape is None:
            return shape_proto(unknown_rank=True)
        return shape_proto(dim=[shape_proto.Dim(size=-1 if d is None else int(d)) for d in spec.shape])

    def dtype_of(slot: int) -> int:
        spec = graph.specs.get(slot)
        return _DT.get(spec.dtype.name, 0) if spec is not None else 0

    def describe(slots: tuple[int, ...], attr: dict[str, Any], type_key: str) -> None:
        if not slots:  # an in-place update returns nothing
            return
        # _output_shapes is what TensorBoard reads to label edges with shapes.
        attr["_output_shapes"] = av(list=av.ListValue(shape=[shape_of(s) for s in slots]))
        if len(slots) == 1:
            attr[type_key] = av(type=dtype_of(slots[0]))
        else:
            attr[type_key] = av(list=av.ListValue(type=[dtype_of(s) for s in slots]))

    view = _view(graph)
    names = _tb_names(graph, view)

    def ref(slot: int) -> str:
        key, k = view.producer.get(slot, (None, 0))
        if key is None:
            raise ValueError(f"graph {graph.name!r}: slot %{slot} is read but nothing produces it")
        return names[key] if k == 0 else f"{names[key]}:{k}"

    node_defs = []
    for src in view.sources:
        attr: dict[str, Any] = {"slot": av(i=src.slot)}
        describe((src.slot,), attr, "dtype")
        node_defs.append(pb.node_def_pb2.NodeDef(name=names[src.name], op=_TB_OPS[src.kind],
                                                 device=_tb_device(src.device), attr=attr))
    for i, (key, node) in enumerate(zip(view.node_keys, graph.nodes)):
        attr = {}
        for k, v in node.attrs.items():  # the op's own attributes first; ours win a clash
            attr[k if _ATTR_NAME.match(k) else "attr_" + _NAME_CHARS.sub("_", k).lower()] = _attr_value(v, pb.attr_value_pb2)
        describe(node.outs, attr, "T")
        literals = [repr(a.value) for a in node.args if isinstance(a, Literal)]
        if literals:
            attr["literals"] = av(list=av.ListValue(s=[t.encode() for t in literals]))
        if node.reason:
            attr["placement"] = av(s=node.reason.encode())
        if node.line:
            attr["source"] = av(s=node.line.encode())
        if node.requested is not None:
            attr["requested_device"] = av(s=str(node.requested).encode())
        if node.kind == FUSED:
            attr["members"] = av(list=av.ListValue(s=[m.encode() for m in getattr(node.op, "members", [])]))
        if node.kind == TRANSFER and node.args and type(node.args[0]) is int:
            attr["from_device"] = av(s=str(graph.devices.get(node.args[0], "?")).encode())
            attr["to_device"] = av(s=str(node.device).encode())
        updated = _updated_slots(node)
        if updated:
            attr["updates"] = av(list=av.ListValue(s=[ref(s).encode() for s in updated]))
        inputs = [ref(a) for a in node.args if type(a) is int]
        # Control inputs ("^name") order a read after the in-place update it must see, as
        # TensorFlow's graphs do; TensorBoard draws them as dashed edges.
        inputs += ["^" + names[view.node_keys[j]] for j in view.after.get(i, ())]
        op = "transfer" if node.kind == TRANSFER else node.op_name
        node_defs.append(pb.node_def_pb2.NodeDef(name=names[key], op=op, input=inputs,
                                                 device=_tb_device(node.device), attr=attr))
    # The returned values, as TensorFlow graphs show fetches: an Identity per returned slot, in
    # an "outputs" scope of its own (they are not nodes of any device's partition).
    returned: list[tuple[str, int]] = []
    _output_paths(graph.outputs, "", returned)
    for n, (path, slot) in enumerate(returned):
        attr = {"path": av(s=(path or "output").encode()), "slot": av(i=slot)}
        describe((slot,), attr, "T")
        node_defs.append(pb.node_def_pb2.NodeDef(name=f"outputs/output_{n}", op="Identity", input=[ref(slot)],
                                                 device=_tb_device(graph.devices[slot]), attr=attr))
    # producer=22: the GraphDef version tensorboardX's own graph writers use.
    return pb.graph_pb2.GraphDef(node=node_defs, versions=pb.versions_pb2.VersionDef(producer=22))


class _Protos:
    """tensorboardX's bundled TensorFlow protos, imported on first use."""

    def __init__(self) -> None:
        try:
            from tensorboardX import FileWriter
            from tensorboardX.proto import (
                attr_value_pb2,
                event_pb2,
                graph_pb2,
                node_def_pb2,
                tensor_shape_pb2,
                versions_pb2,
            )
        except ImportError as e:
            raise ImportError(f"exporting a graph to TensorBoard needs tensorboardX: {INSTALL_HINT} ({e})") from e
        self.FileWriter = FileWriter
        self.attr_value_pb2, self.event_pb2, self.graph_pb2 = attr_value_pb2, event_pb2, graph_pb2
        self.node_def_pb2, self.tensor_shape_pb2, self.versions_pb2 = node_def_pb2, tensor_shape_pb2, versions_pb2


def to_graph_def(graph: Graph) -> Any:
    """The graph as a TensorFlow ``GraphDef`` message (tensorboardX's proto class), as
    :func:`to_tensorboard` writes it."""
    return _graph_def(graph, _Protos())


def to_tensorboard(graph: Graph, logdir: str | os.PathLike[str]) -> str:
    """Write ``graph`` to a new TensorBoard event file in ``logdir``; returns the file's path.

    Open with ``tensorboard --logdir <logdir>``, Graphs tab. Nodes are named
    ``<device>/<node>`` (``opencl_0/matmul_1``), so each device's partition is a box to expand;
    "Color: Device" colors them by their ``device`` field and edges show ``_output_shapes``.
    TensorBoard shows one graph per run (directory): give each graph its own ``logdir``.
    Needs tensorboardX: ``pip install 'tensorcore[tensorboard]'``.
    """
    pb = _Protos()
    graph_def = _graph_def(graph, pb)
    logdir = os.fspath(logdir)
    # tensorboardX names event files by the second and the host, so two graphs written in the
    # same second would share (and overwrite) a file; a unique suffix keeps them apart and lets
    # us find the file without reaching into the writer's internals.
    suffix = f".tensorcore-{uuid.uuid4().hex[:12]}"
    writer = pb.FileWriter(logdir, filename_suffix=suffix)
    try:
        writer.add_event(pb.event_pb2.Event(graph_def=graph_def.SerializeToString()))
    finally:
        writer.close()  # drains the writer's queue and thread, then closes the file
    written = [f for f in os.listdir(logdir) if f.endswith(suffix)]
    if len(written) != 1:
        raise RuntimeError(f"to_tensorboard: expected one event file ending in {suffix} in {logdir}, found {written}")
    return os.path.join(logdir, written[0])
