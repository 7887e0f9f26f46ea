"""``tc.bench``, ``tensorcore bench kernels`` and ``tensorcore bench peak`` (issue #14): the timer's
statistics, the records and their files, --compare, the cost formulas, the plot, the help and
the errors. Tiny sizes and budgets: the whole file runs in well under a minute."""

from __future__ import annotations

import csv
import dataclasses
import json
import time

import numpy as np
import pytest
from tensorcore.benchmarks import kernel_cases as kc
from tensorcore.benchmarks import kernel_cases_generic as generic
from tensorcore.benchmarks import kernel_report as report
from tensorcore.benchmarks import kernels, peak

import tensorcore as tc
from tensorcore import cli

FAST = ["--budget", "0.02", "--rounds", "1", "--rest", "0", "--warmup", "0", "--no-progress"]
DEVICE_TIMES = ("device_median_s", "device_iqr_s", "reference_device_median_s")


# --- the timer ---------------------------------------------------------------------------------

def test_timeit_measures_a_known_sleep() -> None:
    t = tc.bench.timeit(time.sleep, 0.01, budget=0.15, warmup=0.0)
    assert 0.0095 <= t.median <= 0.03, t
    assert t.min <= t.median and t.iqr >= 0 and t.repeats >= 5 and t.number == 1
    assert len(t.samples) == t.repeats
    assert repr(t).startswith("Timing(median=") and " ms" in repr(t) and "repeats=" in repr(t)


def test_timing_statistics_from_known_samples() -> None:
    t = tc.bench.Timing.from_samples([5.0, 1.0, 4.0, 2.0, 3.0], number=10)
    assert (t.median, t.iqr, t.min, t.repeats, t.number) == (3.0, 2.0, 1.0, 5, 10)
    assert t.relative_iqr == pytest.approx(2 / 3)
    assert tc.bench.format_seconds(2.5e-6) == "2.5 µs" and tc.bench.format_seconds(1.5) == "1.5 s"


def test_timeit_blocks_fast_calls_and_waits_after_each_block() -> None:
    waits: list[int] = []
    t = tc.bench.timeit(lambda: None, budget=0.05, warmup=0.0, device=lambda: waits.append(1))
    assert t.number > 1 and t.median * t.number >= 0.5 * tc.bench.MIN_BLOCK  # one block lasts ~MIN_BLOCK
    assert len(waits) > t.repeats  # the first call, the warm-up blocks and every sample each waited


def test_timeit_on_a_device(device: str) -> None:
    a = tc.ones((64, 64), device=device)
    t = tc.bench.timeit(tc.matmul, a, a, budget=0.05, warmup=0.0, device=device)
    assert t.median > 0 and t.repeats >= 5


def test_interleaved_takes_turns() -> None:
    calls: list[str] = []
    t = tc.bench.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                             budget=0.02, warmup=0.0, rounds=2, rest=0.0)
    assert set(t) == {"a", "b"}
    assert calls.index("b") < len(calls) - 1 - calls[::-1].index("a")  # b ran before a's last round
    with pytest.raises(ValueError, match="budget"):
        tc.bench.interleaved({"a": lambda: None}, budget=-1)


# --- cost formulas, against counts by hand -----------------------------------------------------

@pytest.mark.parametrize(("op", "shape", "flops", "nbytes"), [
    ("matmul", (2, 3, 4), 2 * 2 * 3 * 4, 4 * (6 + 12 + 8)),
    ("batched_matmul", (5, 2, 3, 4), 5 * 48, 5 * 104),
    ("linear", (2, 3, 4), 48 + 8, 4 * (6 + 12 + 4 + 8)),  # x @ w.T, plus the bias per output
    ("conv2d", (1, 1, 3, 3, 1, 3), 9 * 9 * 2 + 9, 4 * (9 + 9 + 1 + 9)),  # 9 outputs of 9 taps, same padding
    ("max_pool2d", (1, 1, 4, 4), 4 * 3, 4 * (16 + 4)),
    ("add", (10,), 10, 4 * 30),
    ("exp", (10,), 10, 4 * 20),
    ("sum", (10,), 10, 4 * 10),
    ("softmax", (2, 5), 50, 4 * 20),
    ("cross_entropy", (2, 5), 40, 4 * 10 + 8 * 2),
    ("layer_norm", (2, 5), 70, 4 * (20 + 10)),
    ("transpose_copy", (3, 4), 0, 4 * 24),
    ("take", (100, 8, 3), 0, 2 * 4 * 3 * 8 + 8 * 3),
    ("sgd_step", (10,), 40, 4 * 50),
    ("conv2d_backward", (1, 1, 3, 3, 1, 3), 2 * 9 * 9 * 2, 4 * (9 + 9 + 9 + 9 + 9)),  # x, w, g read; gx, gw written
    ("batch_norm", (2, 3, 2, 2), 7 * 24, 4 * (48 + 6)),
    ("scatter_add", (100, 8, 3), 24, 4 * (24 + 800) + 8 * 3),  # g and indices read, all 100 rows written
    ("adam_step", (10,), 120, 4 * 70),  # p, g, m, v read; p, m, v written
    ("atan2", (10,), 10, 4 * 30),  # generic cases: one FLOP per element
    ("greater", (10,), 10, 4 * 20 + 10),  # a bool output is one byte
    ("prod", (10,), 10, 4 * 10),  # a reduction's scalar is not counted
])
def test_cost_formulas(op: str, shape: tuple[int, ...], flops: int, nbytes: int) -> None:
    cost = kernels.spec_of(op).cost(shape, 4)
    assert (cost.flops, cost.bytes) == (flops, nbytes)
    assert cost.intensity == pytest.approx(flops / nbytes)


