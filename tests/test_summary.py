"""tc.summary: event files written through tensorboardX, read back with TensorBoard's own readers.

Two readers check every file: the legacy ``event_accumulator`` (``Scalars``, ``Histograms``,
``Tensors``, ``Graph``: what most scripts use) and ``plugin_event_accumulator``, the path
TensorBoard 2's server loads runs through (legacy values migrated to tensors by plugin).
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import summary
from tensorcore.distribute.values import PerReplica
from tensorcore.graph.export import to_graph_def

ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                         reason="tensorboard is not installed (pip install 'tensorcore[test]')")
from tensorboard.backend.event_processing import event_file_loader  # noqa: E402
from tensorboard.backend.event_processing import plugin_event_accumulator as pea  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEEP_ALL = {ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.COMPRESSED_HISTOGRAMS: 0, ea.TENSORS: 0, ea.IMAGES: 0, ea.AUDIO: 0}


def read(path) -> ea.EventAccumulator:
    """TensorBoard's legacy accumulator over a run directory or one event file, keeping everything."""
    acc = ea.EventAccumulator(str(path), size_guidance=KEEP_ALL)
    acc.Reload()
    return acc


def read_v2(path) -> pea.EventAccumulator:
    """TensorBoard 2's accumulator (the server's): every summary as a tensor, by plugin."""
    acc = pea.EventAccumulator(str(path), size_guidance={ea.TENSORS: 0})
    acc.Reload()
    return acc


