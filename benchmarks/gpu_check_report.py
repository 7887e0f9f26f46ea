"""What ``tensorcore bench gpu-check`` makes of its parts' outputs: test counts and failures
(JUnit XML), the CUDA launchers no test ran (``gpu_check_plugin``), the training run's accuracy, the
kernel cases, the issue-5 targets, and the report as JSON and as markdown for
``docs/gpu-validation.md``. Pure functions of files and dicts: tested without a GPU.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "tensorcore-gpu-check/1"
MAX_LISTED = 20  # failures and launchers listed in the summary, at most


@dataclass
class PartResult:
    """One part's run: how it ended, in how long, against which limit, and what it found."""

    name: str
    what: str
    command: str
    limit_s: float
    status: str  # passed, failed, timed out, skipped
    returncode: int | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    log_tail: str = ""


@dataclass(frozen=True)
class Target:
    """An issue-5 goal on a case of ``tensorcore bench cuda --json``."""

    case: str
    label: str
    goal: float
    measure: str  # "speed": reference seconds / tensorcore seconds; "copy": tensorcore bytes/s / copy bytes/s


TARGETS = (
    Target("sgemm", "SGEMM n=4096 (TF32 off), speed vs cuBLAS", 0.6, "speed"),
    Target("add", "add, 1 GiB operands, bandwidth vs device copy", 0.8, "copy"),
    Target("sum", "sum of 1 GiB, bandwidth vs device copy", 0.8, "copy"),
    Target("softmax", "softmax over rows of 4096 (1 GiB), bandwidth vs device copy", 0.7, "copy"),
    Target("mlp_step", "MLP 784-512-512-10 training step, speed vs CuPy", 1.0, "speed"),
)


def junit_summary(path: Path) -> dict[str, Any]:
    """Counts and the failed tests (id and first line of the message) of a JUnit XML file, and
    apart from them the test modules that could not be collected (a package missing, say)."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failed, uncollected = [], []
    for case in ET.parse(path).getroot().iter("testcase"):
        bad = next((c for c in case if c.tag in ("failure", "error")), None)
        if bad is not None and bad.get("message") == "collection failure":
            why = [line[1:].strip() for line in (bad.text or "").splitlines() if line.startswith("E ")]
            uncollected.append({"module": case.get("name"), "message": why[-1] if why else ""})
        elif bad is not None:
            counts["failed" if bad.tag == "failure" else "errors"] += 1
            message = (bad.get("message") or "").strip()
            failed.append({"test": f"{case.get('classname')}::{case.get('name')}",
                           "message": message.splitlines()[0] if message else ""})
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts | {"failures": failed, "not_collected": uncollected}


def launchers_not_run(counts_json: Path) -> list[str]:
    """The ops whose CUDA launcher no test called on the GPU, per ``gpu_check_plugin``'s file."""
    data = json.loads(Path(counts_json).read_text())
    return [op for op in data["launchers"] if not data["calls"].get(op)]


def train_summary(log: str) -> dict[str, Any]:
    """The device, final accuracy, epochs, seconds and cpu fallbacks that ``tensorcore train`` printed."""
    out: dict[str, Any] = {}
    if m := re.search(r"^device: (\S+)", log, re.M):
        out["device"] = m.group(1)
    if m := re.search(r"final test accuracy: ([\d.]+)% after (\d+) epochs in ([\d.]+) s", log):
        out |= {"accuracy": float(m.group(1)) / 100, "epochs": int(m.group(2)), "train_seconds": float(m.group(3))}
    if m := re.search(r"cpu fallbacks: (.*?); bytes copied", log):
        out["cpu_fallbacks"] = m.group(1)
    return out


def kernels_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Case counts, the cases that could not run, and one short row per case."""
    keys = ("op", "size", "shape", "median_s", "iqr_s", "device_median_s", "flop_per_s", "bytes_per_s",
            "fraction_of_peak", "reference_median_s", "ratio", "error")
    errors = [f"{r['op']} {r['size']}: {r['error']}" for r in records if r.get("error")]
    return {"cases": len(records), "errors": errors, "rows": [{k: r.get(k) for k in keys} for r in records]}


def evaluate_targets(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each issue-5 target: its goal, the measured value (None if the case is missing) and whether it was met."""
    by_case = {r["case"]: r for r in records}
    out = []
    for t in TARGETS:
        r, value, detail = by_case.get(t.case), None, "not measured"
        if r is not None and t.measure == "speed":
            ref = next(k for k in r["seconds"] if k != "tensorcore")
            value = r["seconds"][ref] / r["seconds"]["tensorcore"]
            detail = f"tensorcore {r['seconds']['tensorcore'] * 1e3:.3g} ms, {ref} {r['seconds'][ref] * 1e3:.3g} ms"
        elif r is not None:
            copy = r["copy_bytes_per_s"]
            value = r["bytes_per_s"]["tensorcore"] / copy
            detail = ", ".join(f"{k} {v / 1e9:.0f} GB/s ({v / copy:.2f})" for k, v in r["bytes_per_s"].items())
            detail += f"; copy {copy / 1e9:.0f} GB/s"
        out.append({"case": t.case, "target": t.label, "goal": t.goal, "value": value,
                    "met": value is not None and value >= t.goal, "detail": detail})
    return out


