"""Output of ``tensorcore bench kernels``: the table, JSON and CSV files, ``--compare`` and ``--plot``;
and the JSON records of the fixed suites (``tensorcore bench opencl --json``, ``cuda --json``)."""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORMAT = "tensorcore-bench-kernels/1"

#: Every field of a record, in CSV column order (docs/benchmarks.md explains each).
FIELDS = (
    "op", "size", "shape", "params", "dtype", "device", "device_name", "driver", "host_cpu",
    "median_s", "iqr_s", "min_s", "repeats", "calls_per_repeat", "device_median_s", "device_iqr_s",
    "flops", "bytes", "flop_per_s", "bytes_per_s", "intensity", "peak_flop_per_s", "peak_bytes_per_s", "bound",
    "fraction_of_peak", "reference", "reference_version", "reference_median_s", "reference_iqr_s",
    "reference_device_median_s", "ratio",
    "tensorcore_version", "git_commit", "error",
)


def _rate(value: float | None, unit: str) -> str:
    return "-" if not value else f"{value / 1e9:.3g} {unit}"


def _seconds(value: float | None) -> str:
    from tensorcore.bench import format_seconds

    return "-" if value is None else format_seconds(value)


def table_header() -> str:
    """The column titles of ``table_row``."""
    return (f"{'op':15s} {'size':6s} {'device':9s} {'median':>9s} {'±IQR':>6s} {'on device':>9s} {'GFLOP/s':>9s} "
            f"{'GB/s':>8s} {'of peak':>7s} {'reference':>15s} {'ref/tc':>6s}")


def table_row(r: dict[str, Any]) -> str:
    """One record as a line of the table (an error in place of the figures)."""
    head = f"{r['op']:15s} {r['size']:6s} {r['device']:9s}"
    if r.get("error"):
        return f"{head} not run: {r['error']}"
    iqr = f"{100 * r['iqr_s'] / r['median_s']:.0f}%" if r["median_s"] else "-"
    peak = "-" if r["fraction_of_peak"] is None else f"{100 * r['fraction_of_peak']:.0f}%"
    ref = "-" if r["reference_median_s"] is None else f"{r['reference']} {_seconds(r['reference_median_s'])}"
    ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
    on_device = _seconds(r.get("device_median_s"))  # .get: files written before device timers lack it
    return (f"{head} {_seconds(r['median_s']):>9s} {iqr:>6s} {on_device:>9s} {_rate(r['flop_per_s'], ''):>9s} "
            f"{_rate(r['bytes_per_s'], ''):>8s} {peak:>7s} {ref:>15s} {ratio:>6s}")


def write_json(path: Path, records: Sequence[dict[str, Any]], fmt: str = FORMAT, **meta: Any) -> None:
    """Write ``records`` with the file format's name (``fmt``), the time it was written and ``meta``."""
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    Path(path).write_text(json.dumps({"format": fmt, "created": stamp, **meta, "records": list(records)}, indent=1))


def suite_record(case: str, params: dict[str, Any], seconds: dict[str, float], *, flops: float | None = None,
                 moved: float | None = None, **extra: Any) -> dict[str, Any]:
    """One case of a fixed suite: median seconds per call of each side, and each side's FLOP/s
    (``flops`` per call) or bytes/s (``moved`` bytes per call) where the case has them."""
    rec: dict[str, Any] = {"case": case, "params": params, "seconds": dict(seconds), "flops": flops, "bytes": moved}
    rec["flop_per_s"] = {k: flops / v for k, v in seconds.items()} if flops else None
    rec["bytes_per_s"] = {k: moved / v for k, v in seconds.items()} if moved else None
    return rec | extra


def read_json(path: Path) -> list[dict[str, Any]]:
    """The records of a ``--json`` file; ValueError if it is not one."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read benchmark records from {path}: {exc}") from None
    records = data.get("records") if isinstance(data, dict) else data
    if not isinstance(records, list) or not all(isinstance(r, dict) and "op" in r for r in records):
        raise ValueError(f"{path} is not a `tensorcore bench kernels --json` file")
    return records


def write_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """One row per record, every field a column; shapes written as ``1024x1024``."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for r in records:
            writer.writerow({k: "x".join(map(str, r[k])) if k == "shape" else r.get(k) for k in FIELDS})


