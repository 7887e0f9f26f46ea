"""Indexing: ``x[key]`` (basic, integer-array and boolean-mask), ``x[key] = v``, ``take`` and
``take_along_axis``, with their gradients (scatter-adds, so repeated indices accumulate)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.dispatch import apply, apply_inplace
from tensorcore.errors import GradientError, OpError
from tensorcore.ops._axes import normalize_axis
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor


def _normalize_key(x: Tensor, key: Any, op: str = "getitem") -> Any:
    """Tensors inside ``key`` become backend arrays on ``x``'s device (it is an op attribute)."""
    def one(k: Any) -> Any:
        if isinstance(k, Tensor):
            if k.dtype.kind not in "biu":
                raise OpError(
                    f"{op}: index tensors must be integer or bool, got {k.dtype}{list(k.shape)} "
                    f"for a tensor of shape {x.shape}"
                )
            return k.to_device(x.device)._data
        if isinstance(k, (list, np.ndarray)):
            return np.asarray(k)
        return k

    return tuple(one(k) for k in key) if isinstance(key, tuple) else one(key)


def _has_arrays(key: Any) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return any(hasattr(k, "shape") and hasattr(k, "dtype") for k in keys)


def _index_error(op: str, x: Tensor, key: Any, exc: Exception) -> OpError:
    return OpError(f"{op}: invalid index {key!r} for a tensor of shape {x.shape}: {exc}")


def _getitem_grad(ctx: Any, g: Tensor) -> tuple:
    x = ctx.inputs[0]
    return (scatter_add(g, x.shape, ctx.attrs["key"]),)


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


def scatter_add(g: Tensor, shape: tuple[int, ...], key: Any) -> Tensor:
    """Zeros of ``shape`` with ``g`` added at ``key`` (repeated indices accumulate); differentiable."""
    return apply(_SCATTER_ADD, (g,), {"shape": tuple(shape), "key": key})


def getitem(x: Tensor, key: Any) -> Tensor:
    """``x[key]``: basic slicing, integer-array and boolean-mask indexing."""
    nkey = _normalize_key(x, key)
    try:
        return apply(_GETITEM, (x,), {"key": nkey})
    except OpError as exc:
        raise _index_error("getitem", x, key, exc.__cause__ or exc) from exc


def _setitem_ref(x: Any, value: Any, key: Any) -> None:
    x[key] = value


_SETITEM = define(Op("setitem", _setitem_ref, doc="x[key] = value, in place."))


def setitem(x: Tensor, key: Any, value: Any) -> None:
    """``x[key] = value`` in place; refused on a tensor that a recording tape depends on."""
    from tensorcore.autodiff import tape as _tape

    for t in _tape.recording:
        if id(x) in t._watched:
            raise GradientError(
                f"setitem: in-place assignment to a {x.dtype}{list(x.shape)} tensor that a recording GradientTape "
                "depends on would make its gradients wrong; build a new tensor with tc.where or concat instead"
            )
    if not isinstance(x._data, np.ndarray) and x._device.type == "cpu":
        x._data = np.array(x._data)  # a NumPy scalar result cannot be written in place
    if isinstance(value, Tensor) and value.dtype != x.dtype:
        from tensorcore.ops.logic import astype

        value = astype(value, x.dtype)
    try:
        apply_inplace(_SETITEM, x, (value,), {"key": _normalize_key(x, key, "setitem")})
    except OpError as exc:
        raise _index_error("setitem", x, key, exc.__cause__ or exc) from exc
    if hasattr(x, "_version"):
        x._version += 1


def take(x: Tensor, indices: Tensor, /, *, axis: int | None = None) -> Tensor:
    """Elements of ``x`` at integer ``indices`` along ``axis`` (required unless ``x`` is 1-D)."""
    if axis is None:
        if x.ndim != 1:
            raise OpError(f"take: axis is required for a {x.ndim}-D tensor (shape {x.shape})")
        axis = 0
    axis = normalize_axis("take", axis, x.ndim)
    if not isinstance(indices, Tensor) or indices.dtype.kind not in "iu":
        raise OpError(f"take: indices must be an integer tensor, got {getattr(indices, 'dtype', type(indices).__name__)}")
    return getitem(x, (slice(None),) * axis + (indices,))


# --- take_along_axis ----------------------------------------------------------------------


