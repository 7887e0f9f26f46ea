"""tensorcore.distribute: collectives and data-parallel training throughput.

Run: ``tensorcore bench distribute`` (``--rounds N``, ``--quick``, ``--only PART``, ``--json
FILE``). Three parts, each in fresh processes, because the OpenCL device count and threads are
fixed when PoCL starts:

1. all-reduce of float32 buffers between 2 MPI ranks (``mpiexec -n 2``): tensorcore's checked
   collective (``MPIComm.all_reduce``) and a replica's ``all_reduce`` inside ``strategy.run``,
   against raw mpi4py ``Allreduce`` on NumPy buffers; latency and bus bandwidth;
2. the in-process all-reduce of ``opencl:0`` and ``opencl:1`` (two PoCL devices, which share
   one pool of 2 threads) against NumPy adding the same two buffers;
3. training throughput of the MLP 784-512-512-10, global batch 256, on PoCL with 2 threads in
   all: 1 replica (one 2-thread device), 2 replicas in one process, 2 MPI ranks; each
   distributed configuration also runs as its ceiling, the same replicas training
   independently with no all-reduce, so that what distribution itself costs shows apart
   from what splitting the batch over two smaller devices costs.

Cases alternate within each round; figures are medians over rounds, timed by
``tc.bench.interleaved`` with a fixed count of samples (under MPI every rank must make the same
calls, so nothing is calibrated from timings).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

KIB, MIB = 1 << 10, 1 << 20
SIZES = [4 * KIB * 4**k for k in range(8)]  # 4 KiB .. 64 MiB
MLP_SIZES = (784, 512, 512, 10)


def _fmt_size(nbytes: int) -> str:
    return f"{nbytes // MIB} MiB" if nbytes >= MIB else f"{nbytes // KIB} KiB"


def _repeats(nbytes: int) -> int:
    return int(min(200, max(3, (16 * MIB) // nbytes)))


# --- part 1: MPI all-reduce (run under mpiexec -n 2) ----------------------------------------


def mpi_cases(world: Any, comm: Any, strategy: Any, nbytes: int, k: int) -> dict[str, Callable[[], None]]:
    """``k`` all-reduces of ``nbytes`` of float32: raw mpi4py, tensorcore's checked collective,
    and a replica's all_reduce inside ``strategy.run``."""
    from mpi4py import MPI

    import tensorcore as tc

    n = nbytes // 4
    raw_buf, ours_buf, x = np.ones(n, np.float32), np.ones(n, np.float32), tc.ones(n)
    description = (("buffer", (n,), "float32"),)

    def raw() -> None:
        for _ in range(k):
            world.Allreduce(MPI.IN_PLACE, raw_buf, op=MPI.SUM)

    def checked() -> None:
        for _ in range(k):
            comm.all_reduce(ours_buf, "benchmark", description)

    def replica() -> None:
        strategy.run(lambda: [tc.distribute.get_replica_context().all_reduce("sum", x) for _ in range(k)])

    return {"mpi4py": raw, "tensorcore": checked, "replica": replica}


def part_mpi(rounds: int, sizes: Sequence[int]) -> None:
    from mpi4py import MPI

    import tensorcore as tc
    from tensorcore.distribute.mpi import MPIComm

    world = MPI.COMM_WORLD
    comm = MPIComm()
    strategy = tc.distribute.MultiWorkerMirroredStrategy("cpu")
    results = []
    for nbytes in sizes:
        k = _repeats(nbytes)
        # Both ranks must make the same calls: a fixed count of samples of one block each, no
        # calibration or warm-up blocks (timing-driven, they could differ between the ranks);
        # the ranks meet before every block.
        timings = tc.bench.interleaved(mpi_cases(world, comm, strategy, nbytes, k), budget=0, warmup=0,
                                       rounds=rounds, rest=0, min_repeats=rounds, number=1, setup=world.Barrier)
        results.append({"bytes": nbytes, **{c: t.median / k for c, t in timings.items()}})
    if world.Get_rank() == 0:
        print(json.dumps({"mpi": results}), flush=True)


# --- part 2: in-process all-reduce of two PoCL devices --------------------------------------


def local_cases(strategy: Any, nbytes: int, k: int) -> dict[str, Callable[[], None]]:
    """``k`` sums of two float32 buffers of ``nbytes``: NumPy's add on the host, and the
    all-reduce of one tensor on each of the strategy's two devices."""
    import tensorcore as tc

    n = nbytes // 4
    a, b, c = np.ones(n, np.float32), np.full(n, 2.0, np.float32), np.empty(n, np.float32)
    xs = tc.distribute.PerReplica([tc.asarray(a, device=strategy.devices[0]), tc.asarray(b, device=strategy.devices[1])])

    def numpy_add() -> None:
        for _ in range(k):
            np.add(a, b, out=c)

    def body(x: Any) -> Any:
        ctx = tc.distribute.get_replica_context()
        out = None
        for _ in range(k):
            out = ctx.all_reduce("sum", x)
        return out

    def all_reduce() -> None:
        outs = strategy.run(body, (xs,))
        if float(outs[1][0].item()) != 3.0:
            raise AssertionError("the all-reduce gave a wrong sum")

    return {"numpy": numpy_add, "tensorcore": all_reduce}


