"""tensorcore.distribute in one process: MirroredStrategy over pairs of devices.

The oracle: N replicas on a global batch equal one device on the same batch (float32
tolerance), and the replicas are bitwise identical after every step. Pairs: two cpu
replicas, cpu + opencl:0 (mixed kinds) and, in a fresh process, two PoCL devices.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import DEVICES

import tensorcore as tc
from tensorcore import placement, registry
from tensorcore.distribute import (
    CollectiveMismatchError,
    CollectiveTimeoutError,
    MirroredStrategy,
    OutOfSyncError,
    PerReplica,
)
from tensorcore.distribute.strategy import largest_remainder

from dist_oracle import OPTIMIZERS, loss_with_a_global_statistic, max_difference, train_mirrored, train_single

HERE = os.path.dirname(__file__)
PAIRS = [("cpu", "cpu")] + [("cpu", d) for d in DEVICES if d.startswith("opencl")][:1]
PAIRS += [("cpu", d) for d in DEVICES if d.startswith("cuda")][:1]  # the host path from a GPU
CUDA = [d for d in DEVICES if d.startswith("cuda")]


@pytest.fixture(params=PAIRS, ids=["+".join(p) for p in PAIRS])
def pair(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("weights", [None, (1, 3)], ids=["equal", "unequal"])
def test_replicas_equal_one_device_on_the_global_batch(pair, optimizer, weights):
    strategy = MirroredStrategy(list(pair), weights=weights)
    mirrored, losses = train_mirrored(strategy, optimizer)  # checks bitwise sync after every step
    single, single_losses = train_single("cpu", optimizer)
    assert max_difference(mirrored, single) < 2e-5
    np.testing.assert_allclose(losses, single_losses, rtol=1e-5)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("weights", [None, (1, 2)], ids=["equal", "unequal"])
def test_a_traced_step_equals_the_eager_one(pair, optimizer, weights):
    """tc.function inside strategy.run: each replica traces its partition once, with an
    all_reduce node on its device, and the graph gives what eager mode gives. Two replicas
    on one device with equal shares have equal signatures, yet each needs its own graph (its
    own optimizer state)."""
    eager, eager_losses = train_mirrored(MirroredStrategy(list(pair), weights=weights), optimizer, steps=4, batch=18)
    traced, traced_losses = train_mirrored(MirroredStrategy(list(pair), weights=weights), optimizer, steps=4, batch=18, traced=True)
    assert max_difference(traced, eager) < 2e-6
    np.testing.assert_allclose(traced_losses, eager_losses, rtol=1e-6)


def test_the_traced_step_has_an_all_reduce_node_on_each_replicas_device(pair):
    strategy = MirroredStrategy(list(pair))
    with strategy.scope():
        w = tc.Variable(np.ones(3, np.float32), name="w")
        opt = tc.optim.SGD([w], lr=0.1)

    @tc.function
    def step(x):
        with tc.GradientTape() as tape:
            loss = tc.sum(w * x)
        opt.step(tape.gradient(loss, [w]))
        return loss

    xs = strategy.split(np.arange(6, dtype=np.float32).reshape(2, 3))
    strategy.run(step, (xs,))
    reports = strategy.run(lambda x: step.placement_report(x), (xs,))
    for i, report in enumerate(reports):
        line = next(line for line in str(report).splitlines() if line.strip().startswith("all_reduce"))
        assert str(strategy.devices[i]) in line, report
    np.testing.assert_allclose(w.numpy(), 1 - 0.1 * 0.5 * np.array([3, 5, 7]))  # the mean of the two rows
    strategy.check_in_sync()


def test_the_replicated_step_is_one_graph_joined_at_its_all_reduces(pair):
    """strategy.graph: both partitions in one graph, each node on its replica's device, the
    all-reduce nodes paired; the report and the DOT export show the join."""
    strategy = MirroredStrategy(list(pair))
    with strategy.scope():
        w = tc.Variable(np.ones((3, 2), np.float32), name="w")
        b = tc.Variable(np.zeros(2, np.float32), name="b")
        opt = tc.optim.SGD([w, b], lr=0.1, momentum=0.9)

    @tc.function
    def step(x):
        with tc.GradientTape() as tape:
            loss = tc.sum(tc.nn.functional.relu(x @ w + b))
        opt.step(tape.gradient(loss, [w, b]))
        return loss

    xs = strategy.split(np.arange(12, dtype=np.float32).reshape(4, 3))
    graph = strategy.graph(step, (xs,))
    assert step.trace_count == 2  # one partition per replica, traced by strategy.graph
    devices = [tc.Device(d) for d in pair]
    for r, device in enumerate(devices):
        mine = [n for n in graph.nodes if n.name.startswith(f"replica{r}/")]
        assert mine and all(n.device == device for n in mine if n.kind != "transfer")
    assert len(graph.collectives) == 1  # w's and b's gradients travel in one bucket
    (members,) = graph.collectives
    assert [graph.nodes[i].name.split("/")[0] for i in members] == ["replica0", "replica1"]
    assert all(graph.nodes[i].op_name == "all_reduce" for i in members)
    assert [graph.nodes[i].device for i in members] == devices
    assert isinstance(graph.outputs, tuple) and len(graph.outputs) == 2

    report = strategy.placement_report(step, (xs,))
    line = next(line for line in report.splitlines() if line.startswith("collective 0"))
    assert f"replica0/{graph.nodes[members[0]].name.split('/')[1]} on {devices[0]}" in line and f"on {devices[1]}" in line
    assert "dir=both" in graph.to_dot()

    losses = strategy.run(step, (xs,))  # the graphs strategy.graph traced are the ones that run
    assert step.trace_count == 2
    expected = [np.maximum(x @ np.ones((3, 2)), 0).sum() for x in (xs.values[0].numpy(), xs.values[1].numpy())]
    np.testing.assert_allclose([v.numpy() for v in losses.values], expected, rtol=1e-6)
    strategy.check_in_sync()
    with pytest.raises(TypeError, match="takes a tc.function"):
        strategy.graph(step.fn, (xs,))


def test_two_pocl_devices_in_a_fresh_process():
    """Two real OpenCL devices need POCL_DEVICES before the backend starts: a new process."""
    if not any(d.startswith("opencl") for d in DEVICES):
        pytest.skip("no OpenCL device here")
    env = dict(os.environ, POCL_DEVICES="pthread pthread")
    for optimizer, weights, mode in (("sgd", "", "eager"), ("adam", "1,2", "eager"), ("sgd", "2,1", "traced")):
        out = subprocess.run([sys.executable, os.path.join(HERE, "dist_oracle.py"), "oracle", "opencl:0,opencl:1",
                              optimizer, weights, mode], env=env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr[-3000:]
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["devices"] == ["opencl:0", "opencl:1"]
        assert result["max_param_diff"] < 2e-5, result
        np.testing.assert_allclose(result["losses"], result["single_losses"], rtol=1e-5)


def test_mirrored_variable_reads_its_replicas_copy(pair):
    strategy = MirroredStrategy(list(pair))
    with strategy.scope():
        v = tc.Variable(np.arange(3, dtype=np.float32), name="v")
    assert isinstance(v, tc.distribute.MirroredVariable)
    assert [str(c.device) for c in v.copies] == [str(tc.Device(d)) for d in pair]
    assert v.copies[0]._data is not v.copies[1]._data  # separate buffers, even on one device

    def body():
        ctx = tc.distribute.get_replica_context()
        v.assign_add(np.full(3, ctx.replica_id + 1, np.float32))  # inside run: this replica's copy only
        return v.device, (v * 1).device, tc.zeros(1).device, ctx.replica_id

    devices, computed, created, ids = strategy.run(body)
    assert list(ids) == [0, 1]
    assert [str(d) for d in devices] == [str(d) for d in computed] == [str(d) for d in created] == [str(tc.Device(d)) for d in pair]
    np.testing.assert_array_equal(v.copies[0].numpy(), [1, 2, 3])
    np.testing.assert_array_equal(v.copies[1].numpy(), [2, 3, 4])
    np.testing.assert_array_equal(v.numpy(), [1, 2, 3])  # outside run: the primary
    with pytest.raises(OutOfSyncError, match="'v'.*replica 1"):
        strategy.check_in_sync()
    v.assign(np.full(3, 7, np.float32))  # outside run: every copy
    for c in v.copies:
        np.testing.assert_array_equal(c.numpy(), [7, 7, 7])
    strategy.check_in_sync()
    assert tc.distribute.get_replica_context() is None
    with pytest.raises(RuntimeError, match="cannot move"):
        v.move_to_device("cpu")


def test_variables_outside_the_scope_stay_plain():
    strategy = MirroredStrategy(["cpu", "cpu"])
    with strategy.scope():
        pass
    assert type(tc.Variable(1.0)) is tc.Variable


def test_replica_context_all_reduce_sum_and_weighted_mean(pair):
    strategy = MirroredStrategy(list(pair), weights=[1, 3])

    def body(x):
        ctx = tc.distribute.get_replica_context()
        assert ctx.num_replicas_in_sync == 2
        s, m = ctx.all_reduce("sum", [x, x * 2])
        return s, m, ctx.all_reduce("mean", x), s.device

    x = PerReplica([tc.asarray(np.array([1.0, 2.0], np.float32), device=d) for d in pair])
    sums, doubled, means, devices = strategy.run(body, (x,))
    for i, d in enumerate(pair):
        assert str(devices[i]) == str(tc.Device(d))
        np.testing.assert_array_equal(sums[i].numpy(), [2, 4])
        np.testing.assert_array_equal(doubled[i].numpy(), [4, 8])
        np.testing.assert_allclose(means[i].numpy(), [1, 2])  # 0.25 x + 0.75 x
    out = sums[0].numpy()
    out += 1  # a result users may write into, and that does not alias the other replica's
    np.testing.assert_array_equal(sums[1].numpy(), [2, 4])


def test_reduce_and_split_follow_the_shares():
    strategy = MirroredStrategy(["cpu", "cpu"], weights=[1, 3])
    x = np.arange(10, dtype=np.float32)
    shards = strategy.split(x)
    assert shards.sizes == (3, 7) and [s.shape for s in shards] == [(3,), (7,)]
    np.testing.assert_array_equal(np.concatenate([s.numpy() for s in shards]), x)
    sums = strategy.run(lambda s: tc.sum(s), (shards,))
    assert strategy.reduce("sum", sums).item() == pytest.approx(45.0)
    means = strategy.run(lambda s: tc.mean(s), (shards,))
    assert strategy.reduce("mean", means).item() == pytest.approx(4.5)  # the mean of the global batch
    with pytest.raises(ValueError, match="'sum' or 'mean'"):
        strategy.reduce("max", sums)


def test_the_step_weights_come_from_split_inputs_inside_containers_too():
    """A batch handed to run inside a tuple or a dict (features by name) weights the step by
    its shares as a bare argument does: (3, 7) rows weigh 0.3 and 0.7, not the nominal 1:3."""
    strategy = MirroredStrategy(["cpu", "cpu"], weights=[1, 3])
    shards = strategy.split(np.arange(10, dtype=np.float32))
    assert shards.sizes == (3, 7)
    for args in [(shards,), ((shards,),), ([shards],), ({"x": shards},)]:
        means = strategy.run(lambda a: tc.mean(_leaves(a)[0]), args)
        assert means.weights == pytest.approx((0.3, 0.7))
        assert strategy.reduce("mean", means).item() == pytest.approx(4.5)  # the mean of the global batch
    means = strategy.run(lambda x: tc.mean(x["nested"]), kwargs={"x": {"nested": shards}})
    assert strategy.reduce("mean", means).item() == pytest.approx(4.5)


def _leaves(value):
    if isinstance(value, dict):
        value = list(value.values())
    return [leaf for v in value for leaf in _leaves(v)] if isinstance(value, (list, tuple)) else [value]


def test_largest_remainder_shares():
    assert largest_remainder(10, [1, 1]) == [5, 5]
    assert largest_remainder(11, [1, 1, 1]) == [4, 4, 3]
    assert largest_remainder(7, [1, 3]) == [2, 5]
    for n in range(1, 50):
        assert sum(largest_remainder(n, [0.2, 0.5, 0.3])) == n


def test_batches_cover_the_dataset_once_per_epoch():
    strategy = MirroredStrategy(["cpu", "cpu"], weights=[2, 1])
    ids = np.arange(26)
    seen, sizes = [], []
    for (shard,) in strategy.batches([ids], 8, seed=3):
        sizes.append(shard.sizes)
        seen.extend(np.concatenate([s.numpy() for s in shard]).tolist())
    assert sizes == [(5, 3)] * 3 + [(1, 1)]
    assert sorted(seen) == list(range(26))
    assert seen != list(range(26))  # shuffled
    again = [np.concatenate([s.numpy() for s in b[0]]) for b in strategy.batches([ids], 8, seed=3)]
    assert np.concatenate(again).tolist() == seen
    assert len(list(strategy.batches([ids[:9]], 8, seed=0))) == 1  # a last batch of one row cannot feed two replicas


def test_batches_drop_a_last_batch_that_the_shares_leave_a_replica_without_rows():
    """As documented: a last batch too small to give every replica a row is dropped, also when
    it has more rows than replicas but the shares round one replica's part to zero."""
    strategy = MirroredStrategy(["cpu", "cpu"], weights=[1, 9])
    batches = list(strategy.batches([np.arange(14)], 10, shuffle=False))  # 10 rows, then 4: 0.4 + 3.6
    assert [b[0].sizes for b in batches] == [(1, 9)]
    with pytest.raises(ValueError, match="use a larger batch"):  # a full batch that cannot be shared stays an error
        list(strategy.batches([np.arange(14)], 4, shuffle=False))


