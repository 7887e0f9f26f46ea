"""``tensorcore bench gpu-check`` without a GPU (issue #14, item 4): the plan of parts and their
limits, the test selection, running a part under its limit, the launcher-counting plugin,
the report and its markdown from FABRICATED part results (no GPU has produced any of the
figures below: they are made up to exercise the writer), and the exit without a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from tensorcore.benchmarks import gpu_check as gc
from tensorcore.benchmarks import gpu_check_plugin as plugin
from tensorcore.benchmarks import gpu_check_report as report

import tensorcore as tc
from tensorcore import cli

ROOT = Path(__file__).resolve().parent.parent
HAVE_CUDA = any(d.device.type == "cuda" for d in tc.devices())


def test_plan_fits_eight_minutes_with_a_limit_per_part(tmp_path) -> None:
    parts = gc.plan(tmp_path, "cuda:0", python="py", tests_dir=ROOT / "tests")
    assert [p.name for p in parts] == ["tests", "train", "kernels", "targets"]
    assert all(p.limit > 0 for p in parts) and sum(p.limit for p in parts) + gc.RESERVE <= gc.TOTAL_LIMIT == 480
    tests, train, kernels, targets = (p.command for p in parts)
    assert parts[0].env["TENSORCORE_TEST_DEVICES"] == "cuda:0" and f"--junitxml={tmp_path / 'parts' / 'tests.xml'}" in tests
    assert ["-p", gc.PLUGIN] == tests[tests.index(gc.PLUGIN) - 1:tests.index(gc.PLUGIN) + 1]
    assert train == ["py", "-m", "tensorcore", "train", "--device", "cuda:0", "--no-progress"]
    assert kernels[:6] == ["py", "-m", "tensorcore", "bench", "kernels", "--device"] and "--json" in kernels
    assert targets[3:5] == ["bench", "cuda"] and str(tmp_path / "parts" / "targets.json") in targets
    assert parts[2].env == parts[3].env == {"CUPY_TF32": "0", "NVIDIA_TF32_OVERRIDE": "0"}
    plugged = gc.plan(tmp_path, plugins=frozenset({"xdist", "pytest_timeout"}), workers=4)[0].command
    assert "-n" in plugged and "--timeout" in plugged and "-n" not in tests


def test_the_test_selection_keeps_cuda_tests_and_leaves_out_compile_and_bench() -> None:
    k = gc.plan(Path("out"))[0].command
    expression = k[k.index("-k") + 1]
    files = ["tests/test_cuda_backend.py", "tests/test_cuda_compile.py", "tests/test_dlpack.py",
             "tests/test_bench_kernels.py"]
    out = subprocess.run([sys.executable, "-m", "pytest", *files, "--collect-only", "-p", "no:cacheprovider",
                          "-k", expression], cwd=ROOT, capture_output=True, text=True, timeout=120)
    chosen = {line.split("::")[0] for line in out.stdout.splitlines() if "::" in line}
    assert "tests/test_cuda_backend.py" in chosen and chosen <= {"tests/test_cuda_backend.py", "tests/test_dlpack.py"}
    if "tests/test_dlpack.py" in chosen:  # it collects nothing where torch is missing
        assert "test_cupy_array_is_shared_both_ways" in out.stdout  # "cupy" too, not only "cuda"


def test_plan_option_prints_the_parts_and_runs_nothing(capsys) -> None:
    assert cli.main(["bench", "gpu-check", "--plan", "--part", "train"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("train (limit 60 s)") and "tensorcore train --device cuda:0" in out and "kernels" not in out


@pytest.mark.skipif(HAVE_CUDA, reason="a CUDA device is available here")
def test_without_a_gpu_it_exits_3_saying_why(tmp_path, capsys) -> None:
    from tensorcore.benchmarks.cuda import unavailable_reason

    assert cli.main(["bench", "gpu-check", "--out", str(tmp_path / "o")]) == gc.NO_GPU == 3
    assert capsys.readouterr().err.strip() == f"gpu-check not run: {unavailable_reason('cuda:0')}"
    assert not (tmp_path / "o").exists()  # nothing ran, nothing written


def _part(name: str, code: str, limit: float = 20) -> gc.Part:
    return gc.Part(name, f"python -c ({name})", [sys.executable, "-c", code], limit)


def test_a_part_passes_fails_or_is_interrupted_at_its_limit(tmp_path) -> None:
    with open(tmp_path / "log", "a") as log:
        ok, out = gc.run_part(_part("ok", "print('hello')"), log, 20)
        bad, _ = gc.run_part(_part("bad", "raise SystemExit(3)"), log, 20)
        slow, slow_out = gc.run_part(_part("slow", "import time\ntry:\n    time.sleep(30)\nexcept KeyboardInterrupt:\n"
                                                   "    print('interrupted: summary written', flush=True)"), log, 2)
    assert (ok.status, ok.returncode, out) == ("passed", 0, "hello\n")
    assert (bad.status, bad.returncode) == ("failed", 3)
    assert slow.status == "timed out" and slow.seconds < 5 and "interrupted: summary written" in slow_out
    text = (tmp_path / "log").read_text()
    assert text.index("===== ok") < text.index("hello") < text.index("===== bad") < text.index("===== slow")


def test_the_plugin_counts_launches_on_real_devices_only(tmp_path) -> None:
    class Real:
        pass

    class StandIn(Real):
        pass

    kernels, counts = {"add": lambda dev, x: x + 1, "exp": lambda dev, x: x}, Counter()
    plugin.instrument(kernels, counts, Real)
    assert kernels["add"](Real(), 1) == 2 and kernels["add"](Real(), 2) == 3 and kernels["exp"](StandIn(), 0) == 0
    assert counts == {"add": 2}
    path = str(tmp_path / "launchers.json")
    plugin.write_counts(path, ["add", "exp"], Counter({"exp": 1}), worker="gw0")  # an xdist worker
    plugin.write_counts(path, ["add", "exp"], counts, worker=None)  # the controller adds it up
    assert json.loads(Path(path).read_text()) == {"launchers": ["add", "exp"], "calls": {"add": 2, "exp": 1}}
    assert not list(tmp_path.glob("launchers.json.gw*"))
    plugin.write_counts(path, ["add", "exp", "sum"], Counter({"add": 1}), worker=None)
    assert report.launchers_not_run(Path(path)) == ["exp", "sum"]


# --- FABRICATED part outputs: made up here to exercise the report, not measured on any GPU ----

FAKE_JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_elementwise" name="test_add[cuda:0]" time="0.1"/>
<testcase classname="tests.test_elementwise" name="test_exp[cuda:0]" time="0.1"/>
<testcase classname="tests.test_linalg" name="test_matmul[cuda:0]" time="0.1">
  <failure message="AssertionError: FABRICATED mismatch&#10;second line">trace</failure></testcase>
<testcase classname="tests.test_dlpack" name="test_torch_cuda_tensor_is_shared_both_ways" time="0.0">
  <skipped message="no torch"/></testcase>
<testcase classname="" name="tests.test_summary" time="0.0"><error message="collection failure">Traceback:
E   ModuleNotFoundError: No module named 'tensorboardX'</error></testcase>
</testsuite></testsuites>"""
FAKE_TRAIN = ("epoch 20: loss 0.0500, test accuracy 97.00%\ndevice: cuda:0\nfinal test accuracy: 97.00% after 20 "
              "epochs in 12.5 s\nplacement: ops per device: cuda:0: 9,999; cpu fallbacks: none; bytes copied: 1\n")