def _along_shape(op: str, x: tuple[int, ...], idx: tuple[int, ...], axis: int) -> tuple[int, ...]:
    """Output shape of ``take_along_axis``: the shapes broadcast outside ``axis``."""
    if len(x) != len(idx):
        raise OpError(
            f"{op}: x has shape {x} and indices has shape {idx}; expected the same number of dimensions"
        )
    out = []
    for d, (a, b) in enumerate(zip(x, idx)):
        if d == axis:
            out.append(b)
        elif a == b or a == 1 or b == 1:
            out.append(b if a == 1 else a)
        else:
            raise OpError(
                f"{op}: x of shape {x} and indices of shape {idx} cannot be broadcast together in "
                f"dimension {d} ({a} vs {b}); outside axis {axis} they must be equal or 1"
            )
    return tuple(out)


def _along_infer(x: Spec, indices: Spec, axis: int) -> Spec:
    if indices.dtype.kind not in "iu":
        raise OpError(f"take_along_axis: indices must be an integer tensor, got {indices.dtype}")
    return Spec(_along_shape("take_along_axis", x.shape, indices.shape, axis), x.dtype)


def _along_key(indices: np.ndarray, axis: int, shape: tuple[int, ...]) -> tuple:
    """The fancy-index key writing ``take_along_axis``'s output back into a tensor of ``shape``."""
    out_shape = _along_shape("scatter_along_axis", shape, indices.shape, axis)
    key = []
    for d, n in enumerate(out_shape):
        if d == axis:
            key.append(indices)
            continue
        pos = np.zeros(n, dtype=np.intp) if shape[d] == 1 else np.arange(n)
        key.append(pos.reshape((1,) * d + (n,) + (1,) * (len(shape) - d - 1)))
    return tuple(key)


def _scatter_along_ref(g: Any, indices: Any, axis: int, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, dtype=np.asarray(g).dtype)
    np.add.at(out, _along_key(np.asarray(indices), axis, shape), g)
    return out


def _take_along_grad(ctx: Any, g: Tensor) -> tuple:
    x, indices = ctx.inputs
    return scatter_along_axis(g, indices, ctx.attrs["axis"], x.shape), None


def _scatter_along_grad(ctx: Any, g: Tensor) -> tuple:
    return apply(_TAKE_ALONG, (g, ctx.inputs[1]), {"axis": ctx.attrs["axis"]}), None


_TAKE_ALONG = define(Op(
    "take_along_axis", lambda x, indices, axis: np.take_along_axis(x, indices, axis), infer=_along_infer,
    grad=_take_along_grad, doc="Elements of x at indices along one axis.",
))
_SCATTER_ALONG = define(Op(
    "scatter_along_axis", _scatter_along_ref, grad=_scatter_along_grad,
    infer=lambda g, indices, axis, shape: Spec(tuple(shape), g.dtype),
    doc="Zeros of `shape` with g added at indices along axis; take_along_axis's gradient.",
))


def scatter_along_axis(g: Tensor, indices: Tensor, axis: int, shape: tuple[int, ...]) -> Tensor:
    """Zeros of ``shape`` with ``g`` added where ``take_along_axis(·, indices, axis)`` reads."""
    return apply(_SCATTER_ALONG, (g, indices), {"axis": axis, "shape": tuple(shape)})


def take_along_axis(x: Tensor, indices: Tensor, /, *, axis: int = -1) -> Tensor:
    """Elements of ``x`` at ``indices`` along ``axis`` (``indices`` has ``x``'s number of dims)."""
    if not isinstance(x, Tensor) or not isinstance(indices, Tensor):
        raise OpError(
            f"take_along_axis: x and indices must be tensors, got {type(x).__name__} and {type(indices).__name__}"
        )
    if x.ndim == 0:
        raise OpError("take_along_axis: x must have at least one dimension, got a 0-d tensor")
    if indices.dtype.kind not in "iu":
        raise OpError(f"take_along_axis: indices must be an integer tensor, got {indices.dtype}{list(indices.shape)}")
    axis = normalize_axis("take_along_axis", axis, x.ndim)
    _along_shape("take_along_axis", x.shape, indices.shape, axis)
    return apply(_TAKE_ALONG, (x, indices), {"axis": axis})


__all__ = ["take", "take_along_axis"]