def test_a_failing_replica_stops_the_step_and_updates_nothing():
    strategy = MirroredStrategy(["cpu", "cpu"])
    with strategy.scope():
        w = tc.Variable(np.ones(4, np.float32), name="w")
        opt = tc.optim.SGD([w], lr=0.5)

    def step(fail_on):
        ctx = tc.distribute.get_replica_context()
        with tc.GradientTape() as tape:
            loss = tc.sum(w * w)
        if ctx.replica_id == fail_on:
            raise MemoryError("replica out of memory (simulated by the test)")
        opt.step(tape.gradient(loss, [w]))

    with pytest.raises(MemoryError, match="simulated") as info:
        strategy.run(step, (1,))
    assert "replica 1" in "".join(getattr(info.value, "__notes__", [])) or sys.version_info < (3, 11)
    for c in w.copies:
        np.testing.assert_array_equal(c.numpy(), np.ones(4))
    strategy.run(step, (-1,))  # the strategy works again afterwards
    for c in w.copies:
        np.testing.assert_array_equal(c.numpy(), np.zeros(4))  # 1 - 0.5 * 2
    strategy.check_in_sync()


class _InterruptedError(Exception):
    """What the test's signal handler raises in the main thread (as Ctrl-C raises KeyboardInterrupt)."""