def test_every_op_has_every_size_and_a_checked_reference() -> None:
    assert set(kc.OPS) < set(kernels.OPS) and "adam_step" in kernels.OPS
    for spec in [*kernels.OPS.values(), kernels.spec_of("atan2")]:
        assert set(spec.sizes) == set(kc.SIZES), spec.name
    with pytest.raises(AssertionError, match="disagree"):
        kernels.check("add", np.zeros(3), np.ones(3))
    ones = np.ones(3)
    kernels.check("two", (ones, ones), (ones, ones))  # several results: each one checked
    with pytest.raises(AssertionError, match=r"two \(result 1\): .* disagree"):
        kernels.check("two", (ones, ones), (ones, 2 * ones))
    with pytest.raises(AssertionError, match="2 results"):
        kernels.check("two", ones, (ones, ones))


# --- the command -------------------------------------------------------------------------------

def _seed_peak(path, device: str) -> None:
    """A cached peak for ``device`` so that the run measures nothing."""
    fake = peak.Peak(device, "fake", "fake", 1e11, 1e10, [], False, "now")
    path.write_text(json.dumps({"format": peak.FORMAT, "peaks": {peak.cache_key(device): dataclasses.asdict(fake)}}))


def test_json_and_csv_records_carry_every_field(tmp_path, device: str, capsys) -> None:
    pf, out_json, out_csv = tmp_path / "peak.json", tmp_path / "out.json", tmp_path / "out.csv"
    _seed_peak(pf, device)
    argv = ["--device", device, "--op", "add", "--op", "bmm", "--size", "small", "--peak-file", str(pf),
            "--json", str(out_json), "--csv", str(out_csv), *FAST]
    assert kernels.main(argv) == 0
    assert any(line.split()[:2] == ["batched_matmul", "small"] for line in capsys.readouterr().out.splitlines())
    records = report.read_json(out_json)
    assert [r["op"] for r in records] == ["add", "batched_matmul"]
    kind = tc.Device(device).type
    # Device clocks: none on cpu or for NumPy; OpenCL markers (the run starts a child process
    # with profiling, as this process's backend started without it); CUDA events on both sides.
    clockless = {"cpu": DEVICE_TIMES, "opencl": DEVICE_TIMES[2:], "cuda": ()}[kind]
    for r in records:
        assert set(r) == set(report.FIELDS)
        missing = [k for k in report.FIELDS if r[k] is None and k not in ("error", "git_commit", *clockless)]
        assert not missing and r["error"] is None, (missing, r["error"])
        assert all(r[k] is None for k in clockless)
        assert r["device"] == device and r["peak_flop_per_s"] == 1e11
        assert r["reference"] == ("cupy" if kind == "cuda" else "numpy")
        assert r["ratio"] == pytest.approx(r["reference_median_s"] / r["median_s"])
    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(report.FIELDS) and len(rows) == 2 and rows[0]["shape"] == str(1 << 16)


