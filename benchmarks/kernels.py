"""Kernel benchmarks: any op, size and device, against the device's measured peak and the reference library.

Run: ``tensorcore bench kernels`` (``--device``, ``--op``, ``--size``, ``--json``, ``--plot``, ...).
Each case is checked against the reference once (under strict placement: no silent CPU
fallback), then timed interleaved with it by ``tc.bench.interleaved``: rounds alternate the
two, each side rests, warms and then samples, and every tensorcore sample waits for the
device. Device seconds come from CUDA events, and from OpenCL markers: this command starts the
OpenCL backend with ``TENSORCORE_OPENCL_PROFILING=1`` (in a child process if the backend had
already started without it). The default suite is every op with a hand-written case
(``kernel_cases.py``, ``kernel_cases_nn.py``); ``--op NAME`` also takes any elementwise op or
reduction of the op table (``kernel_cases_generic.py``). ``docs/benchmarks.md`` explains the
method, the fields and the plot.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("POCL_MAX_PTHREAD_COUNT", "2")  # must precede the OpenCL driver's start

import numpy as np  # noqa: E402
from tensorcore.benchmarks import kernel_cases_generic as generic  # noqa: E402
from tensorcore.benchmarks import kernel_report as report  # noqa: E402
from tensorcore.benchmarks import peak as peaks  # noqa: E402
from tensorcore.benchmarks.kernel_cases import ALIASES, SIZES, CheckOnly, Env, OpSpec  # noqa: E402
from tensorcore.benchmarks.kernel_cases import OPS as CORE_OPS  # noqa: E402
from tensorcore.benchmarks.kernel_cases_nn import NN_OPS  # noqa: E402

#: The ops with a hand-written case: the default suite, in this order.
OPS: dict[str, OpSpec] = {**CORE_OPS, **NN_OPS}

DEFAULT_SIZES = ("small", "medium")
PROFILING_ENV = "TENSORCORE_OPENCL_PROFILING"  # read by the OpenCL backend when it starts


def spec_of(name: str) -> OpSpec:
    """The case of op ``name``: its hand-written one, else the generic one (ValueError if none)."""
    return OPS[name] if name in OPS else generic.spec(name)


def _op_name(text: str) -> str:
    """``--op``: a hand-written case, an alias, or an op of the op table the generic builder benches."""
    from tensorcore.ops.registry import OPS as OP_TABLE

    name = ALIASES.get(text, text)
    if name in OPS:
        return name
    if name not in OP_TABLE:
        raise argparse.ArgumentTypeError(
            f"unknown op {text!r}; choose from {', '.join(OPS)} (aliases: {', '.join(f'{a}={b}' for a, b in ALIASES.items())}), "
            f"or an elementwise op or reduction of the op table: {', '.join(generic.generic_ops())}")
    try:
        spec_of(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name


DTYPES = ("float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8")


def _shape(text: str) -> tuple[int, ...]:
    """``--shape 512x512x512``: positive numbers joined by ``x``."""
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"bad shape {text!r}: give positive numbers joined by 'x', e.g. 512x512x512")
    return shape


def sizes_of(spec: OpSpec, presets: Sequence[str], shapes: Sequence[tuple[int, ...]] | None) -> list[tuple[str, tuple[int, ...]]]:
    """(label, shape) of each case of ``spec``: the ``--shape`` values with as many numbers as
    the op's parameters, else the presets. An op no given shape fits is an error naming them."""
    if not shapes:
        return [(size, spec.sizes[size]) for size in presets]
    arity = len(next(iter(spec.sizes.values())))
    fitting = [("x".join(map(str, s)), s) for s in shapes if len(s) == arity]
    if not fitting:
        raise ValueError(f"--shape: no shape given fits {spec.name}, which takes {arity} number(s): {spec.params}; "
                         f"got {', '.join('x'.join(map(str, s)) for s in shapes)}")
    return fitting