@pytest.fixture
def interrupt_main():
    """A function that interrupts the main thread's wait in strategy.run, as Ctrl-C does."""

    def handler(signum, frame):
        raise _InterruptedError()

    previous = signal.signal(signal.SIGUSR1, handler)
    yield lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
    signal.signal(signal.SIGUSR1, previous)


def test_a_run_interrupted_while_it_waits_leaves_nothing_behind(interrupt_main, monkeypatch):
    """Ctrl-C while run waits for its replicas: their late results are not the next run's, and
    replicas waiting in a collective are woken rather than left to time out."""
    monkeypatch.setenv("TENSORCORE_COLLECTIVE_TIMEOUT", "20")
    strategy = MirroredStrategy(["cpu", "cpu"])
    go = threading.Event()

    def step():
        ctx = tc.distribute.get_replica_context()
        if ctx.replica_id == 0:
            interrupt_main()
            ctx.all_reduce("sum", tc.ones(2))  # replica 1 never joins: woken by the interruption
        else:
            go.wait(30)
        return "old"

    with pytest.raises(_InterruptedError):
        strategy.run(step)
    go.set()
    start = time.monotonic()
    assert list(strategy.run(lambda: "new")) == ["new", "new"]
    assert time.monotonic() - start < 10  # not the collective's timeout
    sums = strategy.run(lambda: tc.distribute.get_replica_context().all_reduce("sum", tc.ones(2)))
    for s in sums:
        np.testing.assert_array_equal(s.numpy(), [2, 2])


