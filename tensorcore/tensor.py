"""The Tensor: a backend array, the device it lives on, and the Array API's array object.

A tensor does not know how to compute: its operators and op-calling methods are installed
by :mod:`tensorcore.ops.methods`, which calls the op functions. This module holds only the
data plumbing, so every layer can import it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tensorcore.device import Device

# Set by tensorcore.graph: raises when a value is read while a function is being traced.
value_read_hook: Any = None

# DLPack device types (dlpack.h's DLDeviceType) of the tensors' __dlpack_device__.
_DL_CPU, _DL_EXT_DEV = 1, 12
_DL_DEVICE_TYPES = {"cpu": 1, "cuda": 2, "opencl": 4}


class Tensor:
    """An n-dimensional array on a device. Create one with ``tc.asarray`` and friends."""

    # _version counts writes in place (setitem, assign, optimizer steps). Tapes record it
    # for every input and compare it at gradient time to catch writes after recording.
    __slots__ = ("_data", "_device", "_version", "__weakref__")
    __array_priority__ = 1000  # NumPy defers `ndarray + Tensor` to Tensor.__radd__

    _data: Any
    _device: Device

    # --- attributes of the Array API array object -------------------------------------
    @property
    def dtype(self) -> np.dtype:
        """The element type (a NumPy dtype object, e.g. ``tc.float32``)."""
        return self._data.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        """The size of each dimension."""
        return tuple(self._data.shape)

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return len(self._data.shape)

    @property
    def size(self) -> int:
        """The number of elements."""
        return math.prod(self._data.shape)  # not np.prod: ~20x slower on a short tuple

    @property
    def device(self) -> Device:
        """The device holding this tensor's data."""
        return self._device

    def to_device(self, device: str | Device, /, *, stream: Any = None) -> Tensor:
        """A copy on ``device`` (``self`` if already there); differentiable."""
        from tensorcore.device import resolve
        from tensorcore.dispatch import transfer

        return transfer(self, resolve(device))

    to = to_device  # PyTorch's spelling

    def __array_namespace__(self, /, *, api_version: str | None = None) -> Any:
        """The tensorcore namespace, which follows the Python Array API standard."""
        import tensorcore

        if api_version not in (None, "2023.12", "2024.12"):
            raise ValueError(f"unsupported Array API version {api_version!r}; use '2023.12' or '2024.12'")
        return tensorcore

    # --- host interchange ------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array on the host (waits for the device)."""
        if value_read_hook is not None:
            value_read_hook(".numpy(), .item(), bool(), float() or the like")
        if self._device.type == "cpu":
            return np.asarray(self._data)  # 0-d results of NumPy kernels are NumPy scalars
        from tensorcore import registry

        return registry.get_backend(self._device.type).to_numpy(self._data)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        a = self.numpy()
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        return a.copy() if copy else a

    def __dlpack__(self, *, stream: Any = None, max_version: Any = None, dl_device: Any = None, copy: Any = None) -> Any:
        """This tensor as a DLPack capsule, sharing its memory (no copy) where the device's arrays
        speak DLPack: NumPy's on ``cpu``, CuPy's on ``cuda`` (where the consumer's ``stream``
        is made to wait for the work queued on the device's stream). OpenCL buffers have no
        DLPack device type that consumers accept: this raises ``BufferError``, unless the
        consumer asks for a host copy (``dl_device=(1, 0)``, as ``np.from_dlpack(x,
        device="cpu")`` does). Nothing is read, so pending device errors are not raised here."""
        if value_read_hook is not None:
            value_read_hook("a DLPack export (__dlpack__)")
        kwargs = {k: v for k, v in (("stream", stream), ("max_version", max_version), ("dl_device", dl_device),
                                    ("copy", copy)) if v is not None}
        if self._device.type == "cpu":
            return np.asarray(self._data).__dlpack__(**kwargs)  # a NumPy scalar result becomes a 0-d array
        from tensorcore import registry

        backend = registry.get_backend(self._device.type)
        export = getattr(backend, "to_dlpack", None)  # a backend's own export (cuda: with its stream current)
        if export is not None:
            return export(self._data, **kwargs)
        if hasattr(self._data, "__dlpack__"):
            return self._data.__dlpack__(**kwargs)
        if dl_device is not None and int(tuple(dl_device)[0]) == _DL_CPU and copy is not False:
            # The consumer asked for host memory; the protocol allows a copy for that.
            return self.numpy().__dlpack__(**{k: v for k, v in kwargs.items() if k != "copy"})
        why = ("OpenCL buffers have no DLPack device type that consumers (NumPy, PyTorch, CuPy, JAX) accept"
               if self._device.type == "opencl" else f"the {self._device.type} backend's arrays do not support DLPack")
        raise BufferError(f"cannot export a tensor on {self._device} through DLPack without a copy: {why}. "
                          f"Copy it to the host first: x.to_device('cpu') (or np.from_dlpack(x, device='cpu'))")

    def __dlpack_device__(self) -> tuple[int, int]:
        """(DLPack device type, device index): (1, 0) on cpu (kDLCPU), (2, N) on cuda:N (kDLCUDA),
        (4, N) on opencl:N (kDLOpenCL: stated for what it is, though ``__dlpack__`` refuses it)."""
        if self._device.type == "cpu":
            return (_DL_CPU, 0)
        if hasattr(self._data, "__dlpack_device__"):
            kind, index = self._data.__dlpack_device__()
            return (int(kind), int(index))
        return (_DL_DEVICE_TYPES.get(self._device.type, _DL_EXT_DEV), self._device.index)

    def item(self) -> Any:
        """The value of a one-element tensor as a Python scalar."""
        return self.numpy().item()

    def tolist(self) -> Any:
        """The values as nested Python lists."""
        return self.numpy().tolist()

    def __bool__(self) -> bool:
        return bool(self._scalar("__bool__"))

    def __int__(self) -> int:
        self._not_complex("__int__", "int")
        return int(self._scalar("__int__"))

    def __float__(self) -> float:
        self._not_complex("__float__", "float")
        return float(self._scalar("__float__"))

    def __complex__(self) -> complex:
        return complex(self._scalar("__complex__"))

    def _not_complex(self, what: str, kind: str) -> None:
        # Python's own rule (float(1j) raises); NumPy would drop the imaginary part with a warning.
        if self.dtype.kind == "c":
            raise TypeError(f"{what} of a {self.dtype} tensor: a complex number has no {kind} value; "
                            f"use complex(x), or float(tc.real(x)) / float(tc.abs(x))")

    def __index__(self) -> int:
        if self.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, not {self.dtype}")
        return int(self._scalar("__index__"))

    def _scalar(self, what: str) -> Any:
        if self.size != 1:
            raise TypeError(f"{what} needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def __len__(self) -> int:
        if not self._data.shape:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self) -> Any:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}, device='{self._device}')"

    __hash__ = object.__hash__  # by identity, like PyTorch, so tensors can key a dict

    # --- copies and files -------------------------------------------------------------
    def __deepcopy__(self, memo: dict) -> Tensor:
        """A new tensor with a copy of this one's data, on the same device (off tapes and graphs)."""
        copied = object.__new__(type(self))
        copied._data, copied._device, copied._version = _copy_data(self), self._device, 0
        return copied

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Refused on every device, cpu too: tensorcore never loads pickles (loading one can run
        # code), so it does not make them either. (Device buffers could not be pickled anyway.)
        raise TypeError(
            f"a tensorcore {type(self).__name__} cannot be pickled. Save tensors with "
            f"tc.save({{'name': tensor}}, 'file.safetensors') and read them with tc.load(...); a model with "
            f"tc.save(model.state_dict(), ...) or tc.train.Checkpoint; copy one with copy.deepcopy()")


def _copy_data(x: Tensor) -> Any:
    """A copy of ``x``'s buffer on its device, made now and recorded by no tape or tracer."""
    from tensorcore.dispatch import untraced
    from tensorcore.ops.logic import astype

    with untraced():
        return astype(x, x.dtype, copy=True)._data


