"""The CUDA backend: how it reports itself where it cannot start (here: no GPU), the pieces
that run without one (start-up errors, kernel source loading, launch planning), and, where a
GPU exists, the key ops against NumPy under strict placement (so a fallback to cpu fails).

With a GPU and CuPy, ``cuda:0`` also joins the whole suite's device matrix (tests/conftest.py).
"""

from __future__ import annotations

import ctypes
import pathlib
import re
import shutil
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
from tensorcore.backends import cuda as cuda_backend
from tensorcore.backends.cuda_ops import matmul as cuda_matmul
from tensorcore.backends.cuda_ops import reduce as cuda_reduce

import tensorcore as tc
from tensorcore.errors import KernelUnsupported
from tensorcore.nn import functional as F

CUDA = "cuda:0"
HAVE_CUDA = CUDA in [str(d.device) for d in tc.devices()]
needs_gpu = pytest.mark.skipif(not HAVE_CUDA, reason="no CUDA device")


# --- without a GPU ------------------------------------------------------------------------------


def test_unavailable_cuda_is_listed_with_what_is_missing() -> None:
    if HAVE_CUDA:
        pytest.skip("a CUDA device is available here")
    entries = [d for d in tc.devices(all=True) if d.backend == "cuda"]
    assert len(entries) == 1 and not entries[0].available
    reason = entries[0].reason or ""
    assert "CuPy is not installed: pip install 'tensorcore[cuda]'" in reason or "no CUDA driver or GPU:" in reason, reason


def test_missing_cupy_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ModuleNotFoundError
    with pytest.raises(RuntimeError, match=r"CuPy is not installed: pip install 'tensorcore\[cuda\]'"):
        cuda_backend.CUDABackend()


def test_missing_driver_or_gpu_passes_on_cupys_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_driver() -> int:
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version")

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_driver))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(RuntimeError, match="no CUDA driver or GPU: cudaErrorInsufficientDriver"):
        cuda_backend.CUDABackend()
    fake.cuda.runtime.getDeviceCount = lambda: 0
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(RuntimeError, match="no CUDA driver or GPU: the driver reports no device .CUDA_VISIBLE_DEVICES=''."):
        cuda_backend.CUDABackend()


def test_kernel_sources_are_loaded_with_their_headers_inlined() -> None:
    text = cuda_backend.kernel_source("reduce.cu")
    assert '#include "common.cuh"' not in text
    assert "tc_max_nan" in text and "__shfl_down_sync" in text
    assert text.count("#define TENSORCORE_COMMON_CUH") == 1


def test_reduction_plans_read_adjacent_axes_as_a_n_b() -> None:
    assert cuda_reduce.plan((4, 5, 6), (2,)) == (20, 6, 1)
    assert cuda_reduce.plan((4, 5, 6), (0,)) == (1, 4, 30)
    assert cuda_reduce.plan((4, 5, 6), (1,)) == (4, 5, 6)
    assert cuda_reduce.plan((4, 5, 6), (0, 1, 2)) == (1, 120, 1)
    assert cuda_reduce.plan((4, 1, 6), (0, 1)) == (1, 4, 6)
    assert cuda_reduce.plan((4, 5, 6), ()) == (120, 1, 1)
    with pytest.raises(KernelUnsupported):
        cuda_reduce.plan((4, 5, 6), (0, 2))


def test_batch_dimensions_merge_into_one_grid_axis_or_are_declined() -> None:
    # (2, 3) batch, contiguous A (M*K = 12 per matrix), B broadcast, C contiguous (M*N = 8)
    assert cuda_matmul.merge_batch((2, 3), [(36, 12), (0, 0), (24, 8)]) == (6, [12, 0, 8])
    assert cuda_matmul.merge_batch((1, 5), [(0, 7), (9, 9)]) == (5, [7, 9])
    assert cuda_matmul.merge_batch((), [(), ()]) == (1, [0, 0])
    with pytest.raises(KernelUnsupported):
        cuda_matmul.merge_batch((2, 3), [(0, 12), (3, 1)])  # A broadcast along one batch dim only


# --- without a GPU: every launcher end to end, against the kernels' C signatures -----------------
#
# A CUDA kernel reads its arguments as the raw bytes of its C parameters: an np.int32 passed where
# the kernel declares i64, a float64 scalar for a float, one argument too few, all launch without
# complaint and compute garbage. These tests run the real launchers on a device whose arrays are
# NumPy memory ("FakeArray", with CuPy's attribute names) and whose `launch` checks every launch
# against the kernel's parameter list, read from the source through the C preprocessor (macros
# expanded, as NVRTC sees it). They also check that every view a launcher builds lies inside its
# allocation (NumPy refuses one that does not), grid and block limits, and the output shapes and
# dtypes against the ops' rules. Kernels are not run: results are checked on a GPU only.

CPP = shutil.which("cpp")
needs_cpp = pytest.mark.skipif(CPP is None, reason="no C preprocessor (cpp) to read the kernels' signatures")
_SCALARS = {"int": np.int32, "i64": np.int64, "long long": np.int64, "float": np.float32, "double": np.float64,
            "u8": np.uint8, "unsigned char": np.uint8, "u16": np.uint16, "u32": np.uint32, "u64": np.uint64,
            "signed char": np.int8, "short": np.int16}
_WIDTH_TYPES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}  # pointers of these move bytes: any dtype of that width
_SIGNATURES: dict = {}


def _signatures(source: str, defines: tuple) -> dict[str, list[str]]:
    """Kernel name -> its parameter declarations, from the preprocessed source."""
    key = (source, defines)
    if key not in _SIGNATURES:
        text = cuda_backend.kernel_source(source)
        cmd = [CPP, "-P", "-x", "c++", *(f"-D{k}={v}" for k, v in defines), "-"]
        pre = subprocess.run(cmd, input=text, capture_output=True, text=True, check=True).stdout
        found = re.findall(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)',
                           pre)
        _SIGNATURES[key] = {name: [p.strip() for p in params.split(",")] for name, params in found}
    return _SIGNATURES[key]


def _param_type(param: str, dtype_define: str | None) -> tuple[bool, str]:
    """(is a pointer, base type name with T resolved) of one C parameter declaration."""
    words = [w for w in re.sub(r"[*]", " * ", param).split() if w not in ("const", "__restrict__")]
    pointer = "*" in words
    words = [w for w in words if w != "*"][:-1]  # drop the parameter's name
    base = " ".join(words)
    return pointer, (dtype_define if base == "T" else base)


