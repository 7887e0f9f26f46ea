"""Exporting graphs: Graphviz DOT text (parsed back with pydot) and TensorBoard event files
(read back record by record, checksums included, and with TensorBoard's own reader when it
is installed)."""

from __future__ import annotations

import os
import re
import struct
import sys

import numpy as np
import pytest
from conftest import DEVICES

import tensorcore as tc
from tensorcore.graph.export import to_dot, to_graph_def, to_tensorboard
from tensorcore.graph.ir import FUSED, INPLACE, TRANSFER, Graph

pydot = pytest.importorskip("pydot", reason="pydot is not installed (pip install 'tensorcore[test]')")
# pydot 4 builds its parser with pyparsing's old camelCase names, which pyparsing 3.3 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:'\\w+' deprecated - use:DeprecationWarning")

needs_opencl = pytest.mark.skipif("opencl:0" not in DEVICES,  # the device matrix: TENSORCORE_TEST_DEVICES narrows it
                                  reason="no opencl:0 device here (no OpenCL driver): the cross-device "
                                         "export (device clusters, copy nodes) was not tested")


def _cpu_graph() -> Graph:
    """matmul, a fused relu*2+c, an in-place update of a Variable and a read after it (cpu)."""
    v = tc.Variable(np.zeros((4, 5), np.float32))
    c = tc.asarray(np.full((5,), 3.0, np.float32))

    @tc.function
    def f(x, w):
        y = tc.nn.functional.relu(x @ w) * 2.0 + c
        v.assign_add(y)
        return y, tc.sum(v)

    x, w = tc.ones((4, 3)), tc.ones((3, 5))
    return f.graph(x, w)


def _cross_device_graph() -> Graph:
    """Inputs on opencl:0; one op asked for on cpu, so the placer adds a copy to cpu."""

    @tc.function
    def f(x, w):
        y = x @ w
        with tc.device("cpu"):
            z = tc.tanh(y)
        return z, y * 2.0

    x = tc.asarray(np.ones((4, 3), np.float32), device="opencl:0")
    w = tc.asarray(np.ones((3, 5), np.float32), device="opencl:0")
    return f.graph(x, w)


def _parse(text: str) -> pydot.Dot:
    graphs = pydot.graph_from_dot_data(text)
    assert graphs is not None and len(graphs) == 1, "the DOT text did not parse"
    return graphs[0]


def _unquote(value: str) -> str:
    """A DOT attribute as written (quoted, escaped) -> its text; ``\\n`` stays a line break marker."""
    assert value.startswith('"') and value.endswith('"'), value
    return re.sub(r'\\(["\\])', r"\1", value[1:-1])


def _nodes(dot: pydot.Dot | pydot.Subgraph) -> dict[str, pydot.Node]:
    return {n.get_name(): n for n in dot.get_nodes() if n.get_name() not in ("node", "edge", "graph")}


def _all_nodes(dot: pydot.Dot) -> dict[str, pydot.Node]:
    found = _nodes(dot)
    for sub in dot.get_subgraphs():
        found.update(_nodes(sub))
    return found


# --- DOT --------------------------------------------------------------------------------------------