@pytest.mark.parametrize("replicas", [2, 3])
def test_the_group_sums_every_replicas_scaled_sources_block_by_block(monkeypatch, replicas):
    """LocalGroup.all_reduce straight from several sources per replica (one empty, pieces
    across block and chunk boundaries), each replica's scaled by its weight: every output
    holds, bit for bit, the sum taken in replica order of each replica's source times its
    weight, the order the reduction promises."""
    from tensorcore.distribute import collective

    monkeypatch.setattr(collective, "BLOCK", 7)  # many blocks, pieces cut across them
    sizes = [5, 0, 13, 1, 21]
    rng = np.random.default_rng(0)
    sources = [[rng.standard_normal(n).astype(np.float32) for n in sizes] for _ in range(replicas)]
    scales = [np.float32(w) for w in rng.uniform(0.1, 1.0, replicas)]
    outputs = [np.full(sum(sizes), np.nan, np.float32) for _ in range(replicas)]
    description = tuple((f"t{k}", (n,), "float32") for k, n in enumerate(sizes))
    group = collective.LocalGroup(["cpu:0"] * replicas)
    errors: list = []

    def replica(i):
        try:
            group.all_reduce(i, "test all-reduce", description, outputs[i], timeout=10,
                             sources=sources[i], scale=scales[i])
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors
    expected = np.concatenate(sources[0]) * scales[0]
    for i in range(1, replicas):
        expected = expected + np.concatenate(sources[i]) * scales[i]
    for out in outputs:
        assert out.tobytes() == expected.tobytes()


def test_an_abort_just_after_a_collective_completed_does_not_fail_only_some_replicas():
    """An abort (a replica failing, or an interrupted run) that lands the instant the second
    barrier releases, before the waiting replica wakes: the collective completed, so every
    replica returns its sum. Before, the woken replica raised ReplicaAborted while the other
    went on to apply the update: the replicas out of sync. (The barrier is threading's, its
    release hooked to break it at once, under its lock, so the waiter cannot wake first.)"""
    from tensorcore.distribute.collective import LocalGroup

    group = LocalGroup(["cpu:0", "cpu:0"])

    class AbortedAsItReleases(threading.Barrier):
        def _release(self):
            super()._release()
            group._abort_reason = "replica 1 failed after the collective"
            group._arrive.abort()
            self._break()  # what abort() does; abort() itself would take the lock this thread holds

    group._leave = AbortedAsItReleases(2)
    buffers = [np.full(4, 1.0 + i, np.float32) for i in range(2)]
    outcomes: list = [None, None]

    def replica(i):
        try:
            group.all_reduce(i, "test all-reduce", (("x", (4,), "float32"),), buffers[i], timeout=10)
            outcomes[i] = "done"
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert outcomes == ["done", "done"]
    for b in buffers:
        np.testing.assert_array_equal(b, np.full(4, 3.0))


