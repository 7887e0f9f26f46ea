"""Indexing: ``x[key]`` (basic, integer-array and boolean-mask), ``x[key] = v``, and ``take``."""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.dispatch import apply, apply_inplace
from tensorcore.errors import GradientError, OpError
from tensorcore.ops.registry import Op, define
from tensorcore.tensor import Tensor


def _normalize_key(x: Tensor, key: Any) -> Any:
    """Tensors inside ``key`` become backend arrays on ``x``'s device (it is an op attribute)."""
    def one(k: Any) -> Any:
        if isinstance(k, Tensor):
            if k.dtype.kind not in "biu":
                raise OpError(f"index tensors must be integer or bool, got {k.dtype}")
            return k.to_device(x.device)._data
        if isinstance(k, (list, np.ndarray)):
            return np.asarray(k)
        return k

    return tuple(one(k) for k in key) if isinstance(key, tuple) else one(key)


def _has_arrays(key: Any) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return any(hasattr(k, "shape") and hasattr(k, "dtype") for k in keys)


def _index_error(x: Tensor, key: Any, exc: Exception) -> OpError:
    return OpError(f"invalid index {key!r} for a tensor of shape {x.shape}: {exc}")


def _getitem_grad(ctx: Any, g: Tensor) -> tuple:
    x = ctx.inputs[0]
    return (apply(_SCATTER_ADD, (g,), {"shape": x.shape, "key": ctx.attrs["key"]}),)


def _scatter_add_ref(g: Any, shape: tuple[int, ...], key: Any) -> np.ndarray:
    out = np.zeros(shape, dtype=np.asarray(g).dtype)
    if _has_arrays(key):
        np.add.at(out, key, g)  # repeated indices accumulate
    else:
        out[key] = g
    return out


def _scatter_add_grad(ctx: Any, g: Tensor) -> tuple:
    return (getitem(g, ctx.attrs["key"]),)


_GETITEM = define(Op("getitem", lambda x, key: x[key], grad=_getitem_grad, doc="x[key]."))
_SCATTER_ADD = define(Op("scatter_add", _scatter_add_ref, grad=_scatter_add_grad,
                         doc="Zeros of `shape` with g added at `key`; getitem's gradient."))


def getitem(x: Tensor, key: Any) -> Tensor:
    """``x[key]``: basic slicing, integer-array and boolean-mask indexing."""
    nkey = _normalize_key(x, key)
    try:
        return apply(_GETITEM, (x,), {"key": nkey})
    except OpError as exc:
        raise _index_error(x, key, exc.__cause__ or exc) from exc


def _setitem_ref(x: Any, value: Any, key: Any) -> None:
    x[key] = value


_SETITEM = define(Op("setitem", _setitem_ref, doc="x[key] = value, in place."))


def setitem(x: Tensor, key: Any, value: Any) -> None:
    """``x[key] = value`` in place; refused on a tensor that a recording tape depends on."""
    from tensorcore.autodiff import tape as _tape

    for t in _tape.recording:
        if id(x) in t._watched:
            raise GradientError(
                f"in-place assignment to a {x.dtype}{list(x.shape)} tensor that a recording GradientTape "
                "depends on would make its gradients wrong; build a new tensor with tc.where or concat instead"
            )
    if not isinstance(x._data, np.ndarray) and x._device.type == "cpu":
        x._data = np.array(x._data)  # a NumPy scalar result cannot be written in place
    if isinstance(value, Tensor) and value.dtype != x.dtype:
        from tensorcore.ops.logic import astype

        value = astype(value, x.dtype)
    try:
        apply_inplace(_SETITEM, x, (value,), {"key": _normalize_key(x, key)})
    except OpError as exc:
        raise _index_error(x, key, exc.__cause__ or exc) from exc
    if hasattr(x, "_version"):
        x._version += 1


def take(x: Tensor, indices: Tensor, /, *, axis: int | None = None) -> Tensor:
    """Elements of ``x`` at integer ``indices`` along ``axis`` (required unless ``x`` is 1-D)."""
    from tensorcore.ops._axes import normalize_axis

    if axis is None:
        if x.ndim != 1:
            raise OpError(f"take: axis is required for a {x.ndim}-D tensor (shape {x.shape})")
        axis = 0
    axis = normalize_axis("take", axis, x.ndim)
    if not isinstance(indices, Tensor) or indices.dtype.kind not in "iu":
        raise OpError(f"take: indices must be an integer tensor, got {getattr(indices, 'dtype', type(indices).__name__)}")
    return getitem(x, (slice(None),) * axis + (indices,))


__all__ = ["take"]
