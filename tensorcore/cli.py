"""The ``tensorcore`` command: ``devices``, ``train`` and ``bench``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def _format_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_devices(args: argparse.Namespace) -> int:
    """Print a table of backends and devices, with the reason a backend is unavailable."""
    import tensorcore as tc
    from tensorcore import dispatch_checks, registry
    from tensorcore.ops.registry import OPS, native_ops

    rows = [("device", "backend", "name", "memory", "details")]
    for info in tc.devices(all=True):
        if info.available:
            details = ", ".join(f"{k}={v}" for k, v in info.details.items())
            rows.append((str(info.device), info.backend, info.name, _format_bytes(info.memory_bytes), details))
        else:
            rows.append(("-", info.backend, "unavailable", "-", info.reason or ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4])
    print(f"default device: {tc.default_device()}  (TENSORCORE_DEVICE={os.environ.get('TENSORCORE_DEVICE', '')!r}, "
          f"placement policy: {tc.placement.policy()})")
    if args.ops:
        backends = sorted({info.backend for info in tc.devices()})
        for name in backends:
            native = set(native_ops(name))
            composite = sorted(n for n, op in OPS.items() if n not in native and op.composite is not None)
            fallback = sorted(n for n, op in OPS.items() if n not in native and op.composite is None)
            print(f"\n{name}: {len(native)} native ops; {len(composite)} run on the device as compositions "
                  f"of other ops; {len(fallback)} fall back to cpu")
            if composite:
                print("  composite: " + ", ".join(composite))
            if fallback:
                print("  fall back to cpu: " + ", ".join(fallback))
            # True (every op: cpu's NumPy), False, or the set of op names with complex kernels
            declared = True if name == "cpu" else dispatch_checks.complex_ops_of(registry.get_backend(name))
            if declared is not True:
                native_complex = sorted(declared) if declared else []
                print("  complex numbers (complex64, complex128): " + (
                    f"native for {', '.join(native_complex)}; every other op on them falls back to cpu "
                    "(complex128 only where float64 runs)" if native_complex else "every op on them falls back to cpu"))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train the digits CNN and print per-epoch loss/accuracy and the placement summary."""
    from tensorcore import train

    if args.device is not None and args.devices is not None:
        raise ValueError("give either --device (one device) or --devices (data-parallel over several), not both")
    result = train.train(epochs=args.epochs, seed=args.seed, device=args.device, batch_size=args.batch_size,
                         lr=args.lr, progress=not args.no_progress, devices=args.devices,
                         checkpoint_dir=args.checkpoint_dir, resume=args.resume, logdir=args.logdir)
    if result.strategy is None or result.strategy.is_chief:
        print(train.summary(result), flush=True)
    return 0


BENCHMARKS = ("kernels", "peak", "gpu-check", "eager", "graph", "opencl", "cuda", "distribute", "cnn", "host-gemm")


def cmd_bench(args: argparse.Namespace) -> int:
    """Run a benchmark module from ``tensorcore.benchmarks``."""
    import importlib

    module = importlib.import_module(f"tensorcore.benchmarks.{args.name.replace('-', '_')}")
    # A suite whose parser names no prog takes it from sys.argv[0]: without this its --help
    # and errors would say `usage: tensorcore [-h]` instead of `usage: tensorcore bench NAME`.
    argv0, sys.argv[0] = sys.argv[0], f"tensorcore bench {args.name}"
    try:
        return int(module.main(args.rest) or 0)
    finally:
        sys.argv[0] = argv0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tensorcore`` command."""
    parser = argparse.ArgumentParser(prog="tensorcore", description="tensorcore: devices, training and benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("devices", help="list backends and devices")
    p.add_argument("--ops", action="store_true", help="also list, per backend, which ops have native kernels")
    p.set_defaults(run=cmd_devices)
    p = sub.add_parser("train", help="train a small CNN on the bundled digits dataset",
                       description="Train a small CNN on scikit-learn's bundled digits dataset (no download).",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=int, default=20, help="train up to this epoch")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights, dropout and shuffling")
    p.add_argument("--device", default=None, help="e.g. cpu, opencl:0, cuda:0 (None: TENSORCORE_DEVICE, else cpu)")
    p.add_argument("--devices", default=None,
                   help="train data-parallel over these devices, e.g. opencl:0,opencl:1 or cpu,opencl:0 (None: "
                        "TENSORCORE_DEVICES if set; under mpiexec, each process's devices)")
    p.add_argument("--batch-size", type=int, default=32, help="the global batch size")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate at epoch 1 (cosine decay after)")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="save a checkpoint here after each epoch (the newest 3 are kept)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in --checkpoint-dir, up to --epochs")
    p.add_argument("--logdir", default=None, metavar="DIR",
                   help="write loss, accuracy, learning rate and examples/s per epoch here for TensorBoard "
                        "(tensorboard --logdir DIR)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=cmd_train)
    p = sub.add_parser("bench", help="run a benchmark (e.g. `tensorcore bench kernels`; `cuda` needs CuPy and a GPU)",
                       description="Run a benchmark; `tensorcore bench NAME --help` shows its options.")
    p.add_argument("name", choices=BENCHMARKS,
                   help="kernels: any op, size and device against the reference library and the device's "
                        "measured peak; peak: each device's FMA throughput and memory bandwidth; gpu-check: the "
                        "one-command CUDA validation (tests, training, kernels, targets; 8 minutes); the rest: "
                        "fixed suites (docs/performance.md)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    p.set_defaults(run=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tensorcore`` and ``python -m tensorcore``."""
    from tensorcore.distribute import launched_by_mpi
    from tensorcore.errors import GradientError, OpError, PlacementError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (OpError, GradientError):
        raise  # a bug, not a bad setting: keep the traceback
    except (ValueError, PlacementError) as exc:  # a bad device name or an unavailable device
        print(f"tensorcore: error: {exc}", file=sys.stderr)
        if launched_by_mpi():
            raise  # one MPI rank must not return quietly: the abort hook ends the whole job
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