def test_dot_has_a_node_per_graph_node_and_value_with_shapes_members_and_updates() -> None:
    graph = _cpu_graph()
    kinds = [n.kind for n in graph.nodes]
    assert FUSED in kinds and INPLACE in kinds  # what this test is about
    dot = _parse(to_dot(graph))
    assert [s.get_name() for s in dot.get_subgraphs()] == ["cluster_cpu_0"]
    nodes = _all_nodes(dot)
    sources = {f"input_{i}" for i in range(len(graph.inputs))}
    sources |= {f"variable_{s}" for s in graph.variables} | {f"constant_{s}" for s in graph.constants}
    outputs = {"output[0]", "output[1]"}
    labels = {name: _unquote(n.get("label")) for name, n in nodes.items()}
    assert sources <= set(labels)
    assert {labels["output_0"], labels["output_1"]} == outputs
    assert len(nodes) == len(graph.nodes) + len(sources) + len(outputs)  # nothing else, nothing missing
    # every graph node appears once, with its op, device and output shape
    for i, node in enumerate(graph.nodes):
        lines = labels[f"n{i}"].split("\\n")
        assert lines[0].startswith(node.op_name)
        assert f"on {node.device}" in lines
        for slot in node.outs:
            assert f"-> %{slot}: float32[{', '.join(map(str, graph.specs[slot].shape))}]" in lines
    fused = next(i for i, n in enumerate(graph.nodes) if n.kind == FUSED)
    assert "fuses 3 ops: relu_2, multiply_3, add_4" in labels[f"n{fused}"]
    assert nodes[f"n{fused}"].get("shape") == "box3d"
    # edges: labelled with the slot's dtype and shape; the update points back at the Variable
    edges = [(e.get_source(), e.get_destination(), e.get_attributes()) for e in dot.get_edges()]
    (var_slot,) = graph.variables
    update = next(i for i, n in enumerate(graph.nodes) if n.kind == INPLACE)
    back = [a for s, d, a in edges if (s, d) == (f"n{update}", f"variable_{var_slot}")]
    assert len(back) == 1 and _unquote(back[0]["label"]) == f"updates %{var_slot}" and back[0]["constraint"] == "false"
    total = next(i for i, n in enumerate(graph.nodes) if n.op_name == "sum")
    assert (f"n{update}", f"n{total}") in {(s, d) for s, d, a in edges if a.get("style") == "dotted"}  # runs after it
    data = [(s, d, _unquote(a["label"])) for s, d, a in edges if "label" in a and not a.get("constraint")]
    matmul = next(i for i, n in enumerate(graph.nodes) if n.op_name == "matmul")
    assert ("input_0", f"n{matmul}", "%0: float32[4, 3]") in data
    assert (f"variable_{var_slot}", f"n{total}", f"%{var_slot}: float32[4, 5]") in data
    # one data edge per distinct slot a node reads, plus one per returned value
    assert len(data) == sum(len(set(n.slots())) for n in graph.nodes) + 2


def test_dot_escapes_quotes_backslashes_and_newlines() -> None:
    graph = _cpu_graph()
    graph = graph.copy()
    graph.name = 'we"ird \\ name\\'  # a quote, a backslash and a trailing backslash
    graph.nodes[0].name = 'say "hi"\nC:\\temp\\'
    text = to_dot(graph)
    dot = _parse(text)
    assert _unquote(dot.get_name()) == graph.name
    nodes = _all_nodes(dot)
    assert len(nodes) == len(graph.nodes) + len(graph.inputs) + len(graph.variables) + len(graph.constants) + 2
    label = _unquote(nodes["n0"].get("label"))
    assert 'say "hi"\\nC:\\temp\\(%0, %1)' in label  # the newline became DOT's \n; the rest is verbatim