def test_explicit_shapes_replace_the_presets_for_the_ops_they_fit(tmp_path) -> None:
    """--shape: each op runs the given shapes with as many numbers as its parameters (matmul
    m, k, n; add n), labelled by the shape, and the records carry them."""
    out_json = tmp_path / "out.json"
    argv = ["--device", "cpu", "--op", "matmul", "--op", "add", "--shape", "16x8x4", "--shape", "1000",
            "--shape", "32x32x32", "--no-peak", "--json", str(out_json), *FAST]
    assert kernels.main(argv) == 0
    records = report.read_json(out_json)
    assert [(r["op"], r["size"], r["shape"]) for r in records] == [
        ("matmul", "16x8x4", [16, 8, 4]), ("matmul", "32x32x32", [32, 32, 32]), ("add", "1000", [1000])]
    assert all(r["error"] is None and r["median_s"] > 0 for r in records)
    assert records[0]["flops"] == 2 * 16 * 8 * 4


@pytest.mark.parametrize("dtype", ["int32", "uint8", "float16"])
def test_integer_and_half_cases_run_the_ops_that_have_them(dtype: str, tmp_path, capsys) -> None:
    """--dtype: ops with that kind of dtype run in it (checked exactly for integers), the others
    are named as skipped; on a device without kernels for it a case is recorded as not run."""
    out_json = tmp_path / "out.json"
    argv = ["--device", "cpu", "--op", "add", "--op", "sum", "--op", "exp", "--dtype", dtype, "--size", "small",
            "--no-peak", "--json", str(out_json), *FAST]
    assert kernels.main(argv) == 0
    out = capsys.readouterr().out
    records = report.read_json(out_json)
    if dtype == "float16":
        assert [r["op"] for r in records] == ["add", "sum", "exp"]
    else:
        assert f"not benchmarked in {dtype}: exp" in out
        assert [r["op"] for r in records] == ["add", "sum"]
    assert all(r["dtype"] == dtype and r["error"] is None and r["median_s"] > 0 for r in records)
    assert records[0]["bytes"] == 3 * (1 << 16) * np.dtype(dtype).itemsize


def test_kernel_check_compares_integers_exactly() -> None:
    kernels.check("add", np.array([3, 4], np.int32), np.array([3, 4], np.int32))
    with pytest.raises(AssertionError, match="disagree"):
        kernels.check("add", np.array([3, 4000], np.int32), np.array([3, 4001], np.int32))  # within 1e-3 relative
    kernels.check("exp", np.array([1.0, 2.0], np.float16), np.array([1.004, 2.0], np.float16))  # half's precision


# --- the training cases and the generic cases ---------------------------------------------------

def _run_records(tmp_path, argv: list[str]) -> list[dict]:
    out_json = tmp_path / "out.json"
    assert kernels.main([*argv, "--no-peak", "--json", str(out_json), *FAST]) == 0
    return report.read_json(out_json)


def test_training_cases_agree_with_numpy_and_are_timed(tmp_path, device: str) -> None:
    """conv2d's backward, batch_norm, scatter_add and Adam: each checked against its NumPy
    reference (a disagreement would be an error) and timed on both sides, one tiny shape each."""
    ops = ["conv2d_backward", "batch_norm", "scatter-add", "adam"]
    shapes = ["2x3x6x5x4x3", "4x3x5x6", "50x8x40", "1000"]  # each fits one op's parameters
    records = _run_records(tmp_path, ["--device", device, *(a for op in ops for a in ("--op", op)),
                                      *(a for shape in shapes for a in ("--shape", shape))])
    assert [(r["op"], r["size"]) for r in records] == [
        ("conv2d_backward", "2x3x6x5x4x3"), ("batch_norm", "4x3x5x6"), ("scatter_add", "50x8x40"), ("adam_step", "1000")]
    for r in records:
        assert r["error"] is None and r["median_s"] > 0 and r["reference_median_s"] > 0, r
        assert r["flops"] == kernels.spec_of(r["op"]).cost(tuple(r["shape"]), 4).flops


def test_adam_case_check_sees_a_single_step() -> None:
    """The check can tell Adam's parameters one step apart (the case's lr is large enough)."""
    env = kc.Env("cpu", np.dtype(np.float32), np, np.random.default_rng(0))
    ours, theirs = kernels.spec_of("adam_step").build((4096,), env)
    after_one_step = np.array(theirs())
    kernels.check("adam_step", ours(), after_one_step)
    with pytest.raises(AssertionError, match="disagree"):
        kernels.check("adam_step", ours(), after_one_step)  # tensorcore's second step