def part_local(rounds: int, sizes: Sequence[int]) -> None:
    import tensorcore as tc

    strategy = tc.distribute.MirroredStrategy(["opencl:0", "opencl:1"])
    results = []
    for nbytes in sizes:
        k = _repeats(nbytes)
        # one block of k sums per sample and round, after a rest that lets the other case's threads go idle
        timings = tc.bench.interleaved(local_cases(strategy, nbytes, k), budget=0, warmup=0, rounds=rounds, rest=0.1,
                                       min_repeats=rounds, number=1)
        results.append({"bytes": nbytes, **{c: t.median / k for c, t in timings.items()}})
    print(json.dumps({"local": results}), flush=True)


# --- part 3: MLP training throughput ---------------------------------------------------------


def _traced_if(traced: bool, step: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``step`` as a ``tc.function`` (one graph per step) when ``traced``."""
    import tensorcore as tc

    return tc.function(step) if traced else step


def _single_block(steps: int, traced: bool = False) -> Callable[[], float]:
    """One replica on ``opencl:0`` training on the whole batch."""
    from tensorcore.benchmarks import _mlp

    import tensorcore as tc

    x, y, params = _mlp.problem(0, 256, MLP_SIZES)
    step = _traced_if(traced, _mlp.tensorcore_step_fn(params, lr=0.01, device="opencl:0"))
    tx, ty = tc.asarray(x, device="opencl:0"), tc.asarray(y, device="opencl:0")

    def block() -> float:
        loss = None
        for _ in range(steps):
            loss = step(tx, ty)
        return float(loss.item())

    return block


def _strategy_block(steps: int, replicas: int, multi_worker: bool, traced: bool = False) -> Callable[[], float]:
    """Data-parallel training: ``replicas`` PoCL devices in this process, or one per MPI rank."""
    from tensorcore.benchmarks import _mlp

    import tensorcore as tc

    x, y, params = _mlp.problem(0, 256, MLP_SIZES)
    if multi_worker:
        strategy = tc.distribute.MultiWorkerMirroredStrategy("opencl:0")
    else:
        strategy = tc.distribute.MirroredStrategy([f"opencl:{i}" for i in range(replicas)])
    with strategy.scope():
        step = _traced_if(traced, _mlp.tensorcore_step_fn(params, lr=0.01))
    xs, ys = strategy.split(x, y)

    def block() -> float:
        loss = None
        for _ in range(steps):
            loss = strategy.run(step, (xs, ys))
        return float(strategy.reduce("mean", loss).item())

    return block


def _independent_block(steps: int, replicas: int, multi_worker: bool, traced: bool = False) -> Callable[[], float]:
    """The ceiling of data parallelism here: each replica (a thread, or an MPI rank on
    ``opencl:0``) trains its own copy on its share of the batch, with no all-reduce and no
    meeting between steps."""
    import threading

    from tensorcore.benchmarks import _mlp

    import tensorcore as tc
    from tensorcore.distribute import replicas as replica_threads

    x, y, params = _mlp.problem(0, 256, MLP_SIZES)
    if multi_worker:
        from mpi4py import MPI

        world = MPI.COMM_WORLD
        shard = slice(world.rank * 256 // world.size, (world.rank + 1) * 256 // world.size)
        step = _traced_if(traced, _mlp.tensorcore_step_fn(params, lr=0.01, device="opencl:0"))
        tx, ty = tc.asarray(x[shard], device="opencl:0"), tc.asarray(y[shard], device="opencl:0")

        def block() -> float:
            world.Barrier()  # the ranks start each block together
            loss = None
            for _ in range(steps):
                loss = step(tx, ty)
            return float(loss.item())

        return block

    cuts = [i * 256 // replicas for i in range(replicas + 1)]
    devices = [f"opencl:{i}" for i in range(replicas)]
    step_fns = [_traced_if(traced, _mlp.tensorcore_step_fn(params, lr=0.01, device=d)) for d in devices]
    data = [(tc.asarray(x[a:b], device=d), tc.asarray(y[a:b], device=d)) for a, b, d in zip(cuts, cuts[1:], devices)]

    def train(i: int, losses: list[float]) -> None:
        loss = None
        for _ in range(steps):
            loss = step_fns[i](*data[i])
        losses[i] = float(loss.item())

    def block() -> float:
        losses = [0.0] * replicas
        threads = [threading.Thread(target=train, args=(i, losses)) for i in range(replicas)]
        with replica_threads.quick_thread_switching():  # as strategy.run does
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        return sum(losses) / replicas

    return block


def part_mlp(steps: int, blocks: int, replicas: int, multi_worker: bool, independent: bool = False,
             traced: bool = False) -> None:
    """Time ``blocks`` blocks of ``steps`` training steps in one configuration; print the
    median seconds per step (rank 0)."""
    if independent:
        block = _independent_block(steps, replicas, multi_worker, traced)
    elif multi_worker or replicas > 1:
        block = _strategy_block(steps, replicas, multi_worker, traced)
    else:
        block = _single_block(steps, traced)
    import tensorcore as tc

    # the first call warms up (kernels, pools); then a fixed count of blocks, the same on every rank
    timing = tc.bench.interleaved({"mlp": block}, budget=0, warmup=0, rounds=1, rest=0, min_repeats=blocks, number=1)
    if multi_worker:
        from mpi4py import MPI

        if MPI.COMM_WORLD.rank != 0:
            return
    print(json.dumps({"mlp_step_seconds": timing["mlp"].median / steps}), flush=True)


# --- the driver --------------------------------------------------------------------------------


def _mpiexec() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.path.exists(beside) else "mpiexec"


def _child(args: list[str], env: dict[str, str], mpi: bool = False, timeout: float = 1800) -> dict:
    command = [sys.executable, "-m", "tensorcore.benchmarks.distribute", *args]
    if mpi:
        command = [_mpiexec(), "-n", "2", *command]
    out = subprocess.run(command, env=dict(os.environ, **env), capture_output=True, text=True, timeout=timeout)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark part {' '.join(args)} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(lines[-1])


POCL_ONE = {"POCL_DEVICES": "pthread", "POCL_MAX_PTHREAD_COUNT": "2"}
# PoCL's pthread devices in one process share one pool of POCL_MAX_PTHREAD_COUNT threads.
POCL_TWO = {"POCL_DEVICES": "pthread pthread", "POCL_MAX_PTHREAD_COUNT": "2"}
POCL_RANK = {"POCL_DEVICES": "pthread", "POCL_MAX_PTHREAD_COUNT": "1", "OMP_NUM_THREADS": "1"}


PARTS = ("mpi", "local", "mlp")


def drive(rounds: int, quick: bool, parts: Sequence[str] = PARTS, traced: bool = False) -> dict[str, Any]:
    """Run ``parts`` (each in child processes) and print their tables; the results, as
    ``--json`` writes them (seconds; the MLP part's samples per configuration)."""
    sizes = SIZES[:5] if quick else SIZES
    size_args = ["--sizes", ",".join(str(s) for s in sizes), "--rounds", str(rounds)]
    print(f"tensorcore bench distribute: medians of {rounds} interleaved rounds; CPU: {_cpu()}")
    results: dict[str, Any] = {"cpu": _cpu(), "rounds": rounds, "quick": quick}
    if "mpi" in parts:
        results["mpi"] = _part_mpi(size_args)
    if "local" in parts:
        results["local"] = _part_local(size_args)
    if "mlp" in parts:
        results["mlp"] = _part_mlp(rounds, quick, traced)
    return results


def _part_mpi(size_args: list[str]) -> list[dict[str, Any]]:
    mpi = _child(["--part", "mpi", *size_args], {"OMP_NUM_THREADS": "1"}, mpi=True)["mpi"]
    print("\n1. all-reduce, float32, 2 MPI ranks on this machine (bus bandwidth = bytes / time for 2 ranks)")
    print(f"{'size':>8} {'mpi4py Allreduce':>22} {'tensorcore (checked)':>24} {'ratio':>6} {'replica all_reduce':>22} {'ratio':>6}")
    for r in mpi:
        gbs = {c: r["bytes"] / r[c] / 1e9 for c in ("mpi4py", "tensorcore", "replica")}
        print(f"{_fmt_size(r['bytes']):>8} {r['mpi4py'] * 1e6:9.1f} us {gbs['mpi4py']:6.2f} GB/s "
              f"{r['tensorcore'] * 1e6:9.1f} us {gbs['tensorcore']:6.2f} GB/s {r['mpi4py'] / r['tensorcore']:5.2f}x "
              f"{r['replica'] * 1e6:9.1f} us {gbs['replica']:6.2f} GB/s {r['mpi4py'] / r['replica']:5.2f}x")
    return mpi


def _part_local(size_args: list[str]) -> list[dict[str, Any]]:
    local = _child(["--part", "local", *size_args], POCL_TWO)["local"]
    print("\n2. in-process all-reduce of opencl:0 and opencl:1 (PoCL, one pool of 2 threads) against NumPy's add of the two buffers")
    print(f"{'size':>8} {'numpy add':>12} {'tensorcore':>12} {'ratio':>6}")
    for r in local:
        print(f"{_fmt_size(r['bytes']):>8} {r['numpy'] * 1e6:9.1f} us {r['tensorcore'] * 1e6:9.1f} us {r['numpy'] / r['tensorcore']:5.2f}x")
    return local


# Each distributed configuration beside its ceiling: the same replicas training independently
# (no all-reduce, no meeting between steps), so the ratio of the two is what distribution costs.
MLP_CONFIGS = {  # name: (child arguments, environment, under mpiexec, the ceiling's name or None)
    "1 replica (opencl:0, 2 threads)": (["--replicas", "1"], POCL_ONE, False, None),
    "2 replicas in process (opencl:0,1, one pool of 2 threads)":
        (["--replicas", "2"], POCL_TWO, False, "  ceiling: 2 independent threads, no all-reduce"),
    "  ceiling: 2 independent threads, no all-reduce": (["--replicas", "2", "--independent"], POCL_TWO, False, None),
    "2 MPI ranks (opencl:0 each, 1 thread each)":
        (["--multi-worker"], POCL_RANK, True, "  ceiling: 2 independent ranks, no all-reduce"),
    "  ceiling: 2 independent ranks, no all-reduce": (["--multi-worker", "--independent"], POCL_RANK, True, None),
}


def _part_mlp(rounds: int, quick: bool, traced: bool = False) -> dict[str, list[float]]:
    steps, blocks = (5, 3) if quick else (20, 5)
    mlp_args = ["--part", "mlp", "--steps", str(steps), "--blocks", str(blocks)] + (["--traced"] if traced else [])
    samples: dict[str, list[float]] = {c: [] for c in MLP_CONFIGS}
    for _ in range(max(1, rounds // 2) if not quick else 1):
        for name, (args, env, mpi, _) in MLP_CONFIGS.items():
            samples[name].append(_child([*mlp_args, *args], env, mpi=mpi)["mlp_step_seconds"])
    median = {name: statistics.median(values) for name, values in samples.items()}
    base = median[next(iter(MLP_CONFIGS))]
    print(f"\n3. MLP 784-512-512-10 training step, global batch 256, SGD, 2 threads in all, {'traced' if traced else 'eager'}")
    for name, (_, _, _, ceiling) in MLP_CONFIGS.items():
        t = median[name]
        of_ceiling = f", {median[ceiling] / t:.2f}x of its ceiling" if ceiling else ""
        print(f"{name:>58}: {t * 1e3:7.2f} ms/step, {256 / t:8.0f} examples/s -> {base / t:.2f}x of 1 replica{of_ceiling}")
    return samples


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        name = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        family = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("cpu family"))
        return f"{name}, family {family}, {os.cpu_count()} cores"
    except (OSError, StopIteration):
        return f"{os.cpu_count()} cores"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (the driver), or one part of it in a child process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of each case (medians)")
    parser.add_argument("--quick", action="store_true", help="small sizes and few rounds, for a smoke test")
    parser.add_argument("--only", action="append", choices=PARTS, default=None,
                        help="run only this part (repeatable): mpi (all-reduce over 2 ranks), local (in-process "
                             "all-reduce), mlp (training throughput); None: all three")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
    # How the driver runs each part in its own process (each part needs its own environment:
    # mpiexec, POCL_DEVICES); also for timing one part alone, as docs/performance.md does.
    parser.add_argument("--part", choices=["mpi", "local", "mlp"],
                        help="run one part in this process, as the driver runs it (set its environment yourself: "
                             "mpiexec -n 2 for mpi, POCL_DEVICES='pthread pthread' for local)")
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES),
                        help="with --part mpi or local: buffer sizes in bytes, comma-separated")
    parser.add_argument("--steps", type=int, default=20, help="with --part mlp: steps per timed block")
    parser.add_argument("--blocks", type=int, default=5, help="with --part mlp: timed blocks (medians)")
    parser.add_argument("--replicas", type=int, default=1, help="with --part mlp: replicas in this process (opencl:0..)")
    parser.add_argument("--multi-worker", action="store_true",
                        help="with --part mlp, under mpiexec: one replica per rank (MultiWorkerMirroredStrategy)")
    parser.add_argument("--independent", action="store_true",
                        help="with --part mlp: the ceiling, the same replicas training apart with no all-reduce")
    parser.add_argument("--traced", action="store_true",
                        help="part 3: every configuration runs its step as a tc.function (one graph per step)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.part == "mpi":
        part_mpi(args.rounds, sizes)
    elif args.part == "local":
        part_local(args.rounds, sizes)
    elif args.part == "mlp":
        part_mlp(args.steps, args.blocks, args.replicas, args.multi_worker, args.independent, args.traced)
    else:
        results = drive(args.rounds, args.quick, args.only or PARTS, args.traced)
        if args.json is not None:
            args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