def scalars(path, tag: str) -> list[tuple[int, float]]:
    acc = read(path)
    return [(e.step, e.value) for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


@pytest.fixture(autouse=True)
def _no_default_writer():
    """Each test starts and ends with no default writer, step or condition in this thread."""
    summary._state.writer = summary._state.step = None
    summary._state.condition = True
    yield
    summary._state.writer = summary._state.step = None
    summary._state.condition = True


# --- the data: every device, every kind -----------------------------------------------------


def test_scalars_of_every_kind_on_every_device(tmp_path, device) -> None:
    writer = summary.create_file_writer(tmp_path)
    values = [
        tc.asarray(np.float32(1.25), device=device),
        tc.asarray(np.int64(7), device=device),
        tc.asarray(np.bool_(True), device=device),
        tc.sum(tc.asarray(np.arange(4, dtype=np.float32), device=device)),  # a computed result
        3, 2.5, False, np.float64(-0.5), np.int32(9), np.array(4.75, np.float32),
    ]
    with writer.as_default():
        assert [summary.scalar("v", v, step=i) for i, v in enumerate(values)] == [True] * len(values)
    writer.close()
    expected = [1.25, 7.0, 1.0, 6.0, 3.0, 2.5, 0.0, -0.5, 9.0, 4.75]
    assert scalars(writer.path, "v") == list(enumerate(expected))
    # TensorBoard 2's data path: the scalars plugin, float32 tensors with the same steps
    v2 = read_v2(tmp_path)
    assert list(v2.PluginTagToContent("scalars")) == ["v"]
    assert [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in v2.Tensors("v")] == list(enumerate(expected))


def test_histogram_on_every_device(tmp_path, device) -> None:
    data = np.random.default_rng(0).standard_normal((50, 40)).astype(np.float32)
    writer = summary.create_file_writer(tmp_path)
    with writer.as_default(step=3):
        assert summary.histogram("w", tc.asarray(data, device=device), buckets=12, description="weights")
        assert summary.histogram("ints", tc.asarray(np.array([1, 1, 2, 5], np.int32), device=device), step=4)
    writer.close()
    h = read(tmp_path).Histograms("w")[0]
    assert h.step == 3
    x = data.astype(np.float64).ravel()
    counts, edges = np.histogram(x, bins=12, range=(x.min(), x.max()))
    hv = h.histogram_value
    assert (hv.num, hv.min, hv.max) == (2000, x.min(), x.max())
    assert hv.bucket == counts.tolist() and np.allclose(hv.bucket_limit, edges[1:])
    assert np.isclose(hv.sum, x.sum()) and np.isclose(hv.sum_squares, (x * x).sum())
    v2 = read_v2(tmp_path)
    assert sorted(v2.PluginTagToContent("histograms")) == ["ints", "w"]
    assert v2.SummaryMetadata("w").summary_description == "weights"
    buckets = tensor_util.make_ndarray(v2.Tensors("w")[0].tensor_proto)  # [left, right, count] rows
    assert buckets[:, 2].sum() == 2000 and np.isclose(buckets[0, 0], x.min()) and np.isclose(buckets[-1, 1], x.max())
    ints = read(tmp_path).Histograms("ints")[0]
    assert ints.step == 4 and ints.histogram_value.num == 4 and sum(ints.histogram_value.bucket) == 4


def test_histogram_of_host_data_and_edge_cases(tmp_path) -> None:
    writer = summary.create_file_writer(tmp_path)
    with writer.as_default(step=0):
        assert summary.histogram("list", [0.0, 1.0, 1.0, 3.0], buckets=3)
        assert summary.histogram("number", 2.5)
        assert summary.histogram("constant", np.full(6, 4.0))
        assert summary.histogram("empty", np.zeros((0,), np.float32))
        assert summary.histogram("bools", np.array([True, False, True]))
        assert summary.histogram("ulps", np.array([1.0, np.nextafter(1.0, 2.0), 1.0]))  # np.histogram refuses these
    writer.close()
    acc = read(tmp_path)
    h = {tag: acc.Histograms(tag)[0].histogram_value for tag in acc.Tags()["histograms"]}
    assert h["list"].bucket == [1.0, 2.0, 1.0] and h["list"].bucket_limit == [1.0, 2.0, 3.0]
    assert (h["number"].num, h["number"].min, h["number"].max) == (1, 2.5, 2.5)
    assert h["constant"].bucket == [6.0] and h["constant"].bucket_limit == [4.0]
    assert h["empty"].num == 0 and sum(h["empty"].bucket) == 0
    assert h["bools"].num == 3 and h["bools"].sum == 2
    assert sum(h["ulps"].bucket) == 3 and h["ulps"].bucket_limit[-1] == np.nextafter(1.0, 2.0)
    v2 = read_v2(tmp_path)  # TensorBoard 2 loads the edge cases too
    assert tensor_util.make_ndarray(v2.Tensors("empty")[0].tensor_proto).shape == (0, 3)
    assert tensor_util.make_ndarray(v2.Tensors("constant")[0].tensor_proto).tolist() == [[4.0, 4.0, 6.0]]


def test_text(tmp_path) -> None:
    writer = summary.create_file_writer(tmp_path)
    with writer.as_default(step=2):
        assert summary.text("note", "loss **fell**: ünïcode", description="a note")
        assert summary.text("table", [["a", "b"], ["c", "d"]])
        assert summary.text("array", np.array(["x", "y", "z"]))
        assert summary.text("bytes", b"raw")
    writer.close()
    acc = read(tmp_path)
    note = acc.Tensors("note")[0]
    assert note.step == 2 and tensor_util.make_ndarray(note.tensor_proto).item().decode() == "loss **fell**: ünïcode"
    assert tensor_util.make_ndarray(acc.Tensors("table")[0].tensor_proto).tolist() == [[b"a", b"b"], [b"c", b"d"]]
    assert tensor_util.make_ndarray(acc.Tensors("array")[0].tensor_proto).tolist() == [b"x", b"y", b"z"]
    assert tensor_util.make_ndarray(acc.Tensors("bytes")[0].tensor_proto).item() == b"raw"
    v2 = read_v2(tmp_path)
    assert sorted(v2.PluginTagToContent("text")) == ["array", "bytes", "note", "table"]
    assert v2.SummaryMetadata("note").summary_description == "a note"


def test_graph_of_a_function_on_every_device(tmp_path, device) -> None:
    @tc.function
    def f(x, w):
        return tc.tanh(x @ w) * 2.0

    x = tc.asarray(np.ones((4, 3), np.float32), device=device)
    w = tc.asarray(np.ones((3, 5), np.float32), device=device)
    dev = tc.Device(device)
    for k, data in enumerate([(f, x, w), (f.graph(x, w),), (to_graph_def(f.graph(x, w)),)]):
        writer = summary.create_file_writer(tmp_path / str(k))
        with writer.as_default():  # no step needed: a run's graph is written at step 0
            assert summary.graph(*data)
        writer.close()
        graph_def = read(tmp_path / str(k)).Graph()
        ops = {n.op for n in graph_def.node}
        assert "matmul" in ops and "Placeholder" in ops
        assert f"/device:{dev.type}:{dev.index}" in {n.device for n in graph_def.node}
        assert read_v2(tmp_path / str(k)).Graph().node  # and TensorBoard 2's reader finds it
        events = list(event_file_loader.EventFileLoader(writer.path).Load())  # the raw records
        assert [e.step for e in events if e.HasField("graph_def")] == [0]


# --- writers, steps, recording --------------------------------------------------------------


def test_no_default_writer_writes_nothing_and_returns_false(tmp_path) -> None:
    assert summary.scalar("x", 1.0) is False  # no step needed either: nothing is written
    assert summary.histogram("x", [1.0]) is False
    assert summary.text("x", "t") is False
    assert summary.graph(tc.function(lambda x: x + 1), tc.asarray(np.ones(2, np.float32))) is False
    assert summary.should_record_summaries() is False and summary.flush() is False
    writer = summary.create_file_writer(tmp_path)
    assert summary.scalar("x", 1.0, step=0) is False  # created, but not the default
    writer.close()
    assert read(writer.path).Tags()["scalars"] == []


def test_step_defaults(tmp_path) -> None:
    writer = summary.create_file_writer(tmp_path)
    with writer.as_default():
        with pytest.raises(ValueError, match=r"scalar\('x'\): no step: pass step=, or .*set_step"):
            summary.scalar("x", 1.0)
        summary.set_step(5)
        assert summary.get_step() == 5
        summary.scalar("x", 1.0)
        with writer.as_default(step=7):
            assert summary.get_step() == 7
            summary.scalar("x", 2.0)
            summary.scalar("x", 3.0, step=8)  # an explicit step wins
        assert summary.get_step() == 5  # as_default gave back the outer step
        counter = tc.Variable(np.int64(10), trainable=False)
        summary.set_step(counter)  # read at each write
        summary.scalar("x", 4.0)
        counter.assign(np.int64(11))
        summary.scalar("x", 5.0)
        summary.set_step(None)
        assert summary.get_step() is None
    writer.close()
    assert scalars(tmp_path, "x") == [(5, 1.0), (7, 2.0), (8, 3.0), (10, 4.0), (11, 5.0)]


def test_record_if(tmp_path) -> None:
    writer = summary.create_file_writer(tmp_path)
    step = 0
    with writer.as_default():
        with summary.record_if(lambda: step % 3 == 0):  # called at each write
            written = []
            for step in range(7):
                written.append(summary.scalar("every3", float(step), step=step))
            with summary.record_if(False):  # the innermost decides
                assert summary.scalar("never", 1.0, step=0) is False
                assert not summary.should_record_summaries()
            with summary.record_if(tc.asarray(np.bool_(True))):
                assert summary.scalar("tensor_condition", 1.0, step=0)
        with summary.record_if(False):
            assert summary.histogram("never", [1.0], step=0) is False and summary.text("never", "t", step=0) is False
            assert summary.graph(tc.function(lambda x: x), tc.asarray(np.ones(1, np.float32))) is False
        assert summary.should_record_summaries()
    writer.close()
    assert written == [True, False, False, True, False, False, True]
    acc = read(tmp_path)
    assert [e.step for e in acc.Scalars("every3")] == [0, 3, 6]
    assert acc.Tags()["scalars"] == ["every3", "tensor_condition"] and not acc.Tags()["graph"]


def test_flush_policy_and_flush_on_close(tmp_path) -> None:
    writer = summary.create_file_writer(tmp_path / "q", max_queue=100, flush_millis=10**9)
    with writer.as_default(step=0):
        for i in range(5):
            summary.scalar("x", float(i), step=i)
        assert scalars(writer.path, "x") == []  # still queued
        assert summary.flush()
        assert len(scalars(writer.path, "x")) == 5
        summary.scalar("x", 5.0, step=5)
        writer.close()  # closing inside the block: exiting it (which flushes) must not fail
    assert len(scalars(writer.path, "x")) == 6
    writer.close()  # twice: harmless
    writer.flush()

    small = summary.create_file_writer(tmp_path / "small", max_queue=2, flush_millis=10**9)
    with small.as_default():
        for i in range(3):
            summary.scalar("x", float(i), step=i)
        assert len(scalars(small.path, "x")) == 3  # the queue grew past max_queue: written out
        summary.scalar("x", 3.0, step=3)
        assert len(scalars(small.path, "x")) == 3
    assert len(scalars(small.path, "x")) == 4  # as_default flushes when the block ends
    small.close()

    eager = summary.create_file_writer(tmp_path / "eager", flush_millis=0)
    with eager.as_default():
        summary.scalar("x", 1.0, step=0)
        assert scalars(eager.path, "x") == [(0, 1.0)]
    eager.close()


def test_a_dropped_writer_is_flushed_and_closed(tmp_path) -> None:
    writer = summary.create_file_writer(tmp_path, max_queue=100, flush_millis=10**9)
    writer.set_as_default(step=1)
    summary.scalar("x", 1.0)
    path = writer.path
    summary.create_noop_writer().set_as_default()
    del writer
    gc.collect()
    assert scalars(path, "x") == [(1, 1.0)]


def test_writing_after_close_is_an_error(tmp_path) -> None:
    writer = summary.create_file_writer(tmp_path)
    with writer.as_default(step=0):
        writer.close()
        assert writer.closed
        with pytest.raises(RuntimeError, match="is closed; create another"):
            summary.scalar("x", 1.0)
        with pytest.raises(RuntimeError, match="is closed"):
            summary.text("x", "t")
    with pytest.raises(RuntimeError, match="is closed"):
        with writer.as_default():
            pass
    noop = summary.create_noop_writer()
    noop.close()
    with pytest.raises(RuntimeError, match="is closed"):
        noop.set_as_default()


def test_writers_in_one_directory_get_their_own_files(tmp_path) -> None:
    writers = [summary.create_file_writer(tmp_path, filename_suffix=".mine") for _ in range(3)]
    for i, writer in enumerate(writers):
        with writer.as_default(step=i):
            summary.scalar("x", float(i))
        writer.close()
    paths = {w.path for w in writers}
    assert len(paths) == 3 and all(p.endswith(".mine") and os.path.dirname(p) == str(tmp_path) for p in paths)
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in paths)
    assert sorted(scalars(tmp_path, "x")) == [(0, 0.0), (1, 1.0), (2, 2.0)]  # TensorBoard reads the run's files