class _FakePtr:
    """A CuPy MemoryPointer over NumPy memory: the root allocation and a byte offset into it."""

    def __init__(self, root: np.ndarray, offset: int) -> None:
        self.root, self.offset = root, offset

    @property
    def ptr(self) -> int:
        return self.root.ctypes.data + self.offset

    def __add__(self, nbytes: int) -> _FakePtr:
        return _FakePtr(self.root, self.offset + int(nbytes))

    def copy_from_device_async(self, src: _FakePtr, size: int, stream: object = None) -> None:
        assert 0 <= self.offset and self.offset + size <= self.root.nbytes, "memcpy past the destination"
        assert 0 <= src.offset and src.offset + size <= src.root.nbytes, "memcpy past the source"
        ctypes.memmove(self.ptr, src.ptr, size)

    def memset_async(self, value: int, size: int, stream: object = None) -> None:
        assert 0 <= self.offset and self.offset + size <= self.root.nbytes, "memset past the allocation"
        ctypes.memset(self.ptr, value, size)


class FakeArray(np.ndarray):
    """NumPy memory with the attributes the launchers use of a cupy.ndarray."""

    def __array_finalize__(self, obj: object) -> None:
        self._root = getattr(obj, "_root", None)

    @property
    def data(self) -> _FakePtr:  # type: ignore[override]
        return _FakePtr(self._root, self.__array_interface__["data"][0] - self._root.ctypes.data)

    def set(self, host: np.ndarray, stream: object = None) -> None:
        self[...] = host

    def get(self, stream: object = None) -> np.ndarray:
        return np.array(self)


def _fake_empty(shape: tuple[int, ...], dtype: object) -> FakeArray:
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    root = np.zeros(max(n * dtype.itemsize, 1), np.uint8)
    out = root[:n * dtype.itemsize].view(dtype).reshape(shape).view(FakeArray)
    out._root = root
    return out


class _FakeCupy:
    """The few CuPy entry points the CUDA device object calls."""

    class cuda:  # noqa: N801 - CuPy's module name
        class memory:  # noqa: N801
            class OutOfMemoryError(Exception):
                pass

    __version__ = "fake"
    empty = staticmethod(_fake_empty)

    def __init__(self) -> None:
        self.calls: list[tuple] = []  # CuPy routines the launchers called: (name, *arguments)

    def matmul(self, a: FakeArray, b: FakeArray, out: FakeArray) -> FakeArray:
        """cupy.matmul (cuBLAS), recorded and computed with NumPy into ``out``: the launchers
        always pass one."""
        self.calls.append(("matmul", a, b, out))
        np.matmul(a, b, out=out)
        return out

    @staticmethod
    def ndarray(shape: tuple[int, ...], dtype: object, memptr: _FakePtr, strides: tuple[int, ...]) -> FakeArray:
        out = np.ndarray(shape, dtype, buffer=memptr.root, offset=memptr.offset, strides=strides).view(FakeArray)
        out._root = memptr.root  # np.ndarray raised above if the view leaves the allocation
        return out


class _FakePool:
    def used_bytes(self) -> int:
        return 0

    def free_all_blocks(self) -> None:
        pass


class CheckingDevice(cuda_backend.CUDADevice):
    """A CUDADevice on NumPy memory whose launches are checked against the kernels' signatures."""

    def __init__(self) -> None:  # no super().__init__: that would talk to a driver
        self.cp, self.index, self.name, self.capability, self.sm_count = _FakeCupy(), 0, "fake", "9.0", 4
        self.memory_bytes, self.stream, self.pool, self.peak = 1 << 30, None, _FakePool(), 0
        self._init_shared_state()
        self.launches: list[tuple[str, str]] = []

    def launch(self, source: str, name: str, defines: tuple, grid: tuple, block: tuple, args: tuple) -> None:
        params = _signatures(source, tuple(defines)).get(name)
        assert params is not None, f"{source} {defines} has no kernel {name!r}"
        assert len(args) == len(params), f"{name}: {len(args)} arguments for {len(params)} parameters {params}"
        dtype_define = dict(defines).get("DTYPE")
        for k, (arg, param) in enumerate(zip(args, params)):
            pointer, base = _param_type(param, dtype_define)
            where = f"{name} argument {k} ({param})"
            if pointer:
                assert isinstance(arg, FakeArray), f"{where}: got {type(arg).__name__}"
                if base in _WIDTH_TYPES:
                    assert arg.dtype.itemsize == _WIDTH_TYPES[base], f"{where}: got {arg.dtype}"
                elif arg.dtype != np.bool_ or base != "u8":
                    assert arg.dtype == np.dtype(_SCALARS[base]), f"{where}: got a {arg.dtype} array"
            else:
                want = _SCALARS[base]
                assert type(arg) is want, f"{where}: got {type(arg).__name__} {arg!r}, the kernel reads {want.__name__}"
        grid = tuple(grid) + (1,) * (3 - len(grid))
        block = tuple(block) + (1,) * (3 - len(block))
        assert 1 <= grid[0] < 2**31 and 1 <= grid[1] <= 65535 and 1 <= grid[2] <= 65535, f"{name}: grid {grid}"
        assert all(b >= 1 for b in block) and int(np.prod(block)) <= 1024 and block[2] <= 64, f"{name}: block {block}"
        self.launches.append((source, name))


def _fake(a: np.ndarray) -> FakeArray:
    out = _fake_empty(a.shape, a.dtype)
    out[...] = a
    return out


def _specs(*args: object) -> list:
    from tensorcore.ops.registry import Spec

    return [Spec(tuple(a.shape), np.dtype(a.dtype)) if isinstance(a, np.ndarray) else a for a in args]