def _part_result_line(p: dict[str, Any]) -> str:
    """A part's findings in a few words, and its note (why a file is missing, say), if any."""
    d, line = p["details"], ""
    if p["name"] == "tests" and "passed" in d:
        line = f"{d['passed']} passed, {d['failed']} failed, {d['errors']} errors, {d['skipped']} skipped"
        if d["not_collected"]:
            line += f"; {len(d['not_collected'])} modules not collected"
        if d.get("launchers_not_run") is not None:
            line += f"; {len(d['launchers_not_run'])} launchers no test ran"
    elif p["name"] == "train" and "accuracy" in d:
        line = (f"{d.get('device')}: {d['accuracy']:.2%} after {d['epochs']} epochs in {d['train_seconds']:.1f} s; "
                f"cpu fallbacks: {d.get('cpu_fallbacks', '?')}")
    elif p["name"] == "kernels" and "cases" in d:
        line = f"{d['cases']} cases, {len(d['errors'])} not run"
    elif p["name"] == "targets" and "targets" in d:
        line = f"{sum(t['met'] for t in d['targets'])} of {len(d['targets'])} targets met"
    return "; ".join(x for x in (line, d.get("note", "")) if x)


def _seconds(value: float | None) -> str:
    from tensorcore.bench import format_seconds

    return "-" if value is None else format_seconds(value)


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown section ready to paste into ``docs/gpu-validation.md``."""
    parts = report["parts"]
    failed = [p["name"] for p in parts if p["status"] != "passed"]
    lines = [f"### GPU check, {report['created'][:10]}: {report['device_name']} ({report['device']})", "",
             f"`tensorcore bench gpu-check` on {report['device_name']} ({report['driver']}); tensorcore "
             f"{report['tensorcore_version']} at `{report['git_commit']}`; host {report['host_cpu']}. "
             f"{report['seconds']:.0f} s of a {report['total_limit_s']:.0f} s limit. "
             + ("**Every part passed.**" if not failed else f"**Not passed: {', '.join(failed)}.**"), "",
             "| part | what | status | time / limit | result |", "|---|---|---|---|---|"]
    for p in parts:
        lines.append(f"| {p['name']} | {p['what']} | {p['status']} | {p['seconds']:.0f} s / {p['limit_s']:.0f} s "
                     f"| {_part_result_line(p)} |")
    targets = next((p["details"].get("targets") for p in parts if p["name"] == "targets"), None)
    if targets:
        lines += ["", "Issue-5 targets (`tensorcore bench cuda`, medians of interleaved rounds):", "",
                  "| target | goal | measured | met | detail |", "|---|---|---|---|---|"]
        for t in targets:
            value = "-" if t["value"] is None else f"{t['value']:.2f}"
            lines.append(f"| {t['target']} | ≥ {t['goal']:.1f} | {value} | {'yes' if t['met'] else '**no**'} "
                         f"| {t['detail']} |")
    tests = next((p["details"] for p in parts if p["name"] == "tests"), {})
    if tests.get("failures"):
        lines += ["", f"Failed tests ({len(tests['failures'])}; the first {MAX_LISTED} at most):", ""]
        lines += [f"- `{f['test']}`: {f['message']}" for f in tests["failures"][:MAX_LISTED]]
    if tests.get("not_collected"):
        lines += ["", "Test modules not collected (they did not run): "
                  + "; ".join(f"`{m['module']}` ({m['message']})" for m in tests["not_collected"]) + "."]
    if tests.get("launchers_not_run"):
        lines += ["", "CUDA launchers no test called on the GPU: "
                  + ", ".join(f"`{n}`" for n in tests["launchers_not_run"]) + "."]
    rows = next((p["details"].get("rows") for p in parts if p["name"] == "kernels"), None)
    if rows:
        lines += ["", f"`tensorcore bench kernels --device {report['device']}` (median, ±IQR, device time from "
                  "CUDA events, throughput, fraction of the measured peak, speed vs CuPy):", "",
                  "| op | size | median | ±IQR | on device | GFLOP/s | GB/s | of peak | vs CuPy |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if r["error"]:
                lines.append(f"| {r['op']} | {r['size']} | not run: {r['error']} | | | | | | |")
                continue
            iqr = f"{r['iqr_s'] / r['median_s']:.0%}"
            gflops = "-" if not r["flop_per_s"] else f"{r['flop_per_s'] / 1e9:.3g}"
            peak = "-" if r["fraction_of_peak"] is None else f"{r['fraction_of_peak']:.0%}"
            lines.append(f"| {r['op']} | {r['size']} | {_seconds(r['median_s'])} | {iqr} | "
                         f"{_seconds(r['device_median_s'])} | {gflops} | {r['bytes_per_s'] / 1e9:.3g} | {peak} | "
                         f"{r['ratio']:.2f}x |")
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], json_path: Path, markdown_path: Path) -> None:
    """Write the report as JSON and its markdown summary."""
    Path(json_path).write_text(json.dumps(report, indent=1))
    Path(markdown_path).write_text(markdown(report))
