"""A user's mistakes with tensorcore.distribute: each gets an error that says what was wrong and
what to do, before anything changed, instead of a silent wrong result (the cases a probe of
the API found training on, wrongly, without a word)."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest
from conftest import DEVICES

import tensorcore as tc
from tensorcore.distribute import MirroredStrategy, PerReplica
from tensorcore.distribute.devices import parse_devices

HERE = os.path.dirname(__file__)


def _model(strategy: MirroredStrategy) -> tuple[tc.Variable, tc.optim.Optimizer]:
    with strategy.scope():
        w = tc.Variable(np.ones(3, np.float32), name="w")
        return w, tc.optim.SGD([w], lr=0.1)


def _step(w: tc.Variable, opt: tc.optim.Optimizer):
    def step(x):
        with tc.GradientTape() as tape:
            loss = tc.sum(w * x)
        opt.step(tape.gradient(loss, [w]))
        return loss

    return step


def test_run_inside_a_traced_function_is_refused_before_any_update():
    """TensorFlow's habit, tc.function around strategy.run, would run the replicas once while
    tracing and record nothing: every later call would train nothing."""
    strategy = MirroredStrategy(["cpu", "cpu"])
    w, opt = _model(strategy)
    xs = strategy.split(np.ones((4, 3), np.float32))

    @tc.function
    def outer(x):
        return strategy.run(_step(w, opt), (x,))

    with pytest.raises(RuntimeError, match=r"trace the step that strategy.run runs instead: strategy.run\(tc.function\(step\)"):
        outer(xs)
    assert opt.iterations == 0
    np.testing.assert_array_equal(w.numpy(), np.ones(3, np.float32))
    strategy.run(tc.function(_step(w, opt)), (xs,))  # the right way
    assert opt.iterations == 1


def test_variables_of_one_device_are_not_written_inside_run():
    """A model and optimizer made outside scope() are shared by every replica, and nothing
    all-reduces their gradients: stepping or assigning them inside run is an error."""
    strategy = MirroredStrategy(["cpu", "cpu"])
    plain = tc.Variable(np.ones(3, np.float32), name="plain")
    opt = tc.optim.SGD([plain], lr=0.1)
    xs = strategy.split(np.ones((4, 3), np.float32))
    with pytest.raises(RuntimeError, match=r"SGD.step of variable 'plain' inside strategy.run: it is not mirrored .* strategy.scope\(\)"):
        strategy.run(_step(plain, opt), (xs,))
    with pytest.raises(RuntimeError, match=r"assign_add of variable 'plain' inside strategy.run"):
        strategy.run(lambda: plain.assign_add(np.ones(3, np.float32)))
    np.testing.assert_array_equal(plain.numpy(), np.ones(3, np.float32))
    assert opt.iterations == 0
    plain.assign_add(np.ones(3, np.float32))  # outside run, as always
    np.testing.assert_array_equal(plain.numpy(), np.full(3, 2, np.float32))


def test_strategy_graph_applies_runs_rules_while_it_traces():
    """strategy.graph traces the graphs run will run: a step writing variables of one device is
    refused there too (tracing it first let run execute it silently)."""
    strategy = MirroredStrategy(["cpu", "cpu"])
    plain = tc.Variable(np.ones(3, np.float32), name="plain")
    step = tc.function(_step(plain, tc.optim.SGD([plain], lr=0.1)))
    xs = strategy.split(np.ones((4, 3), np.float32))
    for call in (strategy.graph, strategy.run):
        with pytest.raises(RuntimeError, match="SGD.step of variable 'plain' inside strategy.run"):
            call(step, (xs,))
    np.testing.assert_array_equal(plain.numpy(), np.ones(3, np.float32))


def test_the_learning_rate_is_not_set_inside_run():
    """A scheduler stepped inside the step would be stepped once per replica, each replica
    rewriting the rate while another updates."""
    strategy = MirroredStrategy(["cpu", "cpu"])
    w, opt = _model(strategy)

    def step():
        opt.lr = 0.05

    with pytest.raises(RuntimeError, match=r"setting SGD.lr \(or stepping its scheduler\) inside strategy.run"):
        strategy.run(step)
    assert opt.lr == 0.1
    opt.lr = 0.05  # between steps, as always
    assert opt.lr == 0.05


def test_a_replica_may_write_the_variables_it_made():
    """A variable made inside the step (replica-private scratch) is that replica's own, and an
    optimizer built in the scope whose state is plain variables (made once per replica, in
    setup) works as before: only state every replica shares is refused."""
    strategy = MirroredStrategy(["cpu", "cpu"])

    def step():
        scratch = tc.Variable(np.zeros(3), trainable=False)
        scratch.assign_add(np.ones(3))
        return scratch * 1

    for value in strategy.run(step).values:
        np.testing.assert_array_equal(value.numpy(), np.ones(3))
    made = strategy.for_each_replica(lambda: tc.Variable(np.zeros(2), trainable=False))
    with strategy.scope():
        built = strategy.for_each_replica(lambda: tc.Variable(np.zeros(2)))  # setup, not a step
    assert len(made) == len(built) == 2


def test_a_variable_made_in_the_scope_inside_run_is_refused():
    strategy = MirroredStrategy(["cpu", "cpu"])

    def make():
        with strategy.scope():
            return tc.Variable(np.ones(2, np.float32))

    with pytest.raises(RuntimeError, match="a mirrored variable is created inside strategy.run"):
        strategy.run(make)


def test_per_replica_values_must_match_the_replicas():
    strategy = MirroredStrategy(["cpu", "cpu"])
    for count in (1, 3):
        values = PerReplica([tc.ones(1)] * count)
        with pytest.raises(ValueError, match=f"run: a PerReplica holds {count} values?, but this process has 2 replicas"):
            strategy.run(lambda v: v, (values,))
        with pytest.raises(ValueError, match=f"reduce: a PerReplica holds {count} values?, but this process has 2"):
            strategy.reduce("sum", values)
    for sizes in ([1], [0, 0], [0, 4], [2, 1, 1]):
        with pytest.raises(ValueError, match=r"batch sizes .* do not fit the 2 replicas"):
            strategy.run(lambda v: v, (PerReplica([tc.ones(1)] * 2, sizes=sizes),))


@pytest.mark.parametrize("returns, expected", [
    (lambda i: (tc.ones(1),) * (2 - i), r"replica 1 \(cpu:0\) returned a tuple of 1 but replica 0 \(cpu:0\) returned a tuple of 2"),
    (lambda i: (tc.ones(1), tc.ones(1)) if i == 0 else tc.ones(2), "replica 1 .* returned one Tensor but replica 0 .* a tuple of 2"),
    (lambda i: {"a": tc.ones(1), **({"b": tc.ones(1)} if i else {})}, r"a dict with keys \['a', 'b'\] but .* \['a'\]"),
])
def test_replicas_returning_different_structures_is_an_error(returns, expected):
    strategy = MirroredStrategy(["cpu", "cpu"])
    with pytest.raises(TypeError, match=expected):
        strategy.run(lambda: returns(tc.distribute.get_replica_context().replica_id))


@pytest.mark.parametrize("call, error, expected", [
    (lambda s: s.batches(np.ones((6, 3)), 2), TypeError, r"list or tuple of arrays .* got a ndarray; wrap a single array as \[x\]"),
    (lambda s: s.batches([], 2), TypeError, "got an empty list"),
    (lambda s: s.batches([np.ones((6, 3))], 2.5), TypeError, "global_batch_size must be an int, got 2.5"),
    (lambda s: s.batches([np.ones((6, 3))], 2, seed=-1), TypeError, "seed must be a non-negative int"),
    (lambda s: s.batches([np.ones((6, 3)), np.ones(5)], 2), ValueError, "array 1 has 5 rows, array 0 has 6"),
    (lambda s: s.split(np.float32(3)), ValueError, "argument 0 is 0-d"),
    (lambda s: s.split(None), TypeError, "argument 0 is a NoneType, not an array"),
    (lambda s: s.split({"x": np.ones((4, 2))}), TypeError, "argument 0 is a dict, not an array"),
])
def test_inputs_that_are_not_a_global_batch_are_named(call, error, expected):
    strategy = MirroredStrategy(["cpu", "cpu"])
    with pytest.raises(error, match=expected):
        out = call(strategy)
        if inspect.isgenerator(out):  # batches checks when iteration starts
            next(out)


def test_a_list_of_rows_splits_like_an_array():
    strategy = MirroredStrategy(["cpu", "cpu"])
    shards = strategy.split([[1.0, 2.0], [3.0, 4.0]])
    assert [s.numpy().tolist() for s in shards] == [[[1.0, 2.0]], [[3.0, 4.0]]]


@pytest.mark.parametrize("weights, error", [([1e308, 1e308], ValueError), ("a", TypeError), (2, TypeError)])
def test_weights_that_are_not_shares_are_refused(weights, error):
    with pytest.raises(error, match=r"expected 2 positive numbers \(one per replica\)"):
        MirroredStrategy(["cpu", "cpu"], weights=weights)


def test_devices_given_as_bytes_are_refused():
    with pytest.raises(TypeError, match="expected a string like 'opencl:0,opencl:1' or a list of devices, got bytes"):
        parse_devices(b"cpu")


def test_a_replica_context_outside_its_run_is_refused():
    strategy = MirroredStrategy(["cpu", "cpu"])
    contexts = strategy.run(lambda: tc.distribute.get_replica_context())
    with pytest.raises(RuntimeError, match=r"call get_replica_context\(\) inside the step"):
        contexts.values[0].all_reduce("sum", tc.ones(2))


def test_an_optimizer_of_another_strategy_says_so():
    first, second = MirroredStrategy(["cpu", "cpu"]), MirroredStrategy(["cpu", "cpu"])
    w, opt = _model(first)
    with pytest.raises(RuntimeError, match="mirrored by another strategy than the one whose run this is"):
        second.run(lambda: opt.step([tc.ones(3)]))
    assert opt.iterations == 0


def test_replicas_at_different_collectives_are_told_so():
    """A mean on one replica against a sum on the other: the collective's name is compared too."""
    strategy = MirroredStrategy(["cpu", "cpu"])

    def body():
        op = "mean" if tc.distribute.get_replica_context().replica_id == 0 else "sum"
        return tc.distribute.get_replica_context().all_reduce(op, tc.ones(2))

    with pytest.raises(tc.distribute.CollectiveMismatchError,
                       match=r"replica 0 \(cpu:0\) at \"all_reduce\('mean'\), bucket 0\", replica 1 \(cpu:0\) at "
                             r"\"all_reduce\('sum'\), bucket 0\""):
        strategy.run(body)