def _fake_kernel_record(op: str, error: str | None = None) -> dict:
    return {"op": op, "size": "small", "shape": [65536], "median_s": 1e-5, "iqr_s": 1e-6, "device_median_s": 8e-6,
            "flop_per_s": 6.5e9, "bytes_per_s": 7.8e10, "fraction_of_peak": 0.03, "reference_median_s": 9e-6,
            "ratio": 0.9, "error": error}


def _fake_targets() -> dict:
    rec = {"sgemm": {"seconds": {"tensorcore": 0.004, "cuBLAS": 0.002}},
           "add": {"bytes_per_s": {"tensorcore": 2.7e12, "cupy.add": 2.8e12}, "copy_bytes_per_s": 3.0e12},
           "sum": {"bytes_per_s": {"tensorcore": 2.1e12, "cupy.sum": 2.9e12}, "copy_bytes_per_s": 3.0e12},
           "mlp_step": {"seconds": {"tensorcore": 4e-4, "CuPy": 5e-4}}}  # softmax left out: "not measured"
    return {"format": "tensorcore-bench-cuda/1", "tf32_check": "FABRICATED",
            "records": [{"case": k, **v} for k, v in rec.items()]}


def _write_fabricated_files(parts: Path) -> None:
    parts.mkdir(parents=True, exist_ok=True)
    (parts / "tests.xml").write_text(FAKE_JUNIT)
    (parts / "launchers.json").write_text(json.dumps({"launchers": ["add", "exp", "matmul"], "calls": {"add": 3}}))
    (parts / "kernels.json").write_text(json.dumps({"records": [_fake_kernel_record("add"),
                                                                _fake_kernel_record("exp", "OpError: FABRICATED")]}))
    (parts / "targets.json").write_text(json.dumps(_fake_targets()))


