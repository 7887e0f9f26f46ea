"""DLPack exchange without copies: ``tc.from_dlpack`` / ``tc.asarray`` of foreign arrays and
``Tensor.__dlpack__`` / ``__dlpack_device__`` for foreign consumers.

Zero-copy is shown the only way that cannot be faked: a write through one side is seen
through the other. On cpu the partners are NumPy and PyTorch CPU tensors; on a GPU, CuPy
arrays and PyTorch CUDA tensors (those tests skip, saying why, without a CUDA device). OpenCL
has no DLPack device type that consumers accept, so exporting an opencl tensor raises a clear
``BufferError``.
"""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install 'tensorcore[bench]')")

AVAILABLE = [str(d.device) for d in tc.devices()]
CUDA = "cuda:0"
HAVE_CUDA = CUDA in AVAILABLE
needs_cuda = pytest.mark.skipif(not HAVE_CUDA, reason="no CUDA device here (or CuPy missing): "
                                                      "the zero-copy exchange with GPU memory was not tested")
needs_torch_cuda = pytest.mark.skipif(not (HAVE_CUDA and torch.cuda.is_available()),
                                      reason="no CUDA device visible to both tensorcore and PyTorch")
needs_opencl = pytest.mark.skipif("opencl:0" not in AVAILABLE, reason="no OpenCL device here")


# --- cpu: NumPy and PyTorch CPU tensors -----------------------------------------------------------


def test_numpy_array_is_shared_both_ways() -> None:
    host = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = tc.from_dlpack(host)
    assert t.device == tc.Device("cpu") and t.dtype == tc.float64 and t.shape == (2, 3)
    host[0, 0] = 42.0  # NumPy writes, tensorcore sees
    assert t.numpy()[0, 0] == 42.0
    back = np.from_dlpack(t)
    t[1, 2] = -7.0  # tensorcore writes, NumPy sees
    assert back[1, 2] == -7.0 and host[1, 2] == -7.0
    assert np.shares_memory(back, host)
    assert t.__dlpack_device__() == (1, 0)


def test_numpy_strided_view_is_shared() -> None:
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = tc.from_dlpack(host[:, ::2].T)  # DLPack carries strides: no copy for a view either
    assert t.shape == (2, 3)
    host[2, 2] = 100.0
    assert t.numpy()[1, 2] == 100.0


def test_torch_cpu_tensor_is_shared_both_ways() -> None:
    pt = torch.arange(8, dtype=torch.float32)
    t = tc.from_dlpack(pt)
    assert t.device == tc.Device("cpu") and t.dtype == tc.float32
    pt[3] = 99.0  # PyTorch writes, tensorcore sees
    assert t.numpy()[3] == 99.0
    back = torch.from_dlpack(t)  # tensorcore -> PyTorch: PyTorch asks __dlpack_device__, then __dlpack__
    t[5] = -1.0
    assert back[5].item() == -1.0 and pt[5].item() == -1.0
    assert back.data_ptr() == pt.data_ptr()


def test_asarray_of_a_torch_tensor_shares_memory_unless_asked_to_copy() -> None:
    pt = torch.zeros(4, dtype=torch.int64)
    shared, copied = tc.asarray(pt, device="cpu"), tc.asarray(pt, device="cpu", copy=True)
    pt[0] = 5
    assert shared.numpy()[0] == 5 and copied.numpy()[0] == 0
    assert tc.asarray(pt, dtype=tc.float32).dtype == tc.float32  # a cast copies, as NumPy's would


def test_copy_arguments() -> None:
    host = np.zeros(3, np.float32)
    copied = tc.from_dlpack(host, copy=True)
    host[0] = 1.0
    assert copied.numpy()[0] == 0.0
    assert tc.from_dlpack(host, copy=False).numpy()[0] == 1.0
    scalar = tc.sum(tc.asarray([1.0, 2.0]))  # a 0-d result (a NumPy scalar inside) exports too
    assert np.from_dlpack(scalar) == 3.0 and torch.from_dlpack(scalar).item() == 3.0


def test_a_non_dlpack_object_is_refused_by_name() -> None:
    with pytest.raises(tc.OpError, match="from_dlpack: list does not implement the DLPack protocol"):
        tc.from_dlpack([1, 2])


# --- opencl: no DLPack device type that consumers accept -----------------------------------------