def test_a_weighted_mean_of_integers_is_refused_with_one_replica_too():
    for devices in (["cpu"], ["cpu", "cpu"]):
        strategy = MirroredStrategy(devices)
        with pytest.raises(TypeError, match="a weighted mean needs floating-point tensors, got int32"):
            strategy.run(lambda: tc.distribute.get_replica_context().all_reduce("mean", tc.ones(2, dtype=tc.int32)))


@pytest.mark.skipif("opencl:0" not in DEVICES, reason="needs opencl:0 (PoCL)")
def test_a_complex_all_reduce_falls_back_to_the_host_on_opencl():
    """opencl has no complex kernels: the op runs on the host (visibly) and sums right."""
    strategy = MirroredStrategy(["cpu", "opencl:0"])
    x = np.array([1 + 2j, 3 - 1j], np.complex64)
    out = strategy.run(lambda: tc.distribute.get_replica_context().all_reduce("sum", tc.asarray(x)))
    for value in out.values:
        np.testing.assert_array_equal(value.numpy(), 2 * x)


def test_ranks_with_different_batches_are_told_so(tmp_path):
    """Under MPI each rank places its own rows of what it was given: a rank with another batch
    or seed would train on rows the others skip. split and batches compare them first."""
    from test_distribute_mpi import SKIP, mpirun

    if SKIP is not None:
        pytest.skip(SKIP)
    out, _, reports = mpirun(tmp_path, "per-rank-data", env={"TENSORCORE_COLLECTIVE_TIMEOUT": "20"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert sorted(reports) == [0, 1]
    for r in reports.values():
        assert r["split"] == ("ValueError: split: the global batch's rows differ between processes: rank 0 passed [3], "
                              "rank 1 [5]; every rank must pass the same global batch (each places only its own "
                              "replicas' rows)")
        assert r["batches seed None"].startswith("ValueError: batches: seed=None draws another order on each process")
        assert r["batches seed"].startswith("ValueError: batches: the dataset's rows, global_batch_size, shuffle, seed "
                                            "and drop_last differ between processes: rank 0 passed [8, 4, 1, 0, 0], "
                                            "rank 1 [8, 4, 1, 1, 0]")
        assert r["same batch"] == "ok"


@pytest.mark.skipif("opencl:0" not in DEVICES, reason="needs opencl:0 (PoCL)")
def test_a_traced_step_failing_in_its_update_while_tracing_claims_no_repair():
    """Under strict placement opencl's update kernels decline float16: the traced step fails
    while it is traced, before anything ran. No replica was half-updated, so no note says one
    was given another's variables (phases were marked while tracing)."""
    strategy = MirroredStrategy(["cpu", "opencl:0"])
    with strategy.scope():
        w = tc.Variable(np.ones(3, np.float16), name="w16")
        opt = tc.optim.SGD([w], lr=0.1)

    @tc.function
    def step():
        opt.step([tc.ones(3, dtype=tc.float16)])

    with tc.placement_policy("strict"), pytest.raises(tc.PlacementError) as info:
        strategy.run(step)
    assert not any("given replica" in note for note in getattr(info.value, "__notes__", []))
    assert opt.iterations == 0
    strategy.check_in_sync()


def test_seeding_inside_run_is_refused():
    """Inside run each replica draws from its own stream, derived from the seed set before."""
    strategy = MirroredStrategy(["cpu", "cpu"])
    strategy.run(lambda: tc.random.uniform((1,)))  # the streams exist from the first run
    with pytest.raises(RuntimeError, match="tc.random.seed inside strategy.run"):
        strategy.run(lambda: tc.random.seed(5))


def test_loading_an_optimizers_state_inside_run_is_refused_before_anything_changes():
    strategy = MirroredStrategy(["cpu", "cpu"])
    w, opt = _model(strategy)
    strategy.run(lambda: opt.step([tc.ones(3, dtype=tc.float32)]))
    saved = opt.state_dict()
    strategy.run(lambda: opt.step([tc.ones(3, dtype=tc.float32)]))
    with pytest.raises(RuntimeError, match="SGD.load_state_dict inside strategy.run"):
        strategy.run(lambda: opt.load_state_dict(saved))
    assert opt.iterations == 2
    opt.load_state_dict(saved)  # between steps, as always
    assert opt.iterations == 1