def test_generic_cases_run_other_ops_of_the_op_table(tmp_path, device: str) -> None:
    """--op NAME for an op without a hand-written case: tc.NAME on vectors of n, against np.NAME
    (acosh on inputs >= 1, where it is defined; prod reduces; greater answers bool)."""
    records = _run_records(tmp_path, ["--device", device, "--op", "atan2", "--op", "prod", "--op", "greater",
                                      "--op", "acosh", "--shape", "1000"])
    assert [r["op"] for r in records] == ["atan2", "prod", "greater", "acosh"]
    for r in records:
        assert r["error"] is None and r["reference"] == "numpy" and r["ratio"] > 0, r
        assert "generic case" in r["params"] and r["flops"] == 1000


def test_generic_case_in_an_integer_dtype(tmp_path) -> None:
    (r,) = _run_records(tmp_path, ["--device", "cpu", "--op", "bitwise_and", "--dtype", "int32", "--shape", "1000"])
    assert r["error"] is None and r["ratio"] > 0 and r["bytes"] == 3 * 4 * 1000


def test_generic_probe_finds_dtypes_input_ranges_and_shapes() -> None:
    assert generic.probe("exp").float_range is None  # standard normal inputs
    assert generic.probe("log").float_range == (0.1, 0.9)  # positive ones
    assert generic.probe("acosh").float_range == (1.1, 2.0)
    assert generic.probe("add").kinds == "fiu" and generic.probe("atan2").kinds == "f"
    assert generic.probe("bitwise_and").kinds == "iu"
    assert generic.probe("greater").bool_output and generic.probe("prod").reduces
    assert not generic.probe("cumulative_sum").reduces  # a scan keeps its input's shape
    for name in ("getitem", "matmul", "where", "conv2d", "not_an_op"):
        assert generic.probe(name) is None, name
    assert {"atan2", "var", "isnan"} <= set(generic.generic_ops()) and "getitem" not in generic.generic_ops()


class _NumpyWithout:
    """NumPy lacking one function, as CuPy lacks some of NumPy's names (not a backend: the
    reference library's namespace)."""

    def __init__(self, missing: str) -> None:
        self.missing = missing

    def __getattr__(self, name: str) -> object:
        if name == self.missing:
            raise AttributeError(name)
        return getattr(np, name)


def test_generic_case_without_a_reference_function_is_checked_but_not_timed(tmp_path, monkeypatch, capsys) -> None:
    env = kc.Env("cpu", np.dtype(np.float32), _NumpyWithout("atan2"), np.random.default_rng(0))
    ours, theirs = kernels.spec_of("atan2").build((100,), env)
    assert isinstance(theirs, kc.CheckOnly)
    rng = np.random.default_rng(0)  # the case's inputs, drawn again
    x1, x2 = (generic.draw(rng, np.dtype(np.float32), (100,), None) for _ in range(2))
    np.testing.assert_allclose(theirs(), np.arctan2(x1, x2), rtol=1e-6)  # the op on cpu
    kernels.check("atan2", ours(), theirs())
    monkeypatch.setattr(kernels, "reference", lambda device: ("numpy", np.__version__, _NumpyWithout("atan2"), "cpu", None))
    (r,) = _run_records(tmp_path, ["--device", "cpu", "--op", "atan2", "--shape", "1000"])
    assert r["error"] is None and r["median_s"] > 0
    assert r["reference"] is None and r["reference_median_s"] is None and r["ratio"] is None
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("atan2")]
    assert row and row[0].split()[-2:] == ["-", "-"]


def _record(median: float, iqr: float = 1e-5, **extra) -> dict:
    return dict.fromkeys(report.FIELDS) | {
        "op": "add", "size": "small", "shape": [65536], "dtype": "float32", "device": "cpu:0", "device_name": "cpu",
        "median_s": median, "iqr_s": iqr, "reference": "numpy", "ratio": 1.2, "flops": 65536.0, "bytes": 786432.0,
        "intensity": 1 / 12, "flop_per_s": 65536 / median, "bytes_per_s": 786432 / median,
        "peak_flop_per_s": 1e11, "peak_bytes_per_s": 1e10} | extra


def test_compare_flags_a_slowed_case_and_not_an_equal_one(tmp_path, capsys) -> None:
    old = [_record(1e-3), _record(2e-3, op="mul")]
    slower, faster = report.compare(old, [_record(1e-3), _record(2e-3, op="mul")])
    assert slower == [] and faster == []
    slower, faster = report.compare(old, [_record(1.5e-3), _record(2e-3, op="mul")])
    assert len(slower) == 1 and slower[0].startswith("add 65536 float32 on cpu:0") and faster == []
    assert report.compare(old, [_record(1.5e-3, iqr=5e-4)]) == ([], [])  # within noise this wide
    assert len(report.compare(old, [_record(0.5e-3)])[1]) == 1
    old_file, new_file = tmp_path / "old.json", tmp_path / "new.json"
    report.write_json(old_file, old)
    report.write_json(new_file, [_record(1.5e-3)])
    assert kernels.main(["--input", str(new_file), "--compare", str(old_file)]) == 1
    assert "1 slower" in capsys.readouterr().out
    assert kernels.main(["--input", str(old_file), "--compare", str(old_file)]) == 0