def test_noop_writer(tmp_path) -> None:
    writer = summary.create_file_writer(tmp_path)
    with writer.as_default(step=0):
        assert summary.scalar("x", 1.0)
        with summary.create_noop_writer().as_default():
            assert summary.scalar("x", 2.0) is False
            assert summary.histogram("h", [1.0]) is False
            assert not summary.should_record_summaries()
            # bad input is refused as with a file writer (so every MPI rank fails alike)
            with pytest.raises(ValueError, match="single number"):
                summary.scalar("x", np.ones((2, 2)))
    writer.close()
    assert scalars(tmp_path, "x") == [(0, 1.0)]


def test_default_writer_is_per_thread_and_a_shared_writer_is_thread_safe(tmp_path) -> None:
    writer = summary.create_file_writer(tmp_path, max_queue=3)
    writer.set_as_default(step=0)
    seen: dict[str, object] = {}

    def other() -> None:  # a new thread has no default writer or step
        seen["writer"], seen["step"], seen["wrote"] = summary._state.writer, summary.get_step(), summary.scalar("x", 1.0)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == {"writer": None, "step": None, "wrote": False}

    errors: list[BaseException] = []

    def log(k: int) -> None:
        try:
            with writer.as_default():
                for i in range(200):
                    summary.scalar(f"thread{k}", float(k * 1000 + i), step=i)
                    if i % 50 == 0:
                        summary.flush()
        except BaseException as e:  # reported below, in the main thread
            errors.append(e)

    threads = [threading.Thread(target=log, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert summary._state.writer is writer  # the threads' as_default left this thread's default alone
    writer.close()
    assert not errors
    for k in range(4):
        assert scalars(tmp_path, f"thread{k}") == [(i, float(k * 1000 + i)) for i in range(200)]


# --- bad input ----------------------------------------------------------------------------------


def test_bad_data_is_refused_with_what_was_given(tmp_path, device) -> None:
    writer = summary.create_file_writer(tmp_path)
    matrix = tc.asarray(np.ones((2, 3), np.float32), device=device)
    with writer.as_default(step=0):
        with pytest.raises(ValueError, match=rf"single number.*shape \(2, 3\) and dtype float32 on {device}.*tc.mean"):
            summary.scalar("x", matrix)
        with pytest.raises(ValueError, match=r"shape \(1,\).*x\[0\]"):
            summary.scalar("x", tc.asarray(np.ones(1, np.float32), device=device))
        for bad in ("1.0", None, [1.0], 1 + 2j, np.array(1 + 2j)):
            with pytest.raises(TypeError, match=r"scalar\('x'\): data must .*0-d tensorcore tensor"):
                summary.scalar("x", bad)
        with pytest.raises(TypeError, match=r"strategy.reduce"):
            summary.scalar("x", PerReplica([1.0, 2.0]))
        with pytest.raises(TypeError, match=rf"text\('t'\): data must be a str.*on {device}.*format it"):
            summary.text("t", matrix)
        for bad in (3, 1.5, ["a", 1], None):
            with pytest.raises(TypeError, match=r"text\('t'\): data must be a str"):
                summary.text("t", bad)
        for bad in ("abc", np.array(["a"]), {"a": 1}, [[1.0], [1.0, 2.0]]):
            with pytest.raises(TypeError, match=r"histogram\('h'\): data must"):
                summary.histogram("h", bad)
        with pytest.raises(ValueError, match=r"1 NaN or infinite value\(s\) of 3"):
            summary.histogram("h", tc.asarray(np.array([1.0, np.nan, 2.0], np.float32), device=device))
        for bad in (0, -1, 2.5, True):
            with pytest.raises(ValueError, match="buckets must be an int >= 1"):
                summary.histogram("h", [1.0], buckets=bad)
        for bad in (1.5, True, "3", tc.asarray(np.float32(1.0), device=device), tc.asarray(np.arange(2), device=device)):
            with pytest.raises(TypeError, match="step must be"):
                summary.scalar("x", 1.0, step=bad)
        with pytest.raises(ValueError, match="does not fit in int64"):
            summary.scalar("x", 1.0, step=2**63)
        for bad in (3, ""):
            with pytest.raises(TypeError, match="name must be a non-empty str"):
                summary.scalar(bad, 1.0)
        with pytest.raises(TypeError, match="description must be a str"):
            summary.scalar("x", 1.0, description=5)
        with pytest.raises(TypeError, match=r"tc.function\(fn\)"):
            summary.graph(lambda x: x)
        with pytest.raises(TypeError, match="example arguments go with a tc.function"):
            summary.graph(tc.function(lambda x: x).graph(matrix), matrix)
    with pytest.raises(TypeError, match="step must be"):
        summary.set_step(2.0)
    with pytest.raises(TypeError, match="condition must be"):
        with summary.record_if("yes"):
            pass
    writer.close()
    assert read(tmp_path).Tags()["scalars"] == []  # nothing half-written


def test_bad_writer_arguments(tmp_path) -> None:
    with pytest.raises(TypeError, match="logdir must be a path"):
        summary.create_file_writer(None)
    for kwargs, match in [({"max_queue": -1}, "max_queue"), ({"flush_millis": "1"}, "flush_millis"),
                          ({"flush_millis": float("nan")}, "flush_millis"), ({"filename_suffix": "a/b"}, "filename_suffix")]:
        with pytest.raises(ValueError, match=match):
            summary.create_file_writer(tmp_path, **kwargs)
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError):  # a logdir that is a file
        summary.create_file_writer(tmp_path / "file")


def test_inside_a_traced_function(tmp_path) -> None:
    @tc.function
    def step(x):
        y = tc.sum(x * 2.0)
        summary.scalar("y", y, step=0)
        return y

    x = tc.asarray(np.ones(3, np.float32))
    assert float(step(x)) == 6.0  # no default writer: nothing to write, so tracing goes on
    writer = summary.create_file_writer(tmp_path)

    @tc.function
    def step2(x):
        summary.histogram("x", x, step=0)
        return x + 1.0

    with writer.as_default():
        with pytest.raises(tc.TraceError, match=r"histogram\('x'\) was called while tc.function traces.*test_summary.py"
                                                r".*return the value from the function and log it outside: "
                                                r"`out = f\(x\); tc.summary.histogram\('x', out, step=i\)`"):
            step2(x)

        @tc.function
        def step3(x):
            summary.graph(step, x)
            return x

        with pytest.raises(tc.TraceError, match=r"tc.summary.graph\(...\) was called while .*call tc.summary.graph"):
            step3(x)
    writer.close()


# --- exit and MPI: other processes ------------------------------------------------------------


def _python(code: str, tmp_path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(tmp_path)], capture_output=True, text=True,
                         timeout=timeout, cwd=ROOT, env=dict(os.environ, TENSORCORE_DEVICE="cpu", **(env or {})))
    return out