def build_parser() -> argparse.ArgumentParser:
    """The options of ``tensorcore bench kernels``."""
    p = argparse.ArgumentParser(
        prog="tensorcore bench kernels", description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog=f"ops: {', '.join(f'{n} ({s.params})' for n, s in OPS.items())}. Any other elementwise op or reduction "
               "of the op table (tc.atan2, tc.prod, ...) runs too, with --op NAME: a generic case on vectors of n elements, "
               "against the NumPy function of the same name.")
    p.add_argument("--device", action="append", default=None, help="a device (repeatable); None: every available device")
    p.add_argument("--op", action="append", type=_op_name, default=None, metavar="OP",
                   help=f"an op (repeatable); None: all of {', '.join(OPS)}; or any elementwise op or reduction of the op "
                        "table (a generic case)")
    p.add_argument("--size", action="append", choices=SIZES, default=None,
                   help=f"a size preset of each op (repeatable); None: {' and '.join(DEFAULT_SIZES)}")
    p.add_argument("--shape", action="append", type=_shape, default=None, metavar="AxBx...",
                   help="an explicit size (repeatable) instead of the presets: each op takes the shapes with as many "
                        "numbers as its parameters (listed below)")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="the data type (ops without that kind of dtype are skipped, saying so)")
    p.add_argument("--budget", type=float, default=0.3, help="seconds of samples per case and side")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds the budget is split into")
    p.add_argument("--rest", type=float, default=0.15, help="seconds of rest before each side's round (OpenBLAS spins ~0.1 s)")
    p.add_argument("--warmup", type=float, default=0.05, help="seconds of untimed calls after each rest")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the records as JSON")
    p.add_argument("--csv", type=Path, default=None, metavar="FILE", help="write the records as CSV")
    p.add_argument("--compare", type=Path, default=None, metavar="OLD.json",
                   help="flag cases slower than in OLD.json beyond the noise (exit status 1 if any)")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                   help="draw the roofline and the ratios to the reference (needs matplotlib: pip install 'tensorcore[plot]')")
    p.add_argument("--input", type=Path, default=None, metavar="FILE.json",
                   help="run nothing: read the records of an earlier --json run (for --compare, --csv, --plot)")
    p.add_argument("--no-peak", action="store_true", help="skip the peak probe (no fraction of peak)")
    p.add_argument("--no-device-timers", action="store_true",
                   help="leave OpenCL profiling off (no device seconds on opencl devices; CUDA events are always read)")
    p.add_argument("--peak-file", type=Path, default=None,
                   help="the peak cache (None: $XDG_CACHE_HOME/tensorcore/peak.json, else ~/.cache/tensorcore/peak.json)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def git_commit() -> str | None:
    """The commit of the tensorcore source tree (``-dirty`` if changed), or None if not a checkout."""
    import tensorcore

    root = Path(tensorcore.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


def host_cpu() -> str:
    """The host CPU's model, family and model number (figures do not carry across CPUs)."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
    except OSError:
        import platform

        return platform.processor() or platform.machine()
    get = {k.strip(): v.strip() for k, v in fields.items()}.get
    return f"{get('model name', '?')} (family {get('cpu family', '?')}, model {get('model', '?')}, {os.cpu_count()} cpus)"


def reference(device: str) -> tuple[str, str, Any, Any, Any]:
    """The reference library of ``device``'s hardware: name, version, array module, what to
    wait for, and its device clock (CUDA events on CuPy's current stream; None for NumPy)."""
    import tensorcore as tc
    from tensorcore.device import resolve

    dev = resolve(device)
    if dev.type == "cuda":
        import cupy

        cupy.cuda.Device(dev.index).use()  # the reference's arrays and kernels go to the same GPU
        timer = tc.bench.CUDAEvents(cupy, dev.index, cupy.cuda.get_current_stream)
        return "cupy", cupy.__version__, cupy, cupy.cuda.Device(dev.index).synchronize, timer
    return "numpy", np.__version__, np, "cpu", None  # NumPy/OpenBLAS on the host CPU


def to_host(value: Any) -> np.ndarray:
    """A result as a NumPy array: a tensor read back, a CuPy array copied, a NumPy one as is."""
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        return np.asarray(value.numpy())
    if hasattr(value, "get") and not isinstance(value, (np.ndarray, dict)):
        return np.asarray(value.get())
    return np.asarray(value)


def check(name: str, ours: Any, theirs: Any) -> None:
    """Raise AssertionError unless the two results agree (a fast wrong kernel is no result):
    integers exactly, floats within a tolerance of their precision; a tuple of results
    (conv2d's two gradients) item by item."""
    if isinstance(theirs, tuple):
        if not isinstance(ours, tuple) or len(ours) != len(theirs):
            raise AssertionError(f"{name}: tensorcore gives {type(ours).__name__}, the reference {len(theirs)} results")
        for i, (one, other) in enumerate(zip(ours, theirs)):
            check(f"{name} (result {i})", one, other)
        return
    a, b = to_host(ours), to_host(theirs)
    scale = float(np.max(np.abs(b))) if b.size else 1.0
    tol = 1e-2 if b.dtype == np.float16 else 1e-3
    same = np.array_equal(a, b) if b.dtype.kind in "iub" else np.allclose(a, b, rtol=tol, atol=tol * max(1.0, scale))
    if a.shape != b.shape or not same:
        raise AssertionError(f"{name}: tensorcore and the reference disagree (shapes {a.shape}, {b.shape}; "
                             f"max difference {np.max(np.abs(a - b)) if a.shape == b.shape else 'n/a'})")


def _figures(spec: OpSpec, shape: tuple[int, ...], itemsize: int, median: float, peak: Any) -> dict[str, Any]:
    """Throughput, intensity and the fraction of the roofline's bound at that intensity."""
    cost = spec.cost(shape, itemsize)
    out: dict[str, Any] = {"flops": cost.flops, "bytes": cost.bytes, "intensity": cost.intensity,
                           "flop_per_s": cost.flops / median if cost.flops else None, "bytes_per_s": cost.bytes / median}
    if peak is not None:
        compute_bound = cost.flops and cost.intensity * peak.bytes_per_s >= peak.flop_per_s
        out["bound"] = "compute" if compute_bound else "memory"
        attainable = min(peak.flop_per_s, cost.intensity * peak.bytes_per_s) if cost.flops else peak.bytes_per_s
        out["fraction_of_peak"] = (out["flop_per_s"] if cost.flops else out["bytes_per_s"]) / attainable
    return out


def run_case(spec: OpSpec, size: str, shape: tuple[int, ...], device: str, args: argparse.Namespace,
             base: dict[str, Any], peak: Any) -> dict[str, Any]:
    """Check and time one case (``size`` labels ``shape``) against the reference; its record
    (with ``error`` if it could not run)."""
    import tensorcore as tc

    rec = dict.fromkeys(report.FIELDS) | base | {"op": spec.name, "size": size, "shape": list(shape), "params": spec.params}
    if peak is not None:
        rec |= {"peak_flop_per_s": peak.flop_per_s, "peak_bytes_per_s": peak.bytes_per_s}
    name, version, xp, wait, ref_timer = reference(device)
    rec |= {"reference": name, "reference_version": version}
    try:
        env = Env(device, np.dtype(args.dtype), xp, np.random.default_rng(0))
        ours, theirs = spec.build(shape, env)
        with tc.placement.placement_policy("strict"):  # a case that would fall back to cpu is no result
            check(spec.name, ours(), theirs())
        cases = {"tc": ours} if isinstance(theirs, CheckOnly) else {"tc": ours, "ref": theirs}
        t = tc.bench.interleaved(cases, devices={"tc": device, "ref": wait}, timers={"ref": ref_timer},
                                 budget=args.budget, warmup=args.warmup, rounds=args.rounds, rest=args.rest)
    except Exception as exc:  # noqa: BLE001 - one case's failure must not end a long run; it is recorded
        rec["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return rec
    ours_t = t["tc"]
    rec |= {"median_s": ours_t.median, "iqr_s": ours_t.iqr, "min_s": ours_t.min, "repeats": ours_t.repeats,
            "calls_per_repeat": ours_t.number, "device_median_s": ours_t.device_median, "device_iqr_s": ours_t.device_iqr}
    if "ref" in t:
        ref_t = t["ref"]
        rec |= {"reference_median_s": ref_t.median, "reference_iqr_s": ref_t.iqr, "ratio": ref_t.median / ours_t.median,
                "reference_device_median_s": ref_t.device_median}
    else:  # checked against the op on cpu, not timed: no reference to name
        rec |= {"reference": None, "reference_version": None}
    return rec | _figures(spec, shape, np.dtype(args.dtype).itemsize, ours_t.median, peak)


def run(args: argparse.Namespace, devices: list[str], say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every case of ``args`` on ``devices``, with a progress bar; the records."""
    from tqdm import tqdm

    import tensorcore as tc

    ops = [op for op in args.op or list(OPS) if spec_of(op).takes(args.dtype)]
    skipped = [op for op in args.op or list(OPS) if op not in ops]
    if skipped:
        say(f"not benchmarked in {args.dtype}: {', '.join(skipped)}")
    sizes = {op: sizes_of(spec_of(op), args.size or list(DEFAULT_SIZES), args.shape) for op in ops}
    common = {"dtype": args.dtype, "host_cpu": host_cpu(), "tensorcore_version": tc.__version__, "git_commit": git_commit()}
    device_peaks, bases = {}, {}
    for d in devices:
        info = peaks.device_info(d)
        bases[d] = common | {"device": str(info.device), "device_name": info.name, "driver": peaks.driver(d)}
        device_peaks[d] = None if args.no_peak else peaks.lookup(d, args.peak_file)
        if device_peaks[d] is not None:
            say(f"{d} peak: {device_peaks[d].flop_per_s / 1e9:.1f} GFLOP/s, {device_peaks[d].bytes_per_s / 1e9:.1f} GB/s "
                f"(measured {device_peaks[d].measured}; `tensorcore bench peak` shows how)")
    say(report.table_header())
    records = []
    cases = [(d, op, size, shape) for d in devices for op in ops for size, shape in sizes[op]]
    with tqdm(cases, desc="kernels", unit="case", disable=args.no_progress, file=sys.stderr) as bar:
        for d, op, size, shape in bar:
            bar.set_postfix_str(f"{op} {size} on {d}")
            records.append(run_case(spec_of(op), size, shape, d, args, bases[d], device_peaks[d]))
            bar.write(report.table_row(records[-1]), file=sys.stdout)
    return records


def opencl_profiling(args: argparse.Namespace, argv: Sequence[str]) -> int | None:
    """Make OpenCL queues record device time for this run. Before the backend starts, set
    ``TENSORCORE_OPENCL_PROFILING=1`` (read when it starts; no PoCL thread exists yet to race
    the change). If it started without it and an opencl device is to run, run this command
    again in a child process that starts it with profiling: the child's exit status. None:
    carry on in this process."""
    from tensorcore import registry

    if args.input is not None or args.no_device_timers or os.environ.get(PROFILING_ENV) == "0":
        return None
    if not any(e.name == "opencl" for e in registry.loaded_entries()):
        os.environ[PROFILING_ENV] = "1"
        return None
    import tensorcore as tc

    try:
        wanted = [str(peaks.device_info(d).device) for d in args.device or peaks.available_devices()]
    except ValueError:
        return None  # the run itself reports the bad device
    if all(tc.Device(d).type != "opencl" or tc.bench.device_timer(d) is not None for d in wanted):
        return None
    child = subprocess.Popen([sys.executable, "-m", "tensorcore", "bench", "kernels", *argv], stdout=subprocess.PIPE,
                             text=True, env={**os.environ, PROFILING_ENV: "1", "PYTHONUNBUFFERED": "1"})  # not os.environ itself
    for line in child.stdout:  # through this process's stdout, which may be redirected
        sys.stdout.write(line)
    return child.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run (or read) the cases, print the table, write the files; 1 if --compare found a slower case."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib, which is not installed: pip install 'tensorcore[plot]'")
    if args.budget <= 0 or args.rounds < 1:
        parser.error("--budget must be positive and --rounds at least 1")
    try:  # a bad --compare file is found before a long run, not after it
        old = report.read_json(args.compare) if args.compare else None
    except ValueError as exc:
        parser.error(str(exc))
    try:  # a --shape that fits no selected op, or ops without the --dtype, are found before a long run
        taking = [op for op in args.op or list(OPS) if spec_of(op).takes(args.dtype)]
        if not taking:
            raise ValueError(f"--dtype {args.dtype}: none of {', '.join(args.op or OPS)} is benchmarked in it; "
                             f"ops with integer forms: {', '.join(n for n, s in OPS.items() if s.takes(np.dtype('int32')))}")
        for op in taking:
            sizes_of(spec_of(op), args.size or list(DEFAULT_SIZES), args.shape)
    except ValueError as exc:
        parser.error(str(exc))
    status = opencl_profiling(args, argv)
    if status is not None:
        return status
    if args.input is not None:
        records = report.read_json(args.input)
        print("\n".join([report.table_header(), *map(report.table_row, records)]))
    else:
        devices = args.device or peaks.available_devices()
        try:
            devices = list(dict.fromkeys(str(peaks.device_info(d).device) for d in devices))  # cpu = cpu:0
        except ValueError as exc:
            parser.error(str(exc))
        records = run(args, devices, print)
    if args.json:
        report.write_json(args.json, records)
    if args.csv:
        report.write_csv(args.csv, records)
    if args.plot:
        report.plot(args.plot, records)
    status = 0
    if old is not None:
        slower, faster = report.compare(old, records)
        print(f"against {args.compare}: {len(slower)} slower, {len(faster)} faster beyond the noise")
        for line in slower:
            print(f"  slower: {line}")
        for line in faster:
            print(f"  faster: {line}")
        status = 1 if slower else 0
    return status


if __name__ == "__main__":
    raise SystemExit(main())