def test_optimizer_state_updated_in_place_is_drawn_as_state_with_update_edges() -> None:
    tc.random.seed(0)
    model = tc.nn.Linear(4, 2)
    opt = tc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    @tc.function
    def step(x):
        with tc.GradientTape() as tape:
            loss = tc.sum(model(x) ** 2.0)
        opt.step(tape.gradient(loss, model.parameters()))
        return loss

    graph = step.graph(tc.ones((3, 4)))
    updates = [(i, n) for i, n in enumerate(graph.nodes) if n.kind == INPLACE]
    assert [n.op_name for _, n in updates] == ["sgd_step", "sgd_step"]
    dot = _parse(to_dot(graph))
    nodes = _all_nodes(dot)
    back = {(e.get_source(), e.get_destination()) for e in dot.get_edges() if e.get("constraint") == "false"}
    for i, node in updates:
        param, momentum = node.args[0], node.args[2]  # sgd_step writes its parameter and its momentum
        assert param in graph.variables and momentum in graph.constants
        assert nodes[f"state_{momentum}"].get("shape") == "cylinder"
        assert {(f"n{i}", f"variable_{param}"), (f"n{i}", f"state_{momentum}")} <= back
    by_name = _check_graph_def(to_graph_def(graph), graph)
    for k, (_, node) in enumerate(updates):
        nd = by_name[f"cpu_0/{node.name}"]
        # the first update of the step also advances the optimizer's step counter (its 5th argument)
        counter = [f"cpu_0/state_{node.args[4]}".encode()] if k == 0 else []
        assert list(nd.attr["updates"].list.s) == [f"cpu_0/variable_{node.args[0]}".encode(),
                                                   f"cpu_0/state_{node.args[2]}".encode()] + counter
        assert by_name[f"cpu_0/state_{node.args[2]}"].op == "VariableV2"


@needs_opencl
def test_dot_of_a_cross_device_graph_clusters_devices_and_draws_the_copy() -> None:
    graph = _cross_device_graph()
    copies = [i for i, n in enumerate(graph.nodes) if n.kind == TRANSFER]
    assert len(copies) == 1
    text = to_dot(graph)
    dot = _parse(text)
    clusters = {s.get_name(): s for s in dot.get_subgraphs()}
    assert set(clusters) == {"cluster_opencl_0", "cluster_cpu_0"}
    assert _unquote(clusters["cluster_cpu_0"].get("label")) == "cpu:0"
    cpu_nodes = _nodes(clusters["cluster_cpu_0"])
    ocl_nodes = _nodes(clusters["cluster_opencl_0"])
    for i, node in enumerate(graph.nodes):
        assert f"n{i}" in (cpu_nodes if node.device == "cpu:0" else ocl_nodes)
    assert {"input_0", "input_1"} <= set(ocl_nodes)
    copy = cpu_nodes[f"n{copies[0]}"]  # a copy belongs to the partition it copies into
    assert copy.get("shape") == "cds" and "dashed" in copy.get("style")
    assert _unquote(copy.get("label")).split("\\n")[:2] == ["copy", "opencl:0 -> cpu:0"]
    tanh = next(i for i, n in enumerate(graph.nodes) if n.op_name == "tanh")
    assert "on cpu:0" in _unquote(cpu_nodes[f"n{tanh}"].get("label")).split("\\n")
    edges = {(e.get_source(), e.get_destination()): _unquote(e.get("label")) for e in dot.get_edges()}
    matmul = next(i for i, n in enumerate(graph.nodes) if n.op_name == "matmul")
    assert edges[f"n{matmul}", f"n{copies[0]}"] == f"%{graph.nodes[matmul].outs[0]}: float32[4, 5]"
    assert edges[f"n{copies[0]}", f"n{tanh}"] == f"%{graph.nodes[copies[0]].outs[0]}: float32[4, 5]"
    assert "float32[4, 3]" in text and "float32[3, 5]" in text


# --- TensorBoard -----------------------------------------------------------------------------------