@pytest.mark.parametrize("ending", ["return", "raise"])
def test_flushed_at_interpreter_exit(tmp_path, ending) -> None:
    out = _python(f"""
        import sys
        from tensorcore import summary
        writer = summary.create_file_writer(sys.argv[1], max_queue=1000, flush_millis=10**9)
        writer.set_as_default(step=0)
        for i in range(20):
            summary.scalar("x", float(i), step=i)
        summary.text("t", "bye")
        if "{ending}" == "raise":
            raise SystemExit("failing on purpose, writer still open")
        """, tmp_path)
    assert out.returncode == (1 if ending == "raise" else 0), out.stderr[-2000:]
    assert scalars(tmp_path, "x") == [(i, float(i)) for i in range(20)]
    assert read(tmp_path).Tags()["tensors"] == ["t"]


RANK_SCRIPT = """
    import os, sys
    from tensorcore import summary
    writer = summary.create_file_writer(sys.argv[1])
    with writer.as_default(step=0):
        wrote = summary.scalar("rank", float(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", -1))))
    writer.close()
    print(type(writer).__name__, wrote, repr(writer))
    """


@pytest.mark.parametrize("env,writes", [
    ({"PMI_SIZE": "2", "PMI_RANK": "1"}, False),  # MPICH / Hydra
    ({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "3"}, False),  # Open MPI
    ({"PMI_SIZE": "2", "PMI_RANK": "0"}, True),
    ({"PMI_SIZE": "1", "PMI_RANK": "0"}, True),  # one process: not "launched as one of several"
])
def test_only_mpi_rank_0_writes(tmp_path, env, writes) -> None:
    out = _python(RANK_SCRIPT, tmp_path / "logs", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    if writes:
        assert out.stdout.startswith("_FileWriter True")
        assert len(os.listdir(tmp_path / "logs")) == 1 and scalars(tmp_path / "logs", "rank") == [(0, 0.0)]
    else:
        assert out.stdout.startswith("_NoopWriter False") and "only rank 0 writes" in out.stdout
        assert not (tmp_path / "logs").exists()


def _mpiexec() -> str | None:
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


@pytest.mark.skipif(_mpiexec() is None, reason="no mpiexec (pip install mpich)")
def test_only_rank_0_writes_under_mpiexec(tmp_path) -> None:
    script = tmp_path / "rank.py"
    script.write_text(textwrap.dedent(RANK_SCRIPT))
    out = subprocess.run([_mpiexec(), "-n", "2", sys.executable, str(script), str(tmp_path / "logs")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, env=dict(os.environ, TENSORCORE_DEVICE="cpu"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert sorted(line.split()[0] for line in out.stdout.splitlines()) == ["_FileWriter", "_NoopWriter"]
    assert len(os.listdir(tmp_path / "logs")) == 1 and scalars(tmp_path / "logs", "rank") == [(0, 0.0)]