@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize("mode", ["eager", "traced"])
def test_gradients_through_the_replica_all_reduce_equal_one_device(pair, op, mode):
    """N replicas equal one device on the whole batch through an all-reduce inside the loss
    too: the optimizer's weighted mean of the replicas' gradients (here strategy.reduce) is the
    gradient one device computes, first order and second (a gradient penalty), with unequal
    shares. The all-reduce's backward is its adjoint under that weighting."""
    strategy = MirroredStrategy(list(pair), weights=(1, 3))
    rng = np.random.default_rng(0)
    x, v0, k = rng.standard_normal((8, 3)), rng.standard_normal(3), rng.standard_normal(3)

    def step(xb, v):
        with tc.GradientTape() as outer:
            outer.watch(v)
            with tc.GradientTape() as inner:
                inner.watch(v)
                loss = loss_with_a_global_statistic(op, xb, v, len(x))
            g = inner.gradient(loss, v)
            penalty = tc.sum(g * tc.asarray(k))
        return g, outer.gradient(penalty, v)

    fn = tc.function(step) if mode == "traced" else step
    xs = strategy.split(x)
    vs = PerReplica([tc.asarray(v0, device=d) for d in pair])
    for _ in range(2):  # traced: the second call runs the graph
        g, h = strategy.run(fn, (xs, vs))
    with tc.GradientTape() as outer:
        v = tc.asarray(v0)
        outer.watch(v)
        with tc.GradientTape() as inner:
            inner.watch(v)
            loss = loss_with_a_global_statistic(op, tc.asarray(x), v, len(x), global_op=lambda t: tc.mean(t, axis=0))
        g1 = inner.gradient(loss, v)
        penalty = tc.sum(g1 * tc.asarray(k))
    h1 = outer.gradient(penalty, v)
    np.testing.assert_allclose(strategy.reduce("mean", g).numpy(), g1.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(strategy.reduce("mean", h).numpy(), h1.numpy(), rtol=1e-12, atol=1e-12)


def test_training_through_a_replica_all_reduce_equals_one_device():
    """The probe's case: an optimizer over a mirrored variable whose loss is a global mean
    through all_reduce, unequal shares: the update equals one device's (it was weighted twice)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 3))
    strategy = MirroredStrategy(["cpu", "cpu"], weights=(1, 3))
    with strategy.scope():
        v = tc.Variable(np.ones(3))
        opt = tc.optim.SGD([v], lr=1.0)

    def step(xb):
        with tc.GradientTape() as tape:
            loss = tc.sum(tc.distribute.get_replica_context().all_reduce("mean", tc.mean(xb * v, axis=0)) ** 2)
        opt.step(tape.gradient(loss, [v]))

    strategy.run(tc.function(step), (strategy.split(x),))
    m = x.mean(0)  # one device: loss = sum((m * v)^2) at v = 1, gradient 2 m^2
    np.testing.assert_allclose(v.numpy(), 1 - 2 * m * m, rtol=1e-12)
    strategy.check_in_sync()


@pytest.mark.parametrize("mode", ["eager", "traced"])
def test_each_replica_draws_from_its_own_stream(mode, tmp_path):
    """tc.random (dropout) inside run: each replica has a stream of its own, derived from the
    seed and the replica id. The draws differ between replicas, are the same from run to run
    for one seed (replica threads drew from one generator in racing order, and a replica's
    trace rewound it under the other), and a checkpoint brings every replica's stream back."""
    def draws():
        tc.random.seed(7)
        strategy = MirroredStrategy(["cpu", "cpu"])
        with strategy.scope():
            v = tc.Variable(np.zeros(1), name="v")
        step = tc.function(lambda: tc.random.uniform((4,))) if mode == "traced" else (lambda: tc.random.uniform((4,)))
        first = [x.numpy().copy() for x in strategy.run(step).values]
        return strategy, v, step, first

    strategy, v, step, first = draws()
    assert not np.array_equal(first[0], first[1])
    for _ in range(3):
        again = draws()[3]
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)
    ckpt = tc.train.Checkpoint(v=v)
    path = ckpt.save(tmp_path / "streams.safetensors")
    main_after_save = tc.random.uniform((2,)).numpy()
    after_save = [x.numpy().copy() for x in strategy.run(step).values]
    ckpt.restore(path)  # everything drawn after the save is drawn again, in the same order
    np.testing.assert_array_equal(tc.random.uniform((2,)).numpy(), main_after_save)
    after_restore = [x.numpy().copy() for x in strategy.run(step).values]
    for a, b in zip(after_save, after_restore):
        np.testing.assert_array_equal(a, b)
    # Resuming in a fresh strategy (as a new process would): restoring draws nothing from the
    # process's stream, so it goes on as it would have after the save.
    tc.random.seed(7)
    fresh = MirroredStrategy(["cpu", "cpu"])
    with fresh.scope():
        w = tc.Variable(np.zeros(1), name="v")
    tc.train.Checkpoint(v=w).restore(path)
    np.testing.assert_array_equal(tc.random.uniform((2,)).numpy(), main_after_save)
    for a, b in zip(after_save, fresh.run(step).values):
        np.testing.assert_array_equal(a, b.numpy())


def test_a_checkpoint_brings_back_the_replicas_streams_in_use(tmp_path):
    """Streams already drawn from when the checkpoint is saved: restored as they were."""
    tc.random.seed(11)
    strategy = MirroredStrategy(["cpu", "cpu"])
    with strategy.scope():
        v = tc.Variable(np.zeros(1), name="v")
    strategy.run(lambda: tc.random.uniform((3,)))
    ckpt = tc.train.Checkpoint(v=v)
    path = ckpt.save(tmp_path / "in_use.safetensors")
    after_save = [x.numpy().copy() for x in strategy.run(lambda: tc.random.uniform((3,))).values]
    ckpt.restore(path)
    after_restore = strategy.run(lambda: tc.random.uniform((3,))).values
    for a, b in zip(after_save, after_restore):
        np.testing.assert_array_equal(a, b.numpy())


def test_mismatched_tensors_name_the_tensor():
    strategy = MirroredStrategy(["cpu", "cpu"])

    def body():
        ctx = tc.distribute.get_replica_context()
        return ctx.all_reduce("sum", [tc.ones(2), tc.ones(3 + ctx.replica_id)])

    with pytest.raises(CollectiveMismatchError, match=r"tensors\[1\] is float32\[3\].*float32\[4\]"):
        strategy.run(body)


@pytest.mark.parametrize("change", ["an extra tensor", "another dtype"])
def test_lists_that_plan_different_buckets_fail_at_the_first_naming_the_tensor(monkeypatch, change):
    """Replica 1's extra float64 tensor (or one float64 where replica 0 has float32) gives it
    another bucket plan. With the extra tensor, the first buckets agree, and replica 1 used to
    wait alone at a second bucket replica 0 never issues (a timeout); the first bucket's
    meeting compares the whole lists, so the step fails at once naming the difference. With
    the other dtype, the message names the tensor rather than the first buckets' counts."""
    monkeypatch.setenv("TENSORCORE_COLLECTIVE_TIMEOUT", "30")
    strategy = MirroredStrategy(["cpu", "cpu"])

    def body():
        ctx = tc.distribute.get_replica_context()
        items = [tc.ones(2), tc.ones(3)]
        if ctx.replica_id == 1 and change == "an extra tensor":
            items.append(tc.ones(2, dtype=tc.float64))
        elif ctx.replica_id == 1:
            items[1] = tc.ones(3, dtype=tc.float64)
        return ctx.all_reduce("sum", items)

    expected = (r"replica 0 \(cpu:0\) handed in 2 tensors but replica 1 \(cpu:0\) handed in 3"
                if change == "an extra tensor" else r"tensors\[1\] is float32\[3\] on replica 0 .* but float64\[3\]")
    start = time.monotonic()
    with pytest.raises(CollectiveMismatchError, match=expected):
        strategy.run(body)
    assert time.monotonic() - start < 10


