"""The fixed suites' command lines (issue #14, item 2): every ``tensorcore bench NAME --help``
names its command and (where the suite's parser asks for it) shows defaults; ``bench opencl``
takes ``--device`` and ``--json`` and measures what OpenCL profiling costs; ``bench cuda``
takes ``--json`` (its figures need a GPU: see tests/test_bench_gpu_check.py for the reader);
and the suites' timers, built on ``tc.bench.interleaved``, keep each suite's own method."""

from __future__ import annotations

import importlib.util
import json
import sys
import time

import numpy as np
import pytest
from tensorcore.benchmarks import cuda, opencl
from tensorcore.benchmarks import kernel_report as report

import tensorcore as tc
from tensorcore import cli

HAVE_OPENCL = "opencl:0" in [str(d.device) for d in tc.devices()]
needs_opencl = pytest.mark.skipif(not HAVE_OPENCL, reason="no opencl:0 here")


@pytest.mark.parametrize("name", cli.BENCHMARKS)
def test_every_suite_help_names_its_command(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", name, "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and out.startswith(f"usage: tensorcore bench {name} [-h]"), out[:200]
    assert "(default:" in out


def test_a_suite_error_names_its_command(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["bench", "opencl", "--rounds", "x"])
    assert "tensorcore bench opencl: error: argument --rounds" in capsys.readouterr().err


def test_suite_record_has_each_side_rate() -> None:
    r = report.suite_record("add", {"bytes": 8}, {"numpy": 2.0, "opencl": 4.0}, moved=8.0, copy_bytes_per_s=1.0)
    assert r == {"case": "add", "params": {"bytes": 8}, "seconds": {"numpy": 2.0, "opencl": 4.0}, "flops": None,
                 "bytes": 8.0, "flop_per_s": None, "bytes_per_s": {"numpy": 4.0, "opencl": 2.0}, "copy_bytes_per_s": 1.0}


def test_cuda_takes_json_and_without_a_gpu_writes_nothing(tmp_path, capsys) -> None:
    assert cuda.parse_args(["--json", str(tmp_path / "c.json")]).json == tmp_path / "c.json"
    if cuda.unavailable_reason("cuda:0") is None:
        pytest.skip("a CUDA device is available here")
    assert cuda.main(["--json", str(tmp_path / "c.json"), "--quick"]) == 1
    assert not (tmp_path / "c.json").exists() and "cuda benchmark not run" in capsys.readouterr().err


@needs_opencl
def test_opencl_device_and_json(tmp_path, capsys) -> None:
    assert opencl.main(["--device", "opencl:7"]) == 1
    assert "no opencl:7 device here" in capsys.readouterr().out
    assert opencl.main(["--device", "opencl", "--quick", "--rounds", "1", "--json", str(tmp_path / "o.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("opencl:0 = ") and "matmul float32 n=256" in out and "placement:" in out
    data = json.loads((tmp_path / "o.json").read_text())
    assert data["format"] == "tensorcore-bench-opencl/1" and data["device"] == "opencl:0" and data["quick"] is True
    cases = {r["case"]: r for r in data["records"]}
    assert list(cases) == ["matmul", "add", "sum", "mlp_step", "batch_norm_step"]
    assert set(cases["mlp_step"]["seconds"]) == {"numpy", "opencl", "opencl traced"}
    assert cases["add"]["bytes_per_s"]["opencl"] == pytest.approx(3 * 4 * 2**20 / cases["add"]["seconds"]["opencl"])


@needs_opencl
def test_opencl_profiling_cost_runs_an_a_b(capsys) -> None:
    t = opencl.profiling_cost("opencl:0", rounds=1, launches=200)
    assert set(t) == {"queued", "waited"} and all(set(v) == {"off", "on"} for v in t.values())
    assert all(0 < s < 0.01 for v in t.values() for s in v.values())  # seconds per launch


@needs_opencl
def test_opencl_gemm_tiles_times_both_tiles_and_restores_the_device(capsys) -> None:
    from tensorcore import registry

    dev = registry.get_backend("opencl").device(0)
    before = dev.simd_bytes
    assert opencl.main(["--gemm-tiles", "--quick", "--rounds", "1"]) == 0
    assert dev.simd_bytes == before  # every call put the device's own tile back
    lines = capsys.readouterr().out.splitlines()
    assert f"registers hold {before} bytes" in lines[0]
    cases = [line.split(":")[0] for line in lines[1:]]
    assert cases == ["matmul float32 n=256", "matmul float64 n=256", "MLP 784-512-512-10 step, batch 128, eager"]
    assert all("x faster" in line for line in lines[1:])


class _FakeCuda:
    """Not CuPy: NumPy behind CuPy's names, enough for benchmarks/cuda.py to run on ``cpu``."""

    class Device:
        def __init__(self, index: int = 0) -> None:
            pass

        def __enter__(self) -> None:
            pass

        def __exit__(self, *exc: object) -> None:
            pass

        def synchronize(self) -> None:
            pass

    @staticmethod
    def get_current_stream() -> object:
        return _FakeCuda.Device()


class _FakeBuffer:
    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def copy_from_device_async(self, src: _FakeBuffer, nbytes: int) -> None:
        np.copyto(self.array, src.array)


class _FakeCupy:
    """NumPy standing in for CuPy (module attributes fall through to NumPy)."""

    cuda = _FakeCuda

    def __getattr__(self, name: str) -> object:
        return getattr(np, name)

    @staticmethod
    def asnumpy(a: object) -> np.ndarray:
        return np.asarray(a)

    def ones(self, n: int, dtype: object) -> object:  # only copy_cases asks for these: their .data is a buffer
        return type("A", (), {"data": _FakeBuffer(np.ones(n, dtype))})()

    def empty(self, n: int, dtype: object) -> object:
        return type("A", (), {"data": _FakeBuffer(np.empty(n, dtype))})()


def test_cuda_json_is_what_gpu_check_reads_with_numpy_standing_in_for_cupy(tmp_path, monkeypatch, capsys) -> None:
    """FABRICATED device: benchmarks/cuda.py runs on ``cpu`` with NumPy in CuPy's place, to check
    its records and that gpu-check scores every target from them. No figure here is a GPU's."""
    from tensorcore.benchmarks import gpu_check_report

    monkeypatch.setitem(sys.modules, "cupy", _FakeCupy())
    monkeypatch.setattr(cuda, "unavailable_reason", lambda device: None)
    out = tmp_path / "c.json"
    assert cuda.main(["--device", "cpu", "--quick", "--rounds", "1", "--repeats", "1", "--json", str(out)]) == 0
    assert "SGEMM float32 n=1024" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["format"] == "tensorcore-bench-cuda/1" and data["complete"] is True and data["tf32_check"]
    assert [r["case"] for r in data["records"]] == ["sgemm", "copy", "add", "sum", "softmax", "mlp_step"]
    targets = gpu_check_report.evaluate_targets(data["records"])
    assert [t["case"] for t in targets] == ["sgemm", "add", "sum", "softmax", "mlp_step"]
    assert all(t["value"] is not None and t["value"] > 0 for t in targets), targets


@needs_opencl
def test_distribute_runs_one_part_and_writes_json(tmp_path, capsys) -> None:
    """--only picks the parts (here the in-process all-reduce, which needs two PoCL devices in
    a child process), --json writes what the tables show."""
    from tensorcore.benchmarks import distribute

    out_file = tmp_path / "d.json"
    assert distribute.main(["--quick", "--rounds", "1", "--only", "local", "--json", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "2. in-process all-reduce" in out and "1. all-reduce" not in out and "3. MLP" not in out
    results = json.loads(out_file.read_text())
    assert set(results) == {"cpu", "rounds", "quick", "local"}
    assert [r["bytes"] for r in results["local"]] == sorted(r["bytes"] for r in results["local"])
    assert all(r["numpy"] > 0 and r["tensorcore"] > 0 for r in results["local"])


def test_distribute_mpi_part_times_every_case_at_every_size(tmp_path, capsys) -> None:
    """The MPI part runs under mpiexec -n 2 in a child; each size gets a time for raw mpi4py,
    the checked collective and a replica's all-reduce."""
    from test_distribute_mpi import SKIP

    if SKIP is not None:
        pytest.skip(SKIP)
    from tensorcore.benchmarks import distribute

    out_file = tmp_path / "d.json"
    assert distribute.main(["--quick", "--rounds", "1", "--only", "mpi", "--json", str(out_file)]) == 0
    assert "1. all-reduce, float32, 2 MPI ranks" in capsys.readouterr().out
    results = json.loads(out_file.read_text())["mpi"]
    assert [r["bytes"] for r in results] == list(distribute.SIZES[:5])
    assert all(r[case] > 0 for r in results for case in ("mpi4py", "tensorcore", "replica"))


@needs_opencl
def test_distribute_mlp_ceiling_trains_the_same_model_as_one_replica() -> None:
    """The MLP part's ceiling (replicas training independently) with one replica is the
    single-replica training itself: the same loss after the same steps."""
    from tensorcore.benchmarks import distribute

    single = distribute._single_block(2)
    independent = distribute._independent_block(2, 1, multi_worker=False)
    first, second = single(), independent()
    assert np.isfinite(first) and first == pytest.approx(second, rel=1e-6)
    assert single() < first  # training: the loss falls step by step


@pytest.mark.parametrize("suite", ["eager", "graph"])
def test_eager_and_graph_take_a_device_and_write_json(suite: str, tmp_path, capsys) -> None:
    """--device runs tensorcore's side on that device (a tc.device scope), --json keeps the
    figures; the default device is left as it was."""
    import importlib

    module = importlib.import_module(f"tensorcore.benchmarks.{suite}")
    before = tc.default_device()
    device = "opencl:0" if HAVE_OPENCL and suite == "graph" else "cpu"
    argv = ["--rounds", "1", "--device", device, "--json", str(tmp_path / "r.json")] + (["--skip-chain"] if suite == "graph" else [])
    assert module.main(argv) == 0
    assert f"tensorcore on {tc.Device(device)}" in capsys.readouterr().out
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["device"] == str(tc.Device(device)) and results["mlp_samples_per_s"]["numpy"] > 0
    assert tc.default_device() == before and tc.current_device() == before


# --- the suites' timers are tc.bench's (issue #14, item 2) ---------------------------------------

def _counting(log: list[str], name: str, seconds: float = 0.0):
    def call() -> None:
        log.append(name)
        if seconds:
            time.sleep(seconds)
    return call


def test_opencl_timer_rests_then_warms_then_takes_counted_samples(monkeypatch) -> None:
    """bench opencl: tc.bench.interleaved with the suite's own rest and warm-up and a count of
    samples per round, not a time budget; medians per call."""
    monkeypatch.setattr(opencl, "PAUSE", 0.05)  # the suite rests 0.25 s; shorter here, the same method
    monkeypatch.setattr(opencl, "WARM", 0.01)
    log: list[str] = []
    start = time.perf_counter()
    t = opencl.interleaved({"numpy": _counting(log, "numpy", 0.002), "opencl": _counting(log, "opencl")},
                           rounds=2, repeats=3)
    assert time.perf_counter() - start >= 4 * 0.05  # a rest before each case's turn in each round
    assert set(t) == {"numpy", "opencl"} and 0.0018 <= t["numpy"] <= 0.01 and t["opencl"] < t["numpy"]
    first_opencl = log.index("opencl")
    assert log[:first_opencl] == ["numpy"] and log[first_opencl + 1] == "numpy"  # first calls, then turns
    assert log.count("numpy") >= 1 + 2 * 3  # the warm-ups run untimed calls on top of the samples


def test_cuda_timer_drains_before_every_sample_and_times_fixed_repeats() -> None:
    """bench cuda: one sample per case and round, each of exactly ``repeats`` calls and the
    case's wait; the drain runs untimed before each sample; no rest, no warm-up."""
    log: list[str] = []
    cases = {"tensorcore": (_counting(log, "tc"), _counting(log, "tc wait")),
             "cuBLAS": (_counting(log, "blas"), _counting(log, "blas wait"))}
    t = cuda.interleaved(cases, _counting(log, "drain", 0.01), rounds=3, repeats=4)
    assert set(t) == {"tensorcore", "cuBLAS"} and all(v < 0.005 for v in t.values())  # the drain is not timed
    assert log.count("tc") == log.count("blas") == 1 + 3 * 4 and log.count("tc wait") == 1 + 3
    assert log.count("drain") == 2 * 3
    sample = log.index("drain")
    assert log[sample:sample + 6] == ["drain", "tc", "tc", "tc", "tc", "tc wait"]


def test_mlp_epochs_are_timed_one_per_round_and_must_train_alike() -> None:
    """_mlp.time_epochs (bench eager, graph): samples/s of one epoch per round and runner, after
    one untimed epoch each whose losses must agree; the last losses are returned."""
    from tensorcore.benchmarks._mlp import time_epochs

    batches = [(None, np.zeros(50)), (None, np.zeros(50))]  # 100 samples an epoch
    calls = {"slow": 0, "fast": 0}

    def runner(name: str, seconds: float):
        def epoch(b: list) -> float:
            assert b is batches
            calls[name] += 1
            time.sleep(seconds)
            return 1.0 / calls[name]  # the loss falls epoch by epoch
        return epoch

    rates, losses = time_epochs({"slow": runner("slow", 0.004), "fast": runner("fast", 0.001)}, batches, rounds=3)
    assert calls == {"slow": 4, "fast": 4}  # one untimed epoch, then one per round
    assert 100 / 0.010 <= rates["slow"] <= 100 / 0.004 and rates["fast"] > rates["slow"]
    assert losses == {"slow": 0.25, "fast": 0.25}
    with pytest.raises(RuntimeError, match="do not train alike"):
        time_epochs({"a": lambda b: 1.0, "b": lambda b: 2.0}, batches, rounds=1)


def test_eager_tiny_op_timer_takes_one_block_of_number_calls_per_round() -> None:
    from tensorcore.benchmarks.eager import time_tiny

    log: list[str] = []
    t = time_tiny({"numpy": _counting(log, "numpy"), "tensorcore": _counting(log, "tensorcore")}, rounds=2, number=50)
    assert log.count("numpy") == log.count("tensorcore") == 1 + 2 * 50
    assert set(t) == {"numpy", "tensorcore"} and all(0 < v < 1e-3 for v in t.values())


# --- bench cnn (issue #13): the small CNN against PyTorch -----------------------------------------

@pytest.mark.parametrize("device", [d for d in ("cpu", "opencl:0") if d == "cpu" or HAVE_OPENCL])
def test_cnn_steps_train_one_model_eagerly_and_traced(device: str) -> None:
    """The suite's tensorcore steps load the given weights (the first loss is the same eagerly
    and traced) and train (the loss falls)."""
    from tensorcore.benchmarks import cnn

    x, y, weights = cnn.problem()
    eager = cnn.tensorcore_step(weights, x, y, device, traced=False)
    traced = cnn.tensorcore_step(weights, x, y, device, traced=True)
    first = eager()
    assert first == pytest.approx(traced(), rel=1e-4) and first == pytest.approx(np.log(10), rel=0.2)
    assert eager() < first and traced() < first


def test_cnn_without_pytorch_says_what_to_install(monkeypatch, capsys) -> None:
    from tensorcore.benchmarks import cnn

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    assert cnn.main(["--quick"]) == 2
    assert "needs PyTorch to compare with: pip install torch" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed (pip install 'tensorcore[bench]')")
def test_cnn_cases_start_from_pytorchs_first_loss() -> None:
    """cases() refuses to time unless every case's first loss is PyTorch's: same weights, same model."""
    import torch
    from tensorcore.benchmarks import cnn

    steps = cnn.cases(["cpu"], torch)
    assert list(steps) == ["pytorch", "tensorcore cpu", "tensorcore cpu traced"]
    second = {name: step() for name, step in steps.items()}
    assert second["tensorcore cpu"] == pytest.approx(second["pytorch"], rel=1e-3)


def test_graph_reduction_cases_fuse_one_and_agree_with_numpy() -> None:
    if "opencl:0" not in [str(i.device) for i in tc.devices()]:
        pytest.skip("no opencl:0 device")
    from tensorcore.benchmarks import graph

    cases = graph.reduction_cases(1 << 16)  # checks the fused and unfused graphs itself
    values = {name: float(case()) for name, case in cases.items()}
    assert values["fused into the mean"] == pytest.approx(values["numpy"], rel=1e-4)
    assert values["mean apart"] == pytest.approx(values["numpy"], rel=1e-4)


def test_gemm_autotune_runs_the_epoch_with_autotuning_and_restores_it() -> None:
    from tensorcore.benchmarks import graph

    from tensorcore.ops import host_gemm

    seen = []
    run = graph.with_gemm_autotune(lambda batches: seen.append(host_gemm.autotune_enabled()) or 1.5)
    before = host_gemm.autotune_enabled()
    assert run([]) == 1.5 and seen == [True]
    assert host_gemm.autotune_enabled() == before
    failing = graph.with_gemm_autotune(lambda batches: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing([])
    assert host_gemm.autotune_enabled() == before


def test_host_gemm_suite_times_cold_warm_and_both_calls(tmp_path, capsys) -> None:
    from tensorcore.benchmarks import host_gemm as suite

    out = tmp_path / "r.json"
    assert suite.main(["--rounds", "1", "--threads", "1", "--cases", "mlp", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    cold = results["cold"]["1"]
    assert set(cold) == set(suite.CASES["mlp"])
    assert all(t["cold"] > 0 and t["warm"] > 0 for t in cold.values())
    rows = results["two_calls"]["mlp, 1 threads"]
    assert set(rows) == set(suite.CASES["mlp"])
    for name, row in rows.items():
        assert row["numpy_ms"] > 0 and row["transposed_ms"] > 0
        a, b = row["shapes"]
        square = a[-2] == b[-1]  # M == N: both calls are the same problem, so gemm times neither
        assert row["chosen"] == "untimed" if square else row["chosen"] in ("numpy", "transposed"), name
    assert "gemm chose" in capsys.readouterr().out