def _key(r: dict[str, Any]) -> tuple:
    return r["op"], r["device"], r["dtype"], tuple(r["shape"])


def _relative_iqr(r: dict[str, Any]) -> float:
    return r["iqr_s"] / r["median_s"] if r.get("median_s") else 0.0


def compare(old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Cases that got slower and faster beyond the noise, as lines.

    A case is slower when new median > old median × (1 + max(0.1, 2 × the larger relative IQR
    of the two)), and faster in the mirror case. Cases in only one file, or not run in
    either, are left out.
    """
    before = {_key(r): r for r in old if r.get("median_s")}
    slower, faster = [], []
    for r in new:
        o = before.get(_key(r))
        if o is None or not r.get("median_s"):
            continue
        threshold = 1 + max(0.1, 2 * max(_relative_iqr(o), _relative_iqr(r)))
        line = (f"{r['op']} {'x'.join(map(str, r['shape']))} {r['dtype']} on {r['device']}: "
                f"{_seconds(o['median_s'])} -> {_seconds(r['median_s'])} ({r['median_s'] / o['median_s'] - 1:+.0%}; "
                "noise threshold {:+.0%})")
        if r["median_s"] > o["median_s"] * threshold:
            slower.append(line.format(threshold - 1))
        elif r["median_s"] * threshold < o["median_s"]:
            faster.append(line.format(1 / threshold - 1))
    return slower, faster


def plot(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """A PNG: per device, the roofline (measured ceilings, each case's intensity and FLOP/s) and
    each case's speed against the reference library."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    done = [r for r in records if r.get("median_s")]
    devices = list(dict.fromkeys(r["device"] for r in done))
    if not devices:
        raise ValueError("--plot: no case ran, nothing to plot")
    fig, axes = plt.subplots(len(devices), 2, figsize=(14, 5.5 * len(devices)), squeeze=False)
    for (roof, bars), device in zip(axes, devices):
        rs = [r for r in done if r["device"] == device]
        points = [r for r in rs if r["flops"]]
        flops_peak, bw_peak = rs[0]["peak_flop_per_s"], rs[0]["peak_bytes_per_s"]
        xs = [r["intensity"] for r in points] or [1.0]
        x = np.logspace(np.log10(min(xs)) - 0.5, np.log10(max(xs)) + 0.5, 200)
        if flops_peak and bw_peak:
            roof.loglog(x, np.minimum(flops_peak, x * bw_peak) / 1e9, "k-",
                        label=f"measured: {flops_peak / 1e9:.0f} GFLOP/s, {bw_peak / 1e9:.0f} GB/s")
        for r in points:
            roof.scatter(r["intensity"], r["flop_per_s"] / 1e9, s=20)
            roof.annotate(f"{r['op']} {r['size']}", (r["intensity"], r["flop_per_s"] / 1e9), fontsize=7,
                          xytext=(3, 3), textcoords="offset points")
        roof.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/byte)", ylabel="GFLOP/s",
                 title=f"{device} ({rs[0]['device_name']}): roofline")
        roof.grid(True, which="both", alpha=0.3)
        roof.legend(loc="lower right", fontsize=8)
        memory_only = sorted({r["op"] for r in rs if not r["flops"]})
        if memory_only:
            roof.text(0.02, 0.98, f"no FLOP, not drawn: {', '.join(memory_only)}", transform=roof.transAxes,
                      va="top", fontsize=8)
        ranked = [r for r in rs if r["ratio"]]
        ratios = [r["ratio"] for r in ranked]
        colors = ["tab:green" if x >= 1.1 else "tab:red" if x <= 1 / 1.1 else "tab:gray" for x in ratios]
        bars.barh([f"{r['op']} {r['size']}" for r in ranked], ratios, color=colors)
        for i, x in enumerate(ratios):
            bars.annotate(f"{x:.2f}x", (x, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
        bars.axvline(1.0, color="k", lw=1)
        bars.set(xscale="log", xlabel=f"speed vs {ranked[0]['reference'] if ranked else 'reference'} "
                 "(reference time / tensorcore time; >1: tensorcore faster)", title=f"{device}: against the reference library")
        bars.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%gx"))
        bars.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        bars.invert_yaxis()
        bars.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