def test_a_gradient_missing_on_one_replica_is_named(monkeypatch):
    """A parameter that one replica's loss does not use has no gradient there. With a bucket
    per tensor, replica 0 plans buckets [b], [a] and replica 1 only [b]: the first bucket's
    meeting compares the whole lists, so the step fails at once naming the difference, on
    every replica, and changes no parameter (replica 0 used to wait alone at bucket 1)."""
    monkeypatch.setenv("TENSORCORE_COLLECTIVE_TIMEOUT", "30")
    strategy = MirroredStrategy(["cpu", "cpu"])
    strategy.bucket_bytes = 8  # one tensor per bucket
    with strategy.scope():
        a, b = tc.Variable(np.ones(3, np.float32)), tc.Variable(np.ones(2, np.float32))
        opt = tc.optim.SGD([a, b], lr=0.1)

    def body():
        with tc.GradientTape() as tape:
            loss = tc.sum(b * b)
            if tc.distribute.get_replica_context().replica_id == 0:
                loss = loss + tc.sum(a)
        opt.step(tape.gradient(loss, [a, b]))

    start = time.monotonic()
    with pytest.raises(CollectiveMismatchError, match=r"handed in 2 tensors but .* handed in 1"):
        strategy.run(body)
    assert time.monotonic() - start < 10
    np.testing.assert_array_equal(a.numpy(), np.ones(3, np.float32))
    np.testing.assert_array_equal(b.numpy(), np.ones(2, np.float32))
    strategy.check_in_sync()


def test_a_replica_that_does_not_join_times_out_naming_it(monkeypatch):
    monkeypatch.setenv("TENSORCORE_COLLECTIVE_TIMEOUT", "0.5")
    strategy = MirroredStrategy(["cpu", "cpu"])
    release = threading.Event()

    def body():
        ctx = tc.distribute.get_replica_context()
        if ctx.replica_id == 1:
            release.wait(10)  # late
            return None
        return ctx.all_reduce("sum", tc.ones(2))

    def late_release():
        release.wait(2)
        release.set()

    threading.Thread(target=late_release, daemon=True).start()
    with pytest.raises(CollectiveTimeoutError, match=r"replica 1 \(cpu:0\) did not join within 0.5 s"):
        strategy.run(body)
    release.set()


def test_optimizer_of_a_strategy_steps_only_inside_run():
    strategy = MirroredStrategy(["cpu", "cpu"])
    with strategy.scope():
        w = tc.Variable(np.ones(2, np.float32))
        opt = tc.optim.SGD([w], lr=0.1)
    with pytest.raises(RuntimeError, match="inside strategy.run"):
        opt.step([tc.ones(2)])
    with pytest.raises(RuntimeError, match="inside strategy.run"):
        strategy.run(lambda: strategy.run(lambda: None))


@pytest.mark.parametrize("variable", ["PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS"])
def test_launched_by_mpi_reads_each_launchers_job_size(monkeypatch, variable):
    """MPICH's and Open MPI's mpiexec, MVAPICH and Slurm's srun each say how many processes
    they started; one process (or a value that is not a number) is not a distributed job."""
    from tensorcore.distribute import launched_by_mpi

    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    assert not launched_by_mpi()
    monkeypatch.setenv(variable, "1")
    assert not launched_by_mpi()
    monkeypatch.setenv(variable, "four")
    assert not launched_by_mpi()
    monkeypatch.setenv(variable, "4")
    assert launched_by_mpi()