@needs_opencl
def test_opencl_tensor_export_says_to_copy_to_the_host_first() -> None:
    x = tc.asarray(np.arange(4.0), device="opencl:0")
    assert x.__dlpack_device__() == (4, 0)  # kDLOpenCL: true, but no consumer takes it
    message = r"opencl:0 .*OpenCL buffers have no DLPack device type.*x\.to_device\('cpu'\)"
    with pytest.raises(BufferError, match=message):
        x.__dlpack__()
    with pytest.raises(BufferError, match=message):
        np.from_dlpack(x)
    with pytest.raises(BufferError, match=message):
        torch.from_dlpack(x)
    # What the message suggests works; so does asking the protocol for a host copy.
    np.testing.assert_array_equal(np.from_dlpack(x.to_device("cpu")), np.arange(4.0))
    np.testing.assert_array_equal(np.from_dlpack(x, device="cpu"), np.arange(4.0))
    with pytest.raises(BufferError):
        x.__dlpack__(dl_device=(1, 0), copy=False)  # a host copy, but no copy allowed
    assert tc.from_dlpack(x).device == tc.Device("opencl:0")  # between tensors: no DLPack involved


# --- cuda: CuPy arrays and PyTorch CUDA tensors ---------------------------------------------------


@needs_cuda
def test_cupy_array_is_shared_both_ways() -> None:
    import cupy

    with cupy.cuda.Device(0):
        c = cupy.arange(6, dtype=cupy.float32)
    t = tc.from_dlpack(c)
    assert t.device == tc.Device(CUDA) and t.dtype == tc.float32
    assert t._data.data.ptr == c.data.ptr  # the same device memory
    c[2] = 42.0  # CuPy writes (on its stream; from_dlpack ordered it before ours)
    cupy.cuda.get_current_stream().synchronize()
    assert t.numpy()[2] == 42.0
    back = cupy.from_dlpack(t)
    t[4] = -3.0  # tensorcore writes on its stream
    tc.synchronize(CUDA)
    assert float(back[4]) == -3.0 and back.data.ptr == c.data.ptr
    assert t.__dlpack_device__() == (2, 0)


@needs_cuda
def test_cuda_results_export_after_the_work_that_makes_them() -> None:
    import cupy

    x = tc.asarray(np.arange(1 << 20, dtype=np.float32), device=CUDA)
    y = tc.exp(x * 1e-6)  # queued on tensorcore's stream; no host wait
    got = cupy.from_dlpack(y)  # CuPy's stream waits for ours (an event), then reads
    np.testing.assert_allclose(cupy.asnumpy(got), np.exp(np.arange(1 << 20, dtype=np.float32) * 1e-6), rtol=1e-6)


@needs_torch_cuda
def test_torch_cuda_tensor_is_shared_both_ways() -> None:
    pt = torch.arange(5, dtype=torch.float64, device="cuda:0")
    t = tc.from_dlpack(pt)
    assert t.device == tc.Device(CUDA) and t._data.data.ptr == pt.data_ptr()
    pt[1] = 7.0
    torch.cuda.synchronize()
    assert t.numpy()[1] == 7.0
    back = torch.from_dlpack(t)
    t[3] = -2.0
    tc.synchronize(CUDA)
    assert back[3].item() == -2.0 and back.data_ptr() == pt.data_ptr()
    assert tc.asarray(pt).device == tc.Device(CUDA)  # asarray infers the device from the data


@needs_cuda
def test_cuda_data_placed_elsewhere_is_copied_or_refused() -> None:
    import cupy

    c = cupy.ones(3, dtype=cupy.float32)
    on_cpu = tc.from_dlpack(c, device="cpu")
    c[0] = 5.0
    cupy.cuda.get_current_stream().synchronize()
    assert on_cpu.device == tc.Device("cpu") and on_cpu.numpy()[0] == 1.0  # a copy
    with pytest.raises(ValueError, match=r"copy=False.*cuda:0"):
        tc.from_dlpack(c, device="cpu", copy=False)
    copied = tc.from_dlpack(c, copy=True)
    assert copied.device == tc.Device(CUDA) and copied._data.data.ptr != c.data.ptr


def test_cuda_data_without_a_usable_cuda_backend_is_refused_clearly() -> None:
    if HAVE_CUDA:
        pytest.skip("a CUDA device is available here")

    class FakeGPUArray:
        def __dlpack_device__(self) -> tuple[int, int]:
            return (2, 0)

        def __dlpack__(self, **kwargs: object) -> object:
            raise AssertionError("must not be read: there is no CUDA backend to read it with")

    with pytest.raises(tc.OpError, match=r"from_dlpack: the FakeGPUArray lives on CUDA device 0, which tensorcore "
                                         r"cannot use here: the cuda backend is unavailable"):
        tc.from_dlpack(FakeGPUArray())