def _crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), bit by bit: written here so the check does not trust the writer's."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _read_events(path: str) -> list:
    """The Event messages of a TFRecord file: length, masked CRC of the length, data, masked CRC."""
    from tensorboardX.proto import event_pb2

    events = []
    with open(path, "rb") as f:
        blob = f.read()
    pos = 0
    while pos < len(blob):
        header = blob[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", blob[pos + 8:pos + 12])
        data = blob[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack("<I", blob[pos + 12 + length:pos + 16 + length])
        assert header_crc == _masked(header) and data_crc == _masked(data) and len(data) == length
        events.append(event_pb2.Event.FromString(data))
        pos += 16 + length
    return events


def test_crc32c_matches_the_standard_check_value() -> None:
    assert _crc32c(b"123456789") == 0xE3069283


def _graph_def_from_file(path: str):
    from tensorboardX.proto import graph_pb2

    events = _read_events(path)
    assert events[0].file_version == "brain.Event:2"
    graphs = [e for e in events if e.WhichOneof("what") == "graph_def"]
    assert len(graphs) == 1
    return graph_pb2.GraphDef.FromString(graphs[0].graph_def)


def _check_graph_def(graph_def, graph: Graph) -> dict:
    """Every graph node is a NodeDef, in order, under its device's scope, with its device and
    its inputs (each read slot named by its producer); returns NodeDefs by name."""
    by_name = {n.name: n for n in graph_def.node}
    assert len(by_name) == len(graph_def.node), "node names must be unique"
    sources = len(graph.inputs) + len(graph.variables) + len(graph.constants)
    producer: dict[int, str] = {}
    mutated = graph.mutated_slots()
    for nd, slot in zip(graph_def.node[:len(graph.inputs)], graph.inputs):
        assert nd.op == "Placeholder" and nd.attr["slot"].i == slot
        producer[slot] = nd.name
    for nd in graph_def.node[len(graph.inputs):sources]:
        assert nd.op in ("VariableV2", "Const")
        slot = nd.attr["slot"].i
        # a Variable, or state updated in place (e.g. optimizer moments), or a constant
        assert slot in graph.variables or (slot in graph.constants and (nd.op == "Const") != (slot in mutated))
        producer[nd.attr["slot"].i] = nd.name
    for nd in graph_def.node[:sources]:
        dev = graph.devices[nd.attr["slot"].i]
        assert nd.device == f"/device:{dev.type}:{dev.index}" and nd.name.startswith(f"{dev.type}_{dev.index}/")
    nodes = graph_def.node[sources:sources + len(graph.nodes)]
    for nd, node in zip(nodes, graph.nodes):
        scope = f"{node.device.type}_{node.device.index}"
        assert nd.name.startswith(f"{scope}/{re.sub(r'[^A-Za-z0-9_.-]', '_', node.name)}")  # + "_1" if repeated
        assert nd.device == f"/device:{node.device.type}:{node.device.index}"
        assert nd.op == node.op_name
        data_inputs = [i for i in nd.input if not i.startswith("^")]
        assert data_inputs == [producer[a] for a in node.args if type(a) is int]
        for k, slot in enumerate(node.outs):
            producer[slot] = nd.name if k == 0 else f"{nd.name}:{k}"
            shape = nd.attr["_output_shapes"].list.shape[k]
            assert [d.size for d in shape.dim] == list(graph.specs[slot].shape)
    outputs = graph_def.node[sources + len(graph.nodes):]
    assert all(nd.op == "Identity" and nd.name.startswith("outputs/") for nd in outputs)
    assert [nd.input[0] for nd in outputs] == [producer[s] for s in _returned(graph.outputs)]
    return by_name


def _returned(structure) -> list[int]:
    if isinstance(structure, int):
        return [structure]
    if isinstance(structure, (list, tuple)):
        return [s for v in structure for s in _returned(v)]
    return []


def test_tensorboard_event_file_holds_the_graph(tmp_path) -> None:
    pytest.importorskip("tensorboardX", reason="tensorboardX is not installed (pip install 'tensorcore[tensorboard]')")
    graph = _cpu_graph()
    path = to_tensorboard(graph, tmp_path / "run")
    assert os.path.isfile(path) and os.path.dirname(path) == str(tmp_path / "run")
    assert "tfevents" in os.path.basename(path)  # what TensorBoard looks for in a run directory
    graph_def = _graph_def_from_file(path)
    assert graph_def == to_graph_def(graph)
    by_name = _check_graph_def(graph_def, graph)
    fused = by_name[f"cpu_0/{next(n.name for n in graph.nodes if n.kind == FUSED)}"]
    assert list(fused.attr["members"].list.s) == [b"relu_2", b"multiply_3", b"add_4"]
    assert fused.attr["T"].type == 1  # DT_FLOAT
    update = by_name[f"cpu_0/{next(n.name for n in graph.nodes if n.kind == INPLACE)}"]
    (var_slot,) = graph.variables
    assert list(update.attr["updates"].list.s) == [f"cpu_0/variable_{var_slot}".encode()]
    total = by_name[f"cpu_0/{next(n.name for n in graph.nodes if n.op_name == 'sum')}"]
    assert list(total.input) == [f"cpu_0/variable_{var_slot}", "^" + update.name]  # reads after the update
    assert list(total.attr["axis"].list.i) == [0, 1] and len(total.attr["_output_shapes"].list.shape[0].dim) == 0
    # a second graph in the same logdir (same second) gets its own file
    assert to_tensorboard(graph, tmp_path / "run") != path
    assert len(os.listdir(tmp_path / "run")) == 2


@needs_opencl
def test_tensorboard_names_and_devices_of_a_cross_device_graph(tmp_path) -> None:
    pytest.importorskip("tensorboardX", reason="tensorboardX is not installed (pip install 'tensorcore[tensorboard]')")
    graph = _cross_device_graph()
    by_name = _check_graph_def(_graph_def_from_file(to_tensorboard(graph, tmp_path)), graph)
    scopes = {name.split("/")[0] for name in by_name}
    assert scopes == {"opencl_0", "cpu_0", "outputs"}
    (copy,) = [nd for nd in by_name.values() if nd.op == "transfer"]
    assert copy.name.startswith("cpu_0/") and copy.device == "/device:cpu:0"
    assert copy.attr["from_device"].s == b"opencl:0" and copy.attr["to_device"].s == b"cpu:0"
    (matmul,) = [nd for nd in by_name.values() if nd.op == "matmul"]
    assert list(copy.input) == [matmul.name] and matmul.name.startswith("opencl_0/")
    (tanh,) = [nd for nd in by_name.values() if nd.op == "tanh"]
    assert list(tanh.input) == [copy.name] and tanh.attr["requested_device"].s == b"cpu:0"


def test_tensorboard_names_each_output_of_a_multi_output_op() -> None:
    pytest.importorskip("tensorboardX", reason="tensorboardX is not installed (pip install 'tensorcore[tensorboard]')")

    @tc.function
    def f(x):
        q, r = tc.linalg.qr(x)
        return q * 2.0, r

    graph = f.graph(tc.asarray(np.eye(3) + 1.0))
    by_name = _check_graph_def(to_graph_def(graph), graph)
    assert by_name["outputs/output_1"].input[0] == "cpu_0/linalg.qr_1:1"
    assert [len(s.dim) for s in by_name["cpu_0/linalg.qr_1"].attr["_output_shapes"].list.shape] == [2, 2]


def test_tensorboard_reads_the_event_file(tmp_path) -> None:
    pytest.importorskip("tensorboardX", reason="tensorboardX is not installed (pip install 'tensorcore[tensorboard]')")
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="tensorboard is not installed: the file was checked record by record, not with TensorBoard's reader")
    graph = _cpu_graph()
    to_tensorboard(graph, tmp_path)
    events = accumulator.EventAccumulator(str(tmp_path))
    events.Reload()
    assert events.Tags()["graph"]
    nodes = {n.name: n for n in events.Graph().node}
    assert {n.name for n in to_graph_def(graph).node} == set(nodes)
    assert all(n.device == "/device:cpu:0" for n in nodes.values())


def test_to_tensorboard_without_tensorboardx_says_how_to_install_it(tmp_path, monkeypatch) -> None:
    graph = _cpu_graph()
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'tensorcore\[tensorboard\]'"):
        to_tensorboard(graph, tmp_path)
    assert not os.listdir(tmp_path)
    assert "cluster_cpu_0" in to_dot(graph)  # DOT needs no extra package