def test_mpi_traffic_never_goes_through_mpi4pys_pickle_calls():
    """The lowercase mpi4py calls pickle their payload (banned here, and 30-100x slower): every
    call on a communicator in tensorcore.distribute is an uppercase buffer call."""
    import ast
    import pathlib

    import tensorcore.distribute as package

    lowercase = {"allreduce", "bcast", "allgather", "gather", "scatter", "send", "recv", "isend", "irecv", "alltoall",
                 "sendrecv", "reduce", "scan", "exscan", "ibcast", "iallreduce"}
    calls = []
    for path in pathlib.Path(package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                receiver = ast.unparse(node.func.value)
                if "comm" in receiver.lower() or "world" in receiver.lower() or "MPI" in receiver:
                    calls.append((path.name, receiver, node.func.attr))
    assert calls, "the scan found no communicator calls: it no longer matches the code"
    assert not [c for c in calls if c[2] in lowercase], calls


def test_default_devices_from_the_environment(monkeypatch):
    monkeypatch.setenv("TENSORCORE_DEVICES", "cpu, cpu")
    assert [str(d) for d in MirroredStrategy().devices] == ["cpu:0", "cpu:0"]
    monkeypatch.setenv("TENSORCORE_DEVICES", "cpu,,cpu")
    with pytest.raises(ValueError, match="comma-separated"):
        MirroredStrategy()
    monkeypatch.setenv("TENSORCORE_DEVICES", "cpu,gpu:0")
    with pytest.raises(ValueError, match="unknown device 'gpu:0'"):
        MirroredStrategy()
    monkeypatch.delenv("TENSORCORE_DEVICES")
    # Every available accelerator (the suite's out-of-tree test backend too, once installed).
    expected = [str(d) for d in registry.available_devices() if d.type != "cpu"] or ["cpu:0"]
    assert [str(d) for d in MirroredStrategy().devices] == expected


def test_unavailable_devices_warn_and_use_cpu_or_raise_under_strict(caplog):
    if "cuda:3" in DEVICES:
        pytest.skip("cuda:3 is available here")
    placement._warned.discard(("unavailable", tc.Device("cuda:3")))
    strategy = MirroredStrategy("cpu,cuda:3")
    assert [str(d) for d in strategy.devices] == ["cpu:0", "cpu:0"]
    assert any("cuda:3 is unavailable" in r.getMessage() for r in caplog.records)
    with tc.placement_policy("strict"), pytest.raises(tc.DeviceUnavailableError, match="cuda:3"):
        MirroredStrategy("cpu,cuda:3")


def test_weights_are_checked():
    with pytest.raises(ValueError, match="2 positive numbers"):
        MirroredStrategy(["cpu", "cpu"], weights=[1, 0])
    with pytest.raises(ValueError, match="2 positive numbers"):
        MirroredStrategy(["cpu", "cpu"], weights=[1])
    assert MirroredStrategy(["cpu", "cpu"], weights=[1, 3]).weights == (0.25, 0.75)


def test_nccl_is_chosen_only_where_it_applies(monkeypatch):
    """What of the NCCL path runs without a GPU: the choice and the unique id's round trip."""
    from tensorcore.distribute import nccl

    assert nccl.why_not([tc.Device("cpu"), tc.Device("cuda:0")]) == "not every replica is a cuda device"
    assert "share a GPU" in nccl.why_not([tc.Device("cuda:0"), tc.Device("cuda:0")])
    monkeypatch.setenv("TENSORCORE_NCCL", "0")
    assert nccl.why_not([tc.Device("cuda:0"), tc.Device("cuda:1")]) == "TENSORCORE_NCCL=0"
    monkeypatch.delenv("TENSORCORE_NCCL")
    reason = nccl.why_not([tc.Device("cuda:0"), tc.Device("cuda:1")])
    try:
        from cupy.cuda import nccl as cupy_nccl
    except Exception:
        cupy_nccl = None
    if cupy_nccl is None:
        assert "cupy.cuda.nccl is unavailable" in reason
    elif not getattr(cupy_nccl, "available", True):
        assert "found no NCCL library" in reason
    else:
        assert reason is None
    uid = tuple(range(-64, 64))  # CuPy's unique id: 128 signed chars
    buf = nccl.unique_id_to_array(uid)
    assert buf.dtype == np.uint8 and buf.shape == (128,)
    assert nccl.unique_id_from_array(buf) == uid
    assert MirroredStrategy(["cpu", "cpu"])._nccl is None
    # Replicas 0 and 3 (say, ranks 0 and 1 each on its node's cuda:0 of one node) share a GPU;
    # an unknown identity (0) matches nothing.
    assert nccl.shared_gpus([11, 22, 0, 11, 0, 33]) == [[0, 3]]
    assert nccl.shared_gpus([11, 22, 33]) == []


@pytest.mark.skipif(len(CUDA) < 2, reason="NCCL needs two GPUs (one rank per device); this machine has "
                    f"{len(CUDA)} cuda device(s)")
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_nccl_replicas_equal_one_device(optimizer):
    """Two cuda replicas sum their buckets with NCCL, and equal one device on the global batch."""
    strategy = MirroredStrategy(CUDA[:2], weights=(1, 2))
    assert strategy._nccl is not None, "NCCL did not start: see the warning in the log"
    mirrored, losses = train_mirrored(strategy, optimizer)
    single, single_losses = train_single("cpu", optimizer)
    assert max_difference(mirrored, single) < 2e-5
    np.testing.assert_allclose(losses, single_losses, rtol=1e-5)


@pytest.mark.parametrize("failing", ["w", "b"])
def test_a_replica_failing_inside_the_update_is_given_the_updated_values(monkeypatch, failing):
    """The all-reduce is done, replica 0 applies the whole update, replica 1 fails at one
    parameter (the first: before its step counter advanced; the second: after): run raises
    replica 1's error and leaves no replica half-updated, step counters included."""
    strategy = MirroredStrategy(["cpu", "cpu"])
    with strategy.scope():
        w = tc.Variable(np.ones(3, np.float32), name="w")
        b = tc.Variable(np.ones(2, np.float32), name="b")
        opt = tc.optim.SGD([w, b], lr=0.5, momentum=0.9)
    real_update = type(opt)._update

    def update(self, param, grad, state):
        if tc.distribute.get_replica_context().replica_id == 1 and param.name == failing:
            raise MemoryError("out of memory in the update (simulated by the test)")
        real_update(self, param, grad, state)

    monkeypatch.setattr(type(opt), "_update", update)

    def step():
        with tc.GradientTape() as tape:
            loss = tc.sum(w * w) + tc.sum(b * b)
        opt.step(tape.gradient(loss, [w, b]))

    with pytest.raises(MemoryError, match="simulated") as info:
        strategy.run(step)
    assert "given replica 0's variables" in "".join(getattr(info.value, "__notes__", [])) or sys.version_info < (3, 11)
    strategy.check_in_sync()  # parameters, momentum and step counters alike
    for v in (w, b):
        for c in v.copies:
            np.testing.assert_array_equal(c.numpy(), np.zeros(v.shape))  # 1 - 0.5 * 2
    assert [float(c.item()) for steps in opt._replica_steps for c in steps.values()] == [1.0, 1.0]


def test_check_in_sync_compares_the_optimizers_step_counters(pair):
    strategy = MirroredStrategy(list(pair))
    with strategy.scope():
        w = tc.Variable(np.ones(3, np.float32), name="w")
        opt = tc.optim.Adam([w], lr=0.1)
    from tensorcore import dispatch
    from tensorcore.ops.optim_updates import ASSIGN

    strategy.run(lambda: opt.step([tc.ones(3)]))
    strategy.check_in_sync()
    counter = next(iter(opt._replica_steps[1].values()))
    dispatch.apply_inplace(ASSIGN, counter, (2.0,))  # replica 1 thinks it took one more step
    with pytest.raises(OutOfSyncError, match="Adam step counter 0 differs between replica 0 .* and replica 1"):
        strategy.check_in_sync()


def test_a_forgotten_strategy_is_freed_and_its_threads_end():
    import gc
    import weakref

    def used_strategy():
        strategy = MirroredStrategy(["cpu", "cpu"])
        with strategy.scope():
            w = tc.Variable(np.ones(2, np.float32))
        strategy.run(lambda: tc.distribute.get_replica_context().all_reduce("sum", w * 1))
        return weakref.ref(strategy), list(strategy._threads._threads)

    ref, threads = used_strategy()
    gc.collect()
    assert ref() is None
    assert len(threads) == 2
    for thread in threads:
        thread.join(timeout=5)
        assert not thread.is_alive()


def test_replicas_run_with_quick_thread_switching_and_it_is_restored():
    """Inside run the interpreter switches threads every SWITCH_INTERVAL; after run (also a
    failed one) the interval is what it was."""
    from tensorcore.distribute import replicas

    before = sys.getswitchinterval()
    strategy = MirroredStrategy(["cpu", "cpu"])
    seen = strategy.run(lambda: sys.getswitchinterval())
    assert list(seen.values) == [min(before, replicas.SWITCH_INTERVAL)] * 2
    assert sys.getswitchinterval() == before

    def fail():
        raise ValueError("replica failure (test)")

    with pytest.raises(ValueError, match="replica failure"):
        strategy.run(fail)
    assert sys.getswitchinterval() == before


def test_one_replica_runs_in_the_calling_thread_unless_that_thread_records():
    """A process with one replica (an MPI rank with one device) runs it in the caller's thread,
    with the replica's device and context, and a failure is still the step's error. Under a
    tape of the caller's (or a trace) it runs in its own thread, so that its ops stay off
    the caller's tape."""
    strategy = MirroredStrategy(["cpu"])
    with strategy.scope():
        w = tc.Variable(np.ones(3, np.float32))
    here = threading.current_thread()

    def where():
        ctx = tc.distribute.get_replica_context()
        return threading.current_thread(), ctx.replica_id, ctx.all_reduce("sum", w * 2)

    thread, replica_id, total = strategy.run(where)
    assert thread.values[0] is here and replica_id.values[0] == 0
    np.testing.assert_array_equal(total.values[0].numpy(), np.full(3, 2, np.float32))
    assert tc.distribute.get_replica_context() is None  # left as it was
    with pytest.raises(ValueError, match="replica failure"):
        strategy.run(lambda: (_ for _ in ()).throw(ValueError("replica failure (test)")))
    thread, _, _ = strategy.run(where)  # the strategy still runs after a failed step
    assert thread.values[0] is here

    with tc.GradientTape() as tape:
        thread, _, _ = strategy.run(where)
        doubled = strategy.run(lambda: w * 2).values[0]
    assert thread.values[0] is not here
    assert tape.gradient(doubled, w) is None  # the caller's tape saw none of the replica's ops


def test_gradient_buckets_fill_from_the_last_layer():
    """Backpropagation computes the last layer's gradients first, so the first bucket holds
    them and can be summed while the device computes the rest; every tensor is in exactly one
    bucket, each bucket of one dtype and at most bucket_bytes unless one tensor is larger."""
    from tensorcore.distribute import buckets

    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    specs = [((256, 256), f32), ((256,), f32), ((64, 256), f32), ((64,), f32), ((10, 64), f64), ((10,), f32)]
    planned = buckets.plan_backward(specs, 80 * 1024)
    assert planned[0][0] == 5 and sorted(i for b in planned for i in b) == list(range(6))
    for bucket in planned:
        assert len({specs[i][1] for i in bucket}) == 1
        assert bucket == sorted(bucket, reverse=True)
        nbytes = sum(int(np.prod(specs[i][0])) * specs[i][1].itemsize for i in bucket)
        assert nbytes <= 80 * 1024 or len(bucket) == 1
    assert planned == [[5, 3, 2, 1], [4], [0]]  # 256x256 float32 alone exceeds 80 KiB