def _launch_cases() -> list[tuple[str, str, tuple, dict]]:
    """(label, op, inputs, attrs): every launcher, with strided views, broadcasts and both dtypes."""
    from tensorcore.ops.indexing import Slot

    r = np.random.default_rng(3)

    def f(*shape: int, dtype: type = np.float32) -> FakeArray:
        return _fake(r.standard_normal(shape).astype(dtype))

    def c(*shape: int, dtype: type = np.complex64) -> FakeArray:
        return _fake((r.standard_normal(shape) + 1j * r.standard_normal(shape)).astype(dtype))

    def idx(*shape: int, high: int = 4, dtype: type = np.int64) -> FakeArray:
        return _fake(r.integers(0, high, shape).astype(dtype))

    x4, x4d = f(2, 3, 9, 10), f(2, 3, 9, 10, dtype=np.float64)
    conv = {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)}
    pool = {"kernel_size": (3, 2), "stride": (2, 2), "padding": (1, 1)}
    t = f(40, 24).T  # a transposed view: the tiled copy
    cases = [
        ("add views", "add", (f(4, 5, 6), f(5, 1)), {}),
        ("add scalar", "add", (f(4, 5), 2.0), {}),
        ("exp of a view", "exp", (t,), {}),
        ("less", "less", (f(3, 4, dtype=np.float64), 0.5), {}),
        ("gelu tanh", "gelu", (f(7),), {"approximate": "tanh"}),
        ("relu_backward", "relu_backward", (f(7), f(7)), {}),
        ("matmul batched", "matmul", (f(2, 1, 4, 6), f(3, 6, 7)), {}),
        ("matmul 1-d", "matmul", (f(5), f(5, 9, dtype=np.float32)), {}),
        ("linear", "linear", (f(33, 20), f(17, 20), f(17)), {}),
        ("linear of a view", "linear", (f(4, 5, 6).transpose(1, 0, 2), f(3, 6)), {}),
        ("linear with its relu epilogue", "linear", (f(33, 20), f(17, 20), f(17)), {"activation": "relu"}),
        ("linear with its gelu epilogue", "linear", (f(33, 20), f(17, 20), f(17)), {"activation": "gelu"}),
        ("linear with its tanh-form gelu epilogue, float64", "linear",
         (f(33, 20, dtype=np.float64), f(17, 20, dtype=np.float64)), {"activation": "gelu_tanh"}),
        ("linear with its tanh epilogue", "linear", (f(4, 5, 6).transpose(1, 0, 2), f(3, 6)), {"activation": "tanh"}),
        ("conv2d with its sigmoid epilogue", "conv2d", (x4, f(4, 3, 3, 3), f(4)),
         {**conv, "groups": 1, "activation": "sigmoid"}),
        ("matmul_relu_backward", "matmul_relu_backward", (f(33, 20), f(20, 17), f(33, 17)), {}),
        ("linear_backward_weight", "linear_backward_weight", (f(33, 17), f(33, 20)), {}),
        ("linear_backward_bias", "linear_backward_bias", (f(8, 5),), {}),
        ("sum rows", "sum", (f(37, 3000),), {"axis": (1,), "keepdims": False, "dtype": None}),
        ("sum of a view", "sum", (t,), {"axis": (0,), "keepdims": True, "dtype": None}),
        ("mean cols", "mean", (f(3000, 37, dtype=np.float64),), {"axis": (0,), "keepdims": False}),
        ("max", "max", (f(4, 5, 6),), {"axis": (1,), "keepdims": False}),
        ("sum over axes apart", "sum", (f(2, 3, 4, 5),), {"axis": (0, 2, 3), "keepdims": False, "dtype": None}),
        ("mean over axes apart, keepdims", "mean", (f(2, 3, 4, 5),), {"axis": (0, 3), "keepdims": True}),
        ("softmax", "softmax", (f(3, 1000),), {"axis": -1}),
        ("log_softmax of a view", "log_softmax", (t,), {"axis": 1}),
        ("softmax_backward", "softmax_backward", (f(3, 10), f(3, 10)), {"axis": -1}),
        ("cross_entropy", "cross_entropy", (f(4, 10), idx(4, high=10, dtype=np.int32)), {"reduction": "mean"}),
        ("cross_entropy_backward", "cross_entropy_backward",
         (f(), f(4, 10), f(4, 10), idx(4, high=10)), {"reduction": "mean"}),
        ("sgd_step", "sgd_step", (f(5, 3), f(3, 5).T, f(5, 3), f(dtype=np.float64), f(dtype=np.float64)),
         {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
        ("sgd_step without momentum or counter", "sgd_step", (f(5, 3), f(5, 3), None, f(1, dtype=np.float64)),
         {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0}),
        ("adam_step", "adam_step", (f(5, 3, dtype=np.float64), f(5, 3, dtype=np.float64), f(5, 3, dtype=np.float64),
                                    f(5, 3, dtype=np.float64), f(4, dtype=np.float64), f(dtype=np.float64)),
         {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.1, "decoupled": True}),
        ("adam_schedule", "adam_schedule", (f(4, dtype=np.float64), f(dtype=np.float64), f(dtype=np.float64)),
         {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
        ("conv2d", "conv2d", (x4, f(4, 3, 3, 3), f(4)), {**conv, "groups": 1}),
        ("conv2d groups, strided input", "conv2d", (f(2, 10, 9, 4).transpose(0, 1, 3, 2), f(6, 5, 2, 2)),
         {**conv, "groups": 2}),
        ("conv2d float64", "conv2d", (x4d, f(4, 3, 3, 3, dtype=np.float64)), {**conv, "groups": 1}),
        ("conv2d_backward_input", "conv2d_backward_input", (f(2, 4, 5, 8), f(4, 3, 3, 3)),
         {**conv, "groups": 1, "input_size": (9, 10)}),
        ("conv2d_backward_input groups", "conv2d_backward_input", (f(2, 6, 5, 8), f(6, 1, 3, 3)),
         {**conv, "groups": 3, "input_size": (9, 10)}),
        ("conv2d_backward_weight", "conv2d_backward_weight", (x4, f(2, 4, 5, 8)),
         {**conv, "groups": 1, "kernel_size": (3, 3)}),
        ("conv2d_backward_weight groups", "conv2d_backward_weight", (f(2, 6, 9, 10), f(2, 4, 5, 8)),
         {**conv, "groups": 2, "kernel_size": (3, 3)}),
        ("max_pool2d", "max_pool2d", (x4,), pool),
        ("max_pool2d int64 view", "max_pool2d", (idx(2, 3, 10, 9, high=50).transpose(0, 1, 3, 2),), pool),
        ("max_pool2d_backward", "max_pool2d_backward", (f(2, 3, 5, 5), idx(2, 3, 5, 5, high=90)),
         {"input_size": (9, 10), "overlapping": True}),
        ("avg_pool2d", "avg_pool2d", (x4d,), pool),
        ("avg_pool2d_backward", "avg_pool2d_backward", (f(2, 3, 5, 5),), {**pool, "input_size": (9, 10)}),
        ("permute_dims", "permute_dims", (f(2, 3, 4),), {"axes": (2, 0, 1)}),
        ("broadcast_to", "broadcast_to", (f(3, 1),), {"shape": (2, 3, 4)}),
        ("reshape of a transpose", "reshape", (t,), {"shape": (-1,)}),
        ("reshape of a slice", "reshape", (f(6, 8)[:, 2:6],), {"shape": (3, 2, 4)}),
        ("flip", "flip", (f(3, 4),), {"axis": (0, 1)}),
        ("concat", "concat", (f(2, 3), f(3, 2).T, f(1, 3)), {"axis": 0}),
        ("getitem basic", "getitem", (f(4, 5, 6),), {"key": (slice(None, None, -2), None, 3)}),
        ("getitem take", "getitem", (f(4, 5), idx(2, 3)), {"key": (slice(None), Slot(0))}),
        ("getitem two tensors", "getitem", (f(4, 5, 6), idx(3, high=4, dtype=np.int32), idx(3, high=6, dtype=np.uint8)),
         {"key": (Slot(0), slice(1, 4), Slot(1))}),
        ("getitem of a view", "getitem", (t, idx(5, high=24, dtype=np.int16)), {"key": Slot(0)}),
        ("scatter_add", "scatter_add", (f(2, 3), idx(2, 3)), {"shape": (4,), "key": (Slot(0),)}),
        ("scatter_add basic", "scatter_add", (f(2, 5),), {"shape": (4, 5), "key": (slice(1, 3),)}),
        ("scatter_add int64", "scatter_add", (idx(3, 5, high=9), idx(3, high=4)), {"shape": (4, 5), "key": (Slot(0),)}),
        ("embedding", "embedding", (idx(2, 3, high=10), f(10, 4)), {}),
        ("embedding of a view", "embedding", (idx(3, 2, high=10, dtype=np.int32).T, f(4, 10).T), {}),
        ("embedding_backward", "embedding_backward", (f(2, 3, 4), idx(2, 3, high=10)), {"num_embeddings": 10}),
        # complex sums and means: the real reduction kernels on a float view with a pair axis
        ("complex64 sum rows", "sum", (c(37, 300),), {"axis": (1,), "keepdims": False, "dtype": None}),
        ("complex128 sum of a transposed view, keepdims", "sum", (c(40, 24, dtype=np.complex128).T,),
         {"axis": (0, 1), "keepdims": True, "dtype": np.dtype(np.complex128)}),
        ("complex64 sum cols", "sum", (c(3000, 5),), {"axis": (0,), "keepdims": False, "dtype": None}),
        ("complex64 mean over axes apart", "mean", (c(2, 3, 4, 5),), {"axis": (0, 2), "keepdims": False}),
        ("complex128 mean of a 0-d", "mean", (c(dtype=np.complex128),), {"axis": (), "keepdims": False}),
    ]
    return cases


@needs_cpp
@pytest.mark.parametrize("label,op,inputs,attrs", _launch_cases(), ids=[c[0] for c in _launch_cases()])
def test_launchers_pass_what_the_kernels_declare(label: str, op: str, inputs: tuple, attrs: dict) -> None:
    from tensorcore.backends.cuda_ops import KERNELS

    from tensorcore.ops.registry import OPS

    dev = CheckingDevice()
    out = KERNELS[op](dev, *inputs, **attrs)
    views = ("permute_dims", "broadcast_to", "flip", "getitem basic", "reshape of a slice", "scatter_add basic")
    assert bool(dev.launches) != (op in views or label in views), f"{label}: launches {dev.launches}"
    if op in ("sgd_step", "adam_step", "adam_schedule"):
        return
    expected = OPS[op].infer(*_specs(*inputs), **attrs)
    outs, rules = (out, expected) if OPS[op].n_outputs > 1 else ((out,), (expected,))
    for o, rule in zip(outs, rules):
        assert tuple(o.shape) == tuple(rule.shape) and o.dtype == rule.dtype, (label, o.shape, o.dtype, rule)


@needs_cpp
def test_in_place_launchers_check_their_targets() -> None:
    from tensorcore.backends.cuda_ops import KERNELS

    dev = CheckingDevice()
    x = _fake(np.zeros((4, 6), np.float32))
    KERNELS["assign"](dev, x, _fake(np.ones((6,), np.float32)))  # broadcast source
    KERNELS["assign"](dev, x, 2.5)  # a scalar: the fill kernel, no upload
    KERNELS["assign"](dev, x[:, ::2], x[:, 1::2])  # overlapping source: copied first
    assert [n for _, n in dev.launches] == ["copy_view_4", "fill_view_4", "copy_view_4", "copy_view_4"]
    with pytest.raises(ValueError, match="read-only"):
        KERNELS["assign"](dev, KERNELS["broadcast_to"](dev, x[:1], shape=(4, 6)), 1.0)
    with pytest.raises(KernelUnsupported):
        KERNELS["assign"](dev, x, _fake(np.ones((5,), np.float64)))  # the cpu casts; here it falls back
    with pytest.raises(KernelUnsupported, match="boolean mask"):
        KERNELS["getitem"](dev, x, _fake(np.ones((4, 5), bool)), key=cuda_index_slot(0))


def cuda_index_slot(i: int) -> object:
    from tensorcore.ops.indexing import Slot

    return Slot(i)


@needs_cpp
def test_copies_pick_memcpy_the_tiled_transpose_or_the_strided_gather() -> None:
    from tensorcore.backends.cuda_ops import movement_copy

    dev = CheckingDevice()
    a = _fake(np.arange(40 * 24, dtype=np.float32).reshape(40, 24))
    dense = movement_copy.copy_of(dev, a)  # dense to dense: a cudaMemcpyAsync, which the fake runs
    np.testing.assert_array_equal(dense, a)
    assert dev.launches == []
    movement_copy.contiguous(dev, a.T)
    movement_copy.contiguous(dev, a[:, ::3])
    movement_copy.contiguous(dev, a.T[:4])  # too short for tiles
    assert [n for _, n in dev.launches] == ["copy_tiled_4", "copy_view_4", "copy_view_4"]
    assert movement_copy.contiguous(dev, a) is a
    # the shared rule (OpenCL's copy uses it too), in element strides
    from tensorcore.strides import transpose_axis

    assert transpose_axis((24, 40), (1, 24)) == 0            # a.T: tiled
    assert transpose_axis((2, 24, 40), (960, 1, 24)) == 1    # a batch of transposes
    assert transpose_axis((40, 24), (24, 1)) is None         # row-major already
    assert transpose_axis((4, 40), (1, 24)) is None          # too short for tiles
    assert transpose_axis((24, 40), (0, 24)) is None         # a broadcast, not a transpose
    zeros = dev.zeros((3, 2), np.float64)  # a cudaMemsetAsync
    np.testing.assert_array_equal(zeros, 0)


def test_index_keys_reduce_to_offsets_and_strides() -> None:
    from tensorcore.backends.cuda_ops.movement_views import plan_key

    from tensorcore.ops.indexing import Slot
    from tensorcore.strides import nocopy_strides

    x = _fake(np.zeros((4, 5, 6), np.float32))
    i = _fake(np.zeros((2, 3), np.int64))
    plan = plan_key(x, (1, slice(None, None, -2), Slot(0)), (i,))
    assert plan.base == 1 * 30 + 4 * 6 and plan.dims == [(3, -12)] and plan.adv_at == 0
    plan = plan_key(x, (Slot(0), None, Ellipsis), (i,))
    assert plan.adv_at == 0 and plan.dims == [(1, 0), (5, 6), (6, 1)]
    plan = plan_key(x, (slice(None), Slot(0), Slot(1)), (i, i))
    assert plan.adv_at == 1 and [(n, s) for _, n, s in plan.adv] == [(5, 6), (6, 1)]
    plan = plan_key(x, (Slot(0), slice(None), Slot(1)), (i, i))
    assert plan.adv_at == 0  # separated index tensors: their dimensions go first, as in NumPy
    with pytest.raises(IndexError, match="out of bounds"):
        plan_key(x, (4,), ())
    assert nocopy_strides((4, 6), (6, 1), (2, 2, 6)) == [12, 6, 1]
    assert nocopy_strides((6, 4), (1, 6), (24,)) is None  # a transpose cannot be flattened without a copy
    assert nocopy_strides((4, 3), (12, 2), (2, 2, 3)) == [24, 12, 2]


def test_cuda_section_of_the_backends_doc_lists_every_native_op() -> None:
    from tensorcore.backends.cuda_ops import KERNELS

    text = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "backends.md").read_text()
    block = re.search(r"<!-- cuda-native -->(.*?)<!-- end -->", text, re.S).group(1)
    assert set(re.findall(r"`([a-z0-9_.]+)`", block)) == set(KERNELS)


def test_complex_kernels_declared_are_the_complex_launchers_installed() -> None:
    from tensorcore.backends.cuda_ops import KERNELS
    from tensorcore.backends.cuda_ops import complex as cuda_complex

    assert cuda_backend.CUDABackend.complex_kernels == cuda_complex.NATIVE
    assert {"sum", "mean", "matmul"} <= cuda_complex.NATIVE
    for name in cuda_complex.NATIVE:  # each entry sends complex operands to the complex launcher
        assert KERNELS[name].__doc__.startswith(f"``{name}`` on CUDA: complex launchers"), name


class RecordingDevice(CheckingDevice):
    """A CheckingDevice that also keeps every launch's arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.args: list[tuple] = []

    def launch(self, source: str, name: str, defines: tuple, grid: tuple, block: tuple, args: tuple) -> None:
        super().launch(source, name, defines, grid, block, args)
        self.args.append((name, dict(defines), args))


def _complex(shape: tuple[int, ...], dtype: type = np.complex64, seed: int = 5) -> FakeArray:
    r = np.random.default_rng(seed)
    return _fake((r.standard_normal(shape) + 1j * r.standard_normal(shape)).astype(dtype))


@needs_cpp
@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize("dtype,real", [(np.complex64, "float"), (np.complex128, "double")])
def test_complex_sums_reduce_the_parts_in_place_and_read_the_pairs_back(op: str, dtype: type, real: str) -> None:
    from tensorcore.backends.cuda_ops import KERNELS

    dev = RecordingDevice()
    x = _complex((6, 5), dtype)
    attrs = {"axis": (1,), "keepdims": False} | ({"dtype": None} if op == "sum" else {})
    out = KERNELS[op](dev, x, **attrs)
    assert out.shape == (6,) and out.dtype == np.dtype(dtype)
    # one launch of the real row reduction, on the complex memory itself read as (6, 5, 2) reals,
    # reduced over the 5 (A=6, N=5, B=2: a column reduction of the pairs); mean divides by 5
    [(name, defines, args)] = dev.args
    assert name == "reduce_cols" and defines == {"DTYPE": real, "COMB": str(cuda_reduce.SUM)}
    dst, src = args[0], args[1]
    assert src.dtype == np.dtype(real.replace("float", "float32").replace("double", "float64"))
    assert src.ctypes.data == x.ctypes.data and src.shape == (6, 5, 2)
    assert args[3] == 2 and args[2] == 5  # b (the pair) and n (the reduced axis)
    assert (args[-2], args[-1]) == ((np.int32(1), dst.dtype.type(5)) if op == "mean" else (np.int32(0), dst.dtype.type(1)))
    # the result is the kernel's output read as pairs: write what the kernel would, read it back
    dst[...] = np.arange(dst.size).reshape(dst.shape)
    np.testing.assert_array_equal(out, np.arange(0, 12, 2) + 1j * np.arange(1, 12, 2))
    assert out.ctypes.data == dst.ctypes.data


@needs_cpp
def test_complex_sums_of_views_and_empty_axes() -> None:
    from tensorcore.backends.cuda_ops import KERNELS

    dev = RecordingDevice()
    x = _complex((4, 6))
    out = KERNELS["sum"](dev, x[:, ::-2], axis=(0, 1), keepdims=True, dtype=np.dtype(np.complex64))
    assert out.shape == (1, 1) and out.dtype == np.complex64
    gather, reduce_ = dev.args[0], dev.args[-1]
    assert gather[0].startswith("copy_view")  # the strided view gathered once, as reals
    src = reduce_[2][1]
    assert src.dtype == np.float32 and src.shape == (4, 3, 2) and src.flags.c_contiguous
    assert reduce_[0] == "reduce_cols" and reduce_[2][3] == 2  # all 12 pairs summed part by part
    dev = RecordingDevice()
    empty = KERNELS["mean"](dev, _complex((0, 3), np.complex128), axis=(0,), keepdims=False)
    assert empty.shape == (3,) and empty.dtype == np.complex128  # NaN parts, as the real mean gives
    assert KERNELS["sum"](dev, _complex((3, 0)), axis=(0,), keepdims=False, dtype=None).shape == (0,)


@needs_cpp
def test_complex_sums_and_matmuls_decline_what_they_do_not_cover() -> None:
    from tensorcore.backends.cuda_ops import KERNELS

    dev = CheckingDevice()
    x, xd = _complex((3, 4)), _complex((4, 3), np.complex128)
    for dtype in (np.complex128, np.float32):  # sum computes in the input's complex dtype only
        with pytest.raises(KernelUnsupported, match="summing complex64"):
            KERNELS["sum"](dev, x, axis=(0,), keepdims=False, dtype=np.dtype(dtype))
    real = _fake(np.ones((4, 3), np.float32))
    for a, b in ((x, xd), (x, real), (real.T, x.T)):  # one complex dtype, on both operands
        with pytest.raises(KernelUnsupported, match="two complex tensors of one dtype"):
            KERNELS["matmul"](dev, a, b)
    with pytest.raises(KernelUnsupported, match="0-D"):
        KERNELS["matmul"](dev, _complex(()), x)
    with pytest.raises(KernelUnsupported, match="inner dimensions"):
        KERNELS["matmul"](dev, x, x)
    assert dev.launches == [] and dev.cp.calls == []


@needs_cpp
@pytest.mark.parametrize("shapes", [((2, 1, 4, 6), (3, 6, 7)), ((5,), (5, 9)), ((9, 5), (5,)), ((5,), (5,)),
                                    ((3, 5), (4, 5, 2)), ((3, 0), (0, 4)), ((0, 3), (3, 4))])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_matmul_is_cupys_into_an_output_of_ours(shapes: tuple, dtype: type) -> None:
    from tensorcore.backends.cuda_ops import KERNELS

    from tensorcore.ops.registry import OPS

    dev = CheckingDevice()
    a, b = _complex(shapes[0], dtype, seed=1), _complex(shapes[1], dtype, seed=2)
    out = KERNELS["matmul"](dev, a, b)
    rule = OPS["matmul"].infer(*_specs(a, b))
    assert out.shape == rule.shape and out.dtype == rule.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, np.matmul(np.asarray(a), np.asarray(b)), rtol=1e-5)
    assert dev.launches == []  # no kernel of ours: cuBLAS through CuPy
    k = shapes[0][-1]
    if k == 0 or 0 in out.shape:
        assert dev.cp.calls == []  # zeros (an empty sum) or nothing to compute
        return
    [(name, a2, b2, full)] = dev.cp.calls
    assert name == "matmul" and a2.ndim >= 2 and b2.ndim >= 2  # 1-D operands as (1, K) and (K, 1) views
    assert a2.ctypes.data == a.ctypes.data and b2.ctypes.data == b.ctypes.data
    assert full.flags.c_contiguous and full.ctypes.data == out.ctypes.data  # the op's shape is a view of it


@needs_cpp
def test_complex_matmul_reads_transposed_views_in_place() -> None:
    from tensorcore.backends.cuda_ops import KERNELS

    dev = CheckingDevice()
    a = _complex((7, 4), np.complex128)
    out = KERNELS["matmul"](dev, a.T, a)
    np.testing.assert_allclose(out, np.asarray(a).T @ np.asarray(a), rtol=1e-12)
    [(_, a2, _, _)] = dev.cp.calls
    assert a2.ctypes.data == a.ctypes.data and a2.strides == a.T.strides  # no copy of ours: CuPy's call


# --- with a GPU: the key ops against NumPy --------------------------------------------------------


def _on(x: np.ndarray) -> tc.Tensor:
    return tc.asarray(x, device=CUDA)


rng = np.random.default_rng(0)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", [((130, 70), (70, 257)), ((1, 1), (1, 1)), ((3, 129, 8), (8, 5)), ((2, 1, 4, 6), (3, 6, 7)),
                                    ((5,), (5, 9)), ((9, 5), (5,))])
def test_matmul_matches_numpy(shapes: tuple, dtype: type) -> None:
    a = rng.standard_normal(shapes[0]).astype(dtype)
    b = rng.standard_normal(shapes[1]).astype(dtype)
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    with tc.placement_policy("strict"):
        np.testing.assert_allclose(tc.matmul(_on(a), _on(b)).numpy(), a @ b, rtol=rtol, atol=rtol)
        if a.ndim == 2 and b.ndim == 2:  # transposed views, read through strides
            at, bt = _on(a.T.copy()), _on(b.T.copy())
            got = tc.matmul(tc.permute_dims(at, (1, 0)), tc.permute_dims(bt, (1, 0))).numpy()
            np.testing.assert_allclose(got, a @ b, rtol=rtol, atol=rtol)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_sum_mean_and_matmul_run_on_the_gpu_and_match_numpy(dtype: type) -> None:
    a = (rng.standard_normal((3, 40, 6)) + 1j * rng.standard_normal((3, 40, 6))).astype(dtype)
    b = (rng.standard_normal((6, 5)) + 1j * rng.standard_normal((6, 5))).astype(dtype)
    tol = 1e-4 if dtype == np.complex64 else 1e-12
    with tc.placement_policy("strict"):  # a fallback to cpu fails
        for axis in (None, (1,), (0, 2)):
            np.testing.assert_allclose(tc.sum(_on(a), axis=axis).numpy(), a.sum(axis=axis), rtol=tol, atol=tol)
            np.testing.assert_allclose(tc.mean(_on(a), axis=axis).numpy(), a.mean(axis=axis), rtol=tol, atol=tol)
        view = tc.permute_dims(_on(a), (2, 1, 0))
        np.testing.assert_allclose(tc.sum(view, axis=(0,)).numpy(), a.transpose(2, 1, 0).sum(axis=0), rtol=tol, atol=tol)
        np.testing.assert_allclose(tc.matmul(_on(a), _on(b)).numpy(), a @ b, rtol=tol, atol=tol)
        np.testing.assert_allclose(tc.matmul(_on(b[:, 0]), _on(b)).numpy(), b[:, 0] @ b, rtol=tol, atol=tol)


@needs_gpu
def test_linear_and_its_weight_gradient_match_numpy() -> None:
    x, w, bias = (rng.standard_normal(s).astype(np.float32) for s in ((33, 20), (17, 20), (17,)))
    g = rng.standard_normal((33, 17)).astype(np.float32)
    from tensorcore.dispatch import apply
    from tensorcore.ops.registry import OPS

    with tc.placement_policy("strict"):
        np.testing.assert_allclose(tc.nn.functional.linear(_on(x), _on(w), _on(bias)).numpy(), x @ w.T + bias,
                                   rtol=1e-4, atol=1e-5)
        got = apply(OPS["linear_backward_weight"], (_on(g), _on(x)), {}).numpy()
        np.testing.assert_allclose(got, g.T @ x, rtol=1e-4, atol=1e-5)


@needs_gpu
def test_add_broadcasts_tensors_views_and_scalars() -> None:
    a = rng.standard_normal((4, 5, 6)).astype(np.float32)
    b = rng.standard_normal((5, 1)).astype(np.float32)
    with tc.placement_policy("strict"):
        np.testing.assert_array_equal(tc.add(_on(a), _on(a)).numpy(), a + a)
        np.testing.assert_array_equal(tc.add(_on(a), _on(b)).numpy(), a + b)
        np.testing.assert_array_equal(tc.add(_on(a), 2.5).numpy(), a + np.float32(2.5))
        np.testing.assert_array_equal(tc.add(tc.permute_dims(_on(a), (2, 0, 1)), 1.0).numpy(), a.transpose(2, 0, 1) + 1)
        np.testing.assert_array_equal(tc.less(_on(a), 0.0).numpy(), a < 0)


@needs_gpu
@pytest.mark.parametrize("shape,axis", [((1000,), None), ((37, 3000), (1,)), ((3000, 37), (0,)), ((4, 5, 6), (1,)),
                                        ((2, 300_000), (1,)), ((0, 4), (0,))])
def test_sum_mean_max_match_numpy(shape: tuple, axis: tuple | None) -> None:
    x = rng.standard_normal(shape).astype(np.float32)
    t = _on(x)
    with tc.placement_policy("strict"):
        np.testing.assert_allclose(tc.sum(t, axis=axis).numpy(), x.sum(axis=axis), rtol=1e-5, atol=1e-4)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the mean of an empty axis is NaN
            want = x.mean(axis=axis)
        np.testing.assert_allclose(tc.mean(t, axis=axis).numpy(), want, rtol=1e-5, atol=1e-6)
        if x.size:
            np.testing.assert_array_equal(tc.max(t, axis=axis).numpy(), x.max(axis=axis))


@needs_gpu
@pytest.mark.parametrize("shape", [(4, 10), (3, 1000), (2, 70_001), (5, 1)])
def test_softmax_log_softmax_and_cross_entropy_match_numpy(shape: tuple) -> None:
    from tensorcore.dispatch import apply
    from tensorcore.ops.registry import OPS

    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    z = x.astype(np.float64) - x.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = rng.integers(0, shape[1], shape[0])
    with tc.placement_policy("strict"):
        np.testing.assert_allclose(tc.nn.functional.softmax(_on(x), axis=-1).numpy(), probs, atol=1e-6)
        np.testing.assert_allclose(tc.nn.functional.log_softmax(_on(x), axis=-1).numpy(), np.log(probs),
                                   rtol=1e-5, atol=1e-5)
        loss, p = apply(OPS["cross_entropy"], (_on(x), _on(labels)), {"reduction": "mean"})
        np.testing.assert_allclose(loss.numpy(), -np.log(probs[np.arange(shape[0]), labels]).mean(), rtol=1e-5)
        g = apply(OPS["cross_entropy_backward"], (_on(np.float32(1.0)), _on(x), p, _on(labels)), {"reduction": "mean"})
        onehot = np.zeros(shape)
        onehot[np.arange(shape[0]), labels] = 1.0
        want = (probs - onehot) / shape[0]
        np.testing.assert_allclose(g.numpy(), want, atol=1e-6)


@needs_gpu
def test_out_of_range_label_is_reported_at_the_next_read() -> None:
    from tensorcore.dispatch import apply
    from tensorcore.ops.registry import OPS

    loss, _ = apply(OPS["cross_entropy"], (_on(np.zeros((2, 3), np.float32)), _on(np.array([0, 3]))), {"reduction": "sum"})
    with pytest.raises(tc.errors.DeviceError, match=r"label 3 is out of range for 3 classes \(at position 1\)"):
        loss.numpy()


def _optimizer_run(cls: type, device: str, dtype: type, **kwargs: object) -> np.ndarray:
    from tensorcore import optim

    p = tc.Variable(np.random.default_rng(1).standard_normal((5, 3)).astype(dtype), device=device)
    opt = getattr(optim, cls)([p], **kwargs)
    for k in range(4):
        opt.step([tc.asarray(np.random.default_rng(10 + k).standard_normal((5, 3)).astype(dtype), device=device)])
    return p.numpy()


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kwargs", [
    ("SGD", {"lr": 0.1}), ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01}), ("Adam", {"lr": 0.01, "weight_decay": 0.1}), ("AdamW", {"lr": 0.02, "weight_decay": 0.1}),
])
def test_fused_sgd_and_adam_steps_match_the_cpu(cls: str, kwargs: dict, dtype: type) -> None:
    want = _optimizer_run(cls, "cpu", dtype, **kwargs)
    with tc.placement_policy("strict"):
        got = _optimizer_run(cls, CUDA, dtype, **kwargs)
    np.testing.assert_allclose(got, want, rtol=2e-6 if dtype == np.float32 else 1e-14, atol=1e-7)


@needs_gpu
def test_memory_stats_and_out_of_memory() -> None:
    before = tc.memory_stats(CUDA)
    x = tc.zeros((1 << 20,), device=CUDA)
    during = tc.memory_stats(CUDA)
    assert during["in_use"] >= before["in_use"] + 4 * (1 << 20) and during["peak"] >= during["in_use"]
    del x
    huge = 1 << 50  # a petabyte: fails even after the pool is emptied
    with pytest.raises(tc.OutOfMemoryError) as info:
        from tensorcore import registry

        dev = registry.get_backend("cuda").device(0)
        with dev.activate():
            dev.empty((huge,), np.uint8)
    assert "cuda:0" in str(info.value) and f"{huge:,} bytes" in str(info.value)


# --- with a GPU: movement, indexing, conv and pooling against the cpu -----------------------------


def _grads(fn: object, inputs: list[np.ndarray], device: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """(fn's output, its input gradients for the sum of output * a fixed weight) on ``device``."""
    ts = [tc.Variable(a, device=device) for a in inputs]
    with tc.GradientTape() as tape:
        out = fn(*ts)
        weight = tc.asarray(np.random.default_rng(7).standard_normal(out.shape).astype(out.dtype), device=device)
        total = tc.sum(out * weight)
    return out.numpy(), [g.numpy() for g in tape.gradient(total, ts)]


def _same_on_cuda_as_on_cpu(fn: object, inputs: list[np.ndarray], rtol: float) -> None:
    want, want_grads = _grads(fn, inputs, "cpu")
    with tc.placement_policy("strict"):  # a fallback to the cpu fails the test
        got, got_grads = _grads(fn, inputs, CUDA)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
    for g, w in zip(got_grads, want_grads):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("groups,stride,padding,dilation", [(1, 1, 0, 1), (1, (2, 1), (1, 2), (1, 2)), (2, (1, 2), 1, (2, 1))])
def test_conv2d_and_both_backward_ops_match_the_cpu(groups: int, stride: object, padding: object, dilation: object,
                                                    dtype: type) -> None:
    x = rng.standard_normal((3, 4, 11, 10)).astype(dtype)
    w = rng.standard_normal((6, 4 // groups, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)

    def conv(x: tc.Tensor, w: tc.Tensor, b: tc.Tensor) -> tc.Tensor:
        return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

    _same_on_cuda_as_on_cpu(conv, [x, w, b], 1e-4 if dtype == np.float32 else 1e-11)


@needs_gpu
@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0))])
def test_pooling_and_its_gradients_match_the_cpu(kernel: object, stride: object, padding: object) -> None:
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    _same_on_cuda_as_on_cpu(lambda t: F.max_pool2d(t, kernel, stride, padding), [x], 1e-6)
    _same_on_cuda_as_on_cpu(lambda t: F.avg_pool2d(t, kernel, stride, padding), [x], 1e-6)
    ints = rng.integers(-50, 50, (2, 3, 9, 8))
    with tc.placement_policy("strict"):
        got = F.max_pool2d(_on(ints), kernel, stride, padding).numpy()
    np.testing.assert_array_equal(got, F.max_pool2d(tc.asarray(ints), kernel, stride, padding).numpy())


@needs_gpu
def test_views_copies_and_concat_match_numpy() -> None:
    a = rng.standard_normal((40, 24)).astype(np.float32)
    b = rng.standard_normal((3, 24)).astype(np.float32)
    with tc.placement_policy("strict"):
        t = _on(a)
        np.testing.assert_array_equal(tc.reshape(tc.permute_dims(t, (1, 0)), (-1,)).numpy(), a.T.reshape(-1))
        np.testing.assert_array_equal(tc.flip(t, axis=0)[::3, 5:].numpy(), a[::-1][::3, 5:])
        np.testing.assert_array_equal(tc.concat([t, _on(b), tc.permute_dims(_on(b.T.copy()), (1, 0))], axis=0).numpy(),
                                      np.concatenate([a, b, b]))
        np.testing.assert_array_equal(tc.broadcast_to(_on(b[:1]), (4, 24)).numpy(), np.broadcast_to(b[:1], (4, 24)))
        np.testing.assert_allclose(tc.sum(tc.permute_dims(t, (1, 0)), axis=1).numpy(), a.sum(0), rtol=1e-5)


@needs_gpu
def test_take_getitem_and_their_gradient_match_numpy() -> None:
    x = rng.standard_normal((5, 6, 7)).astype(np.float32)
    i = np.array([[4, 0], [-1, 2]])
    j = np.array([1, 6, 0], dtype=np.int32)
    with tc.placement_policy("strict"):
        t, ti, tj = _on(x), _on(i), _on(j)
        np.testing.assert_array_equal(tc.take(t, ti, axis=1).numpy(), np.take(x, i, axis=1))
        np.testing.assert_array_equal(t[ti, 1:4].numpy(), x[i, 1:4])
        np.testing.assert_array_equal(t[tj[:2], :, tj[1:]].numpy(), x[j[:2], :, j[1:]])
    _same_on_cuda_as_on_cpu(lambda v: v[tc.asarray(i, device=v.device), ::2], [x], 1e-6)


@needs_gpu
def test_embedding_and_its_gradient_match_the_cpu_and_bad_indices_are_reported_late() -> None:
    w = rng.standard_normal((10, 4)).astype(np.float32)
    idx = np.array([[1, 9, 1], [0, 3, 1]])
    _same_on_cuda_as_on_cpu(lambda v: F.embedding(tc.asarray(idx, device=v.device), v), [w], 1e-6)
    out = F.embedding(_on(np.array([0, 10])), _on(w))  # checked on the device: no host wait
    with pytest.raises(tc.errors.DeviceError, match=r"embedding: index 10 is out of range for a weight with 10 rows "
                                                    r"\(at position 1\)"):
        out.numpy()
    bad = _on(np.arange(6.0, dtype=np.float32))[_on(np.array([7]))]
    with pytest.raises(tc.errors.DeviceError, match=r"getitem: index 7 is out of bounds for axis 0 with size 6 "
                                                    r"\(at position 0\)"):
        bad.numpy()


@needs_gpu
def test_assign_writes_into_the_same_memory_so_views_see_it() -> None:
    v = tc.Variable(np.zeros((3, 4), np.float32), device=CUDA)
    view = tc.permute_dims(v, (1, 0))
    with tc.placement_policy("strict"):
        v.assign(tc.asarray(np.ones((3, 4), np.float32), device=CUDA))
    np.testing.assert_array_equal(view.numpy(), np.ones((4, 3)))