def test_report_and_markdown_from_fabricated_parts(tmp_path) -> None:
    _write_fabricated_files(tmp_path / "parts")
    results = []
    for name, output in (("tests", ""), ("train", FAKE_TRAIN), ("kernels", ""), ("targets", "")):
        r = report.PartResult(name, f"the {name} part", f"fabricated {name}", 100.0, "passed", 0, 10.0)
        gc.summarize(r, output, tmp_path, "cuda:0")
        results.append(r)
    tests, train, kernels, targets = results
    assert (tests.details["passed"], tests.details["failed"], tests.details["skipped"]) == (2, 1, 1)
    assert tests.status == "failed"  # pytest's exit status said passed: the JUnit file says otherwise
    assert tests.details["not_collected"] == [{"module": "tests.test_summary",
                                               "message": "ModuleNotFoundError: No module named 'tensorboardX'"}]
    assert tests.details["failures"] == [{"test": "tests.test_linalg::test_matmul[cuda:0]",
                                          "message": "AssertionError: FABRICATED mismatch"}]
    assert tests.details["launchers_not_run"] == ["exp", "matmul"]
    assert train.details == {"device": "cuda:0", "accuracy": 0.97, "epochs": 20, "train_seconds": 12.5,
                             "cpu_fallbacks": "none"} and train.status == "passed"
    assert kernels.status == "failed" and kernels.details["errors"] == ["exp small: OpError: FABRICATED"]
    scored = {t["case"]: (t["value"], t["met"]) for t in targets.details["targets"]}
    assert scored == {"sgemm": (0.5, False), "add": (pytest.approx(0.9), True), "sum": (pytest.approx(0.7), False),
                      "softmax": (None, False), "mlp_step": (1.25, True)}
    data = {"created": "2026-12-05T00:00:00+00:00", "device": "cuda:0", "device_name": "FABRICATED GPU",
            "driver": "FABRICATED", "host_cpu": "FABRICATED", "tensorcore_version": "0.1.0", "git_commit": "abc",
            "total_limit_s": 480.0, "seconds": 40.0, "ok": False,
            "parts": [__import__("dataclasses").asdict(r) for r in results]}
    report.write(data, tmp_path / "r.json", tmp_path / "r.md")
    assert json.loads((tmp_path / "r.json").read_text()) == data
    md = (tmp_path / "r.md").read_text()
    for text in ("### GPU check, 2026-12-05: FABRICATED GPU (cuda:0)", "**Not passed: tests, kernels.**",
                 "| tests | the tests part | failed | 10 s / 100 s | 2 passed, 1 failed, 0 errors, 1 skipped; "
                 "1 modules not collected; 2 launchers no test ran |", "cuda:0: 97.00% after 20 epochs", "| kernels | the kernels part | failed",
                 "2 of 5 targets met", "| SGEMM n=4096 (TF32 off), speed vs cuBLAS | ≥ 0.6 | 0.50 | **no** |",
                 "| - | **no** | not measured |", "`tests.test_linalg::test_matmul[cuda:0]`: AssertionError",
                 "no test called on the GPU: `exp`, `matmul`.", "`tests.test_summary` (ModuleNotFoundError", "| exp | small | not run: OpError: FABRICATED",
                 "| add | small | 10 µs | 10% | 8 µs | 6.5 | 78 | 3% | 0.90x |"):
        assert text in md, text


def test_main_runs_fabricated_parts_and_writes_the_report(tmp_path, monkeypatch, capsys) -> None:
    """The whole command on cpu with the GPU check passed and FABRICATED parts (each a tiny
    Python process writing made-up files), so that no GPU is needed."""
    from tensorcore.benchmarks import cuda

    out = tmp_path / "o"
    write = f"from pathlib import Path; import json; p = Path({str(out / 'parts')!r}); "
    fake = [_part("tests", write + f"(p / 'tests.xml').write_text({FAKE_JUNIT!r})"),
            _part("train", f"print({FAKE_TRAIN.replace('cuda:0', 'cpu:0')!r})"),
            _part("targets", write + f"(p / 'targets.json').write_text(json.dumps({_fake_targets()!r}))")]
    monkeypatch.setattr(cuda, "unavailable_reason", lambda device: None)
    monkeypatch.setattr(gc, "plan", lambda *a, **k: fake)
    assert gc.main(["--device", "cpu", "--out", str(out)]) == 1  # the fabricated junit has a failure
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" in ")[0] for line in lines[:3]] == ["tests: failed", "train: passed", "targets: passed"]
    data = json.loads((out / "gpu-check.json").read_text())
    assert data["format"] == report.FORMAT and data["device"] == "cpu:0" and data["ok"] is False
    assert [p["status"] for p in data["parts"]] == ["failed", "passed", "passed"]
    assert "**Not passed: tests.**" in (out / "gpu-check.md").read_text()
    assert "===== train" in (out / "gpu-check.log").read_text()


def test_a_module_not_collected_is_reported_but_does_not_fail_the_tests_part(tmp_path) -> None:
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "tests.xml").write_text(  # FABRICATED: one test passed, one module missing a package
        '<testsuites><testsuite><testcase classname="tests.test_elementwise" name="test_add[cuda:0]"/>'
        '<testcase classname="" name="tests.test_summary"><error message="collection failure">'
        "E   ModuleNotFoundError: No module named 'tensorboardX'</error></testcase></testsuite></testsuites>")
    r = report.PartResult("tests", "the tests", "pytest", 100.0, "failed", returncode=1)  # pytest says 1 for it
    gc.summarize(r, "", tmp_path, "cuda:0")
    assert r.status == "passed" and (r.details["passed"], r.details["errors"]) == (1, 0)
    assert [m["module"] for m in r.details["not_collected"]] == ["tests.test_summary"]