def test_plot_writes_a_png(tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is the optional extra tensorcore[plot]")
    records = tmp_path / "r.json"
    report.write_json(records, [_record(1e-3), _record(2e-4, op="transpose_copy", flops=0.0, flop_per_s=None)])
    assert kernels.main(["--input", str(records), "--plot", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_install(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # import fails
    with pytest.raises(SystemExit) as exc:
        kernels.main(["--plot", str(tmp_path / "x.png"), "--op", "add"])
    assert exc.value.code == 2 and "pip install 'tensorcore[plot]'" in capsys.readouterr().err


def test_help_lists_the_options_and_defaults(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "kernels", "--help"])
    out = capsys.readouterr().out
    text = " ".join(out.split()).lower()  # argparse wraps lines anywhere
    assert exc.value.code == 0 and out.startswith("usage: tensorcore bench kernels")
    for option in ("--device", "--op", "--size", "--shape", "--dtype", "--budget", "--json", "--csv", "--compare", "--plot",
                   "--peak-file", "(default: float32)", "(default: 0.3)", "matmul", "adam_step", "conv2d_backward",
                   "any other elementwise op or reduction"):
        assert option in text, option
    with pytest.raises(SystemExit):
        cli.main(["bench", "peak", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: tensorcore bench peak") and "--refresh" in out


@pytest.mark.parametrize(("argv", "words"), [
    (["--op", "nope"], ["unknown op 'nope'", "matmul", "softmax"]),
    (["--device", "opencl:7"], ["opencl:7", "cpu:0"]),
    (["--device", "tpu"], ["unknown device 'tpu'", "cpu:0"]),
    (["--size", "huge"], ["invalid choice: 'huge'", "small"]),
    (["--compare", "/nonexistent/old.json"], ["cannot read benchmark records from /nonexistent/old.json"]),
    (["--shape", "64xa"], ["bad shape '64xa'", "512x512x512"]),
    (["--op", "add", "--shape", "8x8"], ["no shape given fits add", "takes 1 number(s)", "8x8"]),
    (["--op", "exp", "--dtype", "int32"], ["--dtype int32: none of exp is benchmarked in it", "ops with integer forms"]),
    (["--op", "nope"], ["or an elementwise op or reduction of the op table", "atan2", "cumulative_sum"]),
    (["--op", "getitem"], ["op 'getitem' has no benchmark case", "only elementwise ops and reductions", "atan2"]),
    (["--op", "bitwise_and"], ["--dtype float32: none of bitwise_and is benchmarked in it"]),
    (["--op", "adam", "--dtype", "float16"], ["--dtype float16: none of adam_step is benchmarked in it"]),
])
def test_bad_choices_name_the_valid_ones(argv: list[str], words: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        kernels.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    for word in words:
        assert word in err, (word, err)


# --- the peak probe ----------------------------------------------------------------------------

def test_peak_is_measured_once_and_cached(tmp_path, device: str, monkeypatch) -> None:
    path, calls = tmp_path / "peak.json", []
    measure = peak.measure
    monkeypatch.setattr(peak, "measure", lambda *a, **k: calls.append(a) or measure(*a, **k))
    first = peak.lookup(device, path, quick=True, budget=0.02)
    assert first.flop_per_s > 0 and first.bytes_per_s > 0 and first.quick and len(calls) == 1
    assert {p["kind"] for p in first.probes} == {"flops", "bytes"}
    if device.startswith("opencl"):
        assert any(p["label"].startswith("FMA loop") for p in first.probes)
    assert peak.lookup(device, path, quick=True) == first and len(calls) == 1  # from the cache
    peak.lookup(device, path, quick=True, refresh=True, budget=0.02)
    assert len(calls) == 2
    assert list(json.loads(path.read_text())["peaks"]) == [peak.cache_key(device, quick=True)]


def test_peak_cache_respects_xdg_cache_home(tmp_path) -> None:
    assert peak.cache_file({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "tensorcore" / "peak.json"
    assert peak.cache_file({}).parts[-3:] == (".cache", "tensorcore", "peak.json")
