"""The oracle of tensorcore.distribute: N replicas on a global batch equal one device on it.

Used by the in-process tests (tests/test_distribute.py) and, as a script, by the tests that
need a fresh process (two PoCL devices) or several (``mpiexec -n 2``): ``python
tests/dist_oracle.py SCENARIO [ARGS]`` prints one JSON line per rank.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import tensorcore as tc
from tensorcore.nn import functional as F

OPTIMIZERS: dict[str, Callable[[list], Any]] = {
    "sgd": lambda params: tc.optim.SGD(params, lr=0.1, momentum=0.9),
    "plain-sgd": lambda params: tc.optim.SGD(params, lr=0.1),
    "adam": lambda params: tc.optim.Adam(params, lr=0.01),
}


def data(n: int = 72, features: int = 12, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small classification problem."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features)).astype(np.float32), rng.integers(0, classes, n)


def model(seed: int = 0) -> tc.nn.Module:
    """A two-layer MLP, initialised from ``seed``."""
    tc.random.seed(seed)
    return tc.nn.Sequential(tc.nn.Linear(12, 16), tc.nn.ReLU(), tc.nn.Linear(16, 4))


def batch_rows(step: int, batch: int) -> slice:
    return slice(step * batch, (step + 1) * batch)


def train_single(device: str, optimizer: str, steps: int = 3, batch: int = 24) -> tuple[list[np.ndarray], list[float]]:
    """Parameters and losses after ``steps`` steps on one device over the whole batches."""
    x, y = data()
    with tc.device(device):
        net = model()
        params = net.parameters()
        opt = OPTIMIZERS[optimizer](params)
        losses = []
        for s in range(steps):
            xb, yb = tc.asarray(x[batch_rows(s, batch)]), tc.asarray(y[batch_rows(s, batch)])
            with tc.GradientTape() as tape:
                loss = F.cross_entropy(net(xb), yb)
            opt.step(tape.gradient(loss, params))
            losses.append(float(loss.item()))
    return [p.numpy().copy() for p in params], losses


def train_mirrored(strategy: Any, optimizer: str, steps: int = 3, batch: int = 24, seed: int = 0, traced: bool = False) -> tuple[list[np.ndarray], list[float]]:
    """The same training under ``strategy`` (the step eager, or ``traced`` by ``tc.function``);
    checks the replicas are in sync after every step."""
    x, y = data()
    with strategy.scope():
        net = model(seed)
        params = net.parameters()
        opt = OPTIMIZERS[optimizer](params)

    def step(xb: Any, yb: Any) -> Any:
        with tc.GradientTape() as tape:
            loss = F.cross_entropy(net(xb), yb)
        opt.step(tape.gradient(loss, params))
        return loss

    fn = tc.function(step) if traced else step
    losses = []
    for s in range(steps):
        xs, ys = strategy.split(x[batch_rows(s, batch)], y[batch_rows(s, batch)])
        losses.append(float(strategy.reduce("mean", strategy.run(fn, (xs, ys))).item()))
        strategy.check_in_sync()
    return [p.numpy().copy() for p in params], losses


def max_difference(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """The largest |a - b| over lists of arrays."""
    return max(float(np.max(np.abs(u.astype(np.float64) - v))) for u, v in zip(a, b))


def _oracle(devices: str, optimizer: str, weights: str = "", mode: str = "eager", multi_worker: bool = False) -> dict[str, Any]:
    w = [float(v) for v in weights.split(",")] if weights else None
    if multi_worker:
        strategy = tc.distribute.MultiWorkerMirroredStrategy(devices or None, weights=w)
        rank = strategy.rank
    else:
        strategy = tc.distribute.MirroredStrategy(devices, weights=w)
        rank = 0
    # Each rank seeds its model differently: rank 0's values must win.
    mirrored, losses = train_mirrored(strategy, optimizer, seed=rank, traced=mode == "traced")
    single, single_losses = train_single("cpu", optimizer)
    return {"rank": rank, "replicas": strategy.num_replicas_in_sync, "devices": [str(d) for d in strategy.devices],
            "max_param_diff": max_difference(mirrored, single), "losses": losses, "single_losses": single_losses,
            "param_sum": float(sum(p.sum() for p in mirrored))}


def _report(result: dict[str, Any]) -> None:
    """Print ``result`` as JSON, or write it to ``$DIST_ORACLE_OUT/rank<N>.json`` (ranks that
    print at once interleave their lines)."""
    folder = os.environ.get("DIST_ORACLE_OUT")
    if folder:
        with open(os.path.join(folder, f"rank{result['rank']}.json"), "w") as f:
            json.dump(result, f)
    else:
        print(json.dumps(result), flush=True)


def _faults(kind: str) -> None:
    """Scenarios of a rank that misbehaves (run under mpiexec -n 2)."""
    import time

    if kind == "no-strategy-on-rank-1":  # rank 1 ends cleanly without ever making the strategy
        if _rank() == 1:
            return
        tc.distribute.MultiWorkerMirroredStrategy("cpu")
        time.sleep(60)  # never reached: the creation times out
    if kind == "devices-differ":  # rank 0 lets the strategy choose, rank 1 names its device
        strategy = tc.distribute.MultiWorkerMirroredStrategy(None if _rank() == 0 else "cpu")
        total = strategy.run(lambda: tc.distribute.get_replica_context().all_reduce("sum", tc.ones(3)))
        try:
            strategy.broadcast_bytes("text")
        except TypeError as exc:
            _report({"rank": strategy.rank, "sum": total.values[0].numpy().tolist(), "bytes_error": str(exc)})
        return
    strategy = tc.distribute.MultiWorkerMirroredStrategy("cpu")
    ctx_value = tc.ones(3)
    if kind == "raise":
        if strategy.rank == 1:
            raise RuntimeError("rank 1 fails on purpose")
        strategy.run(lambda: tc.distribute.get_replica_context().all_reduce("sum", tc.ones(3)))
        time.sleep(60)  # never reached: the job is aborted first
    elif kind == "kill":
        import os
        import signal

        if strategy.rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        strategy.run(lambda: tc.distribute.get_replica_context().all_reduce("sum", tc.ones(3)))
        time.sleep(60)
    elif kind == "timeout":
        if strategy.rank == 1:
            time.sleep(30)  # late for the collective below
        strategy.run(lambda: tc.distribute.get_replica_context().all_reduce("sum", ctx_value))
    elif kind == "mismatch":
        shape = (3,) if strategy.rank == 0 else (4,)
        strategy.run(lambda: tc.distribute.get_replica_context().all_reduce("sum", [tc.ones(2), tc.ones(shape)]))
    elif kind == "caught-timeout":  # rank 1 is late once; rank 0 catches the timeout and goes on
        errors = []
        for step in range(3):
            if strategy.rank == 1 and step == 1:
                time.sleep(8)
            try:
                strategy.run(lambda: tc.distribute.get_replica_context().all_reduce("sum", ctx_value))
            except tc.distribute.CollectiveTimeoutError as exc:
                errors.append(str(exc))
        _report({"rank": strategy.rank, "errors": errors})  # rank 0 gets here; the job must still end
        return
    elif kind == "op-mismatch":
        strategy.reduce("mean" if strategy.rank == 0 else "sum", strategy.run(lambda: tc.ones(3)))
    elif kind == "mismatch-count":  # rank 1's extra float64 tensor plans a second bucket
        extra = [tc.ones(2, dtype=tc.float64)] if strategy.rank == 1 else []
        strategy.run(lambda: tc.distribute.get_replica_context().all_reduce("sum", [tc.ones(2), tc.ones(3), *extra]))
    elif kind == "out-of-sync":  # rank 1 changes its own copy: check_in_sync must name it on every rank
        with strategy.scope():
            v = tc.Variable(np.zeros(3, np.float32), name="v")
        strategy.check_in_sync()
        if strategy.rank == 1:
            v.assign(np.ones(3, np.float32))  # outside run: this process's copies only
        try:
            strategy.check_in_sync()
        except tc.distribute.OutOfSyncError as exc:
            _report({"rank": strategy.rank, "out_of_sync": str(exc)})
            return
    _report({"rank": strategy.rank, "finished": True})


def _per_rank_data() -> None:
    """Ranks that hand split and batches different data (under mpiexec -n 2): every rank gets
    an error naming the difference, and the strategy works on for the same data."""
    strategy = tc.distribute.MultiWorkerMirroredStrategy("cpu")
    outcomes: dict[str, str] = {"rank": strategy.rank}
    cases = {
        "split": lambda: strategy.split(np.ones((3 if strategy.rank == 0 else 5, 2), np.float32)),
        "batches seed None": lambda: next(iter(strategy.batches([np.ones((8, 2))], 4, seed=None))),
        "batches seed": lambda: next(iter(strategy.batches([np.ones((8, 2))], 4, seed=strategy.rank))),
        "same batch": lambda: strategy.split(np.ones((4, 2), np.float32)),
    }
    for label, call in cases.items():
        try:
            call()
            outcomes[label] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported to the test
            outcomes[label] = f"{type(exc).__name__}: {exc}"
    _report(outcomes)


def loss_with_a_global_statistic(op: str, x, v, rows: int, global_op=None):
    """A loss that needs the whole batch: the batch's column means of x * v (through the
    replicas' all_reduce, as a synchronized batch norm's statistics; or ``global_op`` on one
    device), squared, plus a term of each row alone."""
    if global_op is not None:
        m = global_op(x * v)
    elif op == "mean":
        m = tc.distribute.get_replica_context().all_reduce("mean", tc.mean(x * v, axis=0))
    else:
        m = tc.distribute.get_replica_context().all_reduce("sum", tc.sum(x * v, axis=0)) / rows
    return tc.sum(m * m * tc.asarray(np.array([1.5, -0.5, 2.0]))) + tc.sum(tc.mean(x * v * v, axis=0))


def _all_reduce_gradient(op: str) -> None:
    """Through an all_reduce inside the loss, across ranks (under mpiexec -n 2, shares 1 and 3):
    the weighted mean of the ranks' gradients against one device's on the whole batch."""
    strategy = tc.distribute.MultiWorkerMirroredStrategy("cpu", weights=[1.0 if _rank() == 0 else 3.0])
    rng = np.random.default_rng(0)
    x, v0 = rng.standard_normal((8, 3)), rng.standard_normal(3)

    def step(xb: Any, v: Any) -> Any:
        with tc.GradientTape() as tape:
            tape.watch(v)
            loss = loss_with_a_global_statistic(op, xb, v, len(x))
        return tape.gradient(loss, v)

    combined = strategy.reduce("mean", strategy.run(step, (strategy.split(x), tc.asarray(v0)))).numpy()
    v = tc.asarray(v0)
    with tc.GradientTape() as tape:
        tape.watch(v)
        loss = loss_with_a_global_statistic(op, tc.asarray(x), v, len(x), global_op=lambda t: tc.mean(t, axis=0))
    single = tape.gradient(loss, v).numpy()
    _report({"rank": strategy.rank, "combined": combined.tolist(), "single": single.tolist()})


def _rank() -> int:
    from mpi4py import MPI

    return MPI.COMM_WORLD.Get_rank()


def _checkpoint_random_streams(directory: str) -> None:
    """Ranks seeded apart (their own dropout streams) each resume their own stream after a
    restore under mpiexec -n 2, for tc.random and for a NumPy generator in the checkpoint."""
    tc.random.seed(100 + _rank())
    strategy = tc.distribute.MultiWorkerMirroredStrategy("cpu")
    with strategy.scope():
        net = model(0)
    gen = np.random.default_rng(_rank())
    ckpt = tc.train.Checkpoint(model=net, gen=gen)
    path = ckpt.save(os.path.join(directory, "streams.safetensors"))
    before = (tc.random.uniform((3,)).numpy().tolist(), gen.random(3).tolist())
    ckpt.restore(path)
    after = (tc.random.uniform((3,)).numpy().tolist(), gen.random(3).tolist())
    _report({"rank": strategy.rank, "before": before, "after": after})


def _restore_one_process_file(directory: str) -> None:
    """A checkpoint saved by one process restored by 2 ranks: its one set of replica streams
    must not be given to every rank (every replica would draw the same dropout masks)."""
    rank = _rank()
    single = tc.distribute.MirroredStrategy(["cpu"])
    with single.scope():
        v = tc.Variable(np.zeros(1), name="v")
    single.run(lambda: tc.random.uniform((3,)))
    tc.train.Checkpoint(v=v).save(os.path.join(directory, f"one{rank}.safetensors"))
    strategy = tc.distribute.MultiWorkerMirroredStrategy("cpu")
    with strategy.scope():
        w = tc.Variable(np.zeros(1), name="v")
    tc.train.Checkpoint(v=w).restore(os.path.join(directory, "one0.safetensors"))
    draws = strategy.run(lambda: tc.random.uniform((3,)))
    _report({"rank": rank, "draws": draws.values[0].numpy().tolist()})


def _uneven_nodes() -> None:
    """Default devices where rank 1 is on a node without accelerators (under mpiexec -n 2):
    rank 0 takes an accelerator, rank 1 cpu, and the two still meet in collectives."""
    from mpi4py import MPI

    from tensorcore import registry

    if MPI.COMM_WORLD.Get_rank() == 1:
        registry.available_devices = lambda: [tc.Device("cpu")]
    strategy = tc.distribute.MultiWorkerMirroredStrategy()
    sums = strategy.run(lambda: tc.distribute.get_replica_context().all_reduce("sum", tc.ones(3)))
    _report({"rank": strategy.rank, "devices": [str(d) for d in strategy.devices], "sum": sums[0].numpy().tolist()})


def _checkpoint(directory: str) -> None:
    """Checkpoints under mpiexec -n 2, each rank given its own directory: only rank 0 writes, and
    restoring sets every rank to rank 0's file, from which training goes on exactly as before."""
    strategy = tc.distribute.MultiWorkerMirroredStrategy("cpu")
    x, y = data()
    with strategy.scope():
        net = model(strategy.rank)
        params = net.parameters()
        opt = OPTIMIZERS["adam"](params)
    mine = os.path.join(directory, f"rank{strategy.rank}")
    manager = tc.train.CheckpointManager(tc.train.Checkpoint(model=net, optimizer=opt), mine)

    def step(s: int) -> list[np.ndarray]:
        def replica_step(xb: Any, yb: Any) -> None:
            with tc.GradientTape() as tape:
                loss = F.cross_entropy(net(xb), yb)
            opt.step(tape.gradient(loss, params))

        strategy.run(replica_step, strategy.split(x[batch_rows(s, 24)], y[batch_rows(s, 24)]))
        return [p.numpy().copy() for p in params]

    step(0)
    saved = [p.numpy().copy() for p in params]
    path = manager.save()
    after = step(1)
    restored = manager.restore_latest()
    back = [p.numpy().copy() for p in params]
    strategy.check_in_sync()
    again = step(1)
    _report({"rank": strategy.rank, "files": sorted(os.listdir(mine)) if os.path.isdir(mine) else None,
             "path": path, "restored": restored, "restore_diff": max_difference(back, saved),
             "resume_diff": max_difference(again, after), "moved": max_difference(after, saved)})


if __name__ == "__main__":
    scenario, args = sys.argv[1], sys.argv[2:]
    if scenario in ("oracle", "mpi-oracle"):
        _report(_oracle(*args[:4], multi_worker=scenario == "mpi-oracle"))
    elif scenario == "uneven-nodes":
        _uneven_nodes()
    elif scenario == "per-rank-data":
        _per_rank_data()
    elif scenario == "all-reduce-gradient":
        _all_reduce_gradient(*args)
    elif scenario == "checkpoint":
        _checkpoint(*args)
    elif scenario == "checkpoint-random-streams":
        _checkpoint_random_streams(*args)
    elif scenario == "restore-one-process-file":
        _restore_one_process_file(*args)
    else:
        _faults(scenario)
