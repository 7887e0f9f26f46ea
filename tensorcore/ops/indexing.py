"""Indexing: ``x[key]`` (basic, integer-array and boolean-mask), ``x[key] = v``, ``take`` and
``take_along_axis``, with their gradients (scatter-adds, so repeated indices accumulate)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.dispatch import apply, apply_inplace
from tensorcore.errors import GradientError, OpError, late_errors_named
from tensorcore.ops._axes import normalize_axis
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor


class Slot(int):
    """Where the i-th index tensor goes in an indexing key. A key is kept as an op attribute
    with its tensors replaced by slots, and the tensors become op inputs: so they move
    between devices like any input, and the attribute stays hashable."""

    def __repr__(self) -> str:
        return f"Slot({int(self)})"


def _split_key(x: Tensor, key: Any, op: str) -> tuple[Any, tuple[Tensor, ...]]:
    """(key template with Slots, index tensors on ``x``'s device)."""
    from tensorcore.ops.creation import asarray

    tensors: list[Tensor] = []

    def one(k: Any) -> Any:
        if isinstance(k, (list, np.ndarray)):
            k = asarray(np.asarray(k), device=x.device)
        if isinstance(k, Tensor):
            if k.dtype.kind not in "biu":
                raise OpError(
                    f"{op}: index tensors must be integer or bool, got {k.dtype}{list(k.shape)} "
                    f"for a tensor of shape {x.shape}"
                )
            tensors.append(k)
            return Slot(len(tensors) - 1)
        if isinstance(k, np.integer):
            return int(k)
        return k

    template = tuple(one(k) for k in key) if isinstance(key, tuple) else one(key)
    return template, tuple(tensors)


def fill_key(template: Any, arrays: tuple) -> Any:
    """The concrete key: ``template`` with each Slot replaced by its index array."""
    if isinstance(template, Slot):
        return arrays[template]
    if isinstance(template, tuple):
        return tuple(arrays[k] if isinstance(k, Slot) else k for k in template)
    return template


def _index_error(op: str, x: Tensor, key: Any, exc: Exception) -> OpError:
    return OpError(f"{op}: invalid index {key!r} for a tensor of shape {x.shape}: {_reason(exc)}")


def _reason(exc: Exception) -> str:
    """What an indexing failure says, without the name of the op that ran it (``getitem``, also
    for ``take``): the caller's message names the function the user called."""
    text = str(exc)
    return text[len("getitem: "):] if text.startswith("getitem: ") else text


def _getitem_infer(x: Spec, *index: Spec, key: Any) -> Spec:
    if any(i.dtype == np.bool_ for i in index):
        return Spec(None, x.dtype)  # a boolean mask: the size depends on the data
    dummy = np.broadcast_to(np.zeros((), x.dtype), x.shape)
    return Spec(dummy[fill_key(key, tuple(np.zeros(i.shape, np.intp) for i in index))].shape, x.dtype)


def _getitem_grad(ctx: Any, g: Tensor) -> tuple:
    x, *index = ctx.inputs
    return (apply(_SCATTER_ADD, (g, *index), {"shape": x.shape, "key": ctx.attrs["key"]}),) + (None,) * len(index)


def _scatter_add_ref(g: Any, *index: Any, shape: tuple[int, ...], key: Any) -> np.ndarray:
    out = np.zeros(shape, dtype=np.asarray(g).dtype)
    if index:
        np.add.at(out, fill_key(key, index), g)  # repeated indices accumulate
    else:
        out[key] = g
    return out


def _scatter_add_grad(ctx: Any, g: Tensor) -> tuple:
    _, *index = ctx.inputs
    return (apply(_GETITEM, (g, *index), {"key": ctx.attrs["key"]}),) + (None,) * len(index)


_GETITEM = define(Op("getitem", lambda x, *index, key: x[fill_key(key, index)], infer=_getitem_infer,
                     grad=_getitem_grad, doc="x[key]; index tensors are inputs after x.", complex_grad=True))
_SCATTER_ADD = define(Op(
    "scatter_add", _scatter_add_ref, grad=_scatter_add_grad,
    infer=lambda g, *index, shape, key: Spec(tuple(shape), g.dtype),
    doc="Zeros of `shape` with g added at `key` (index tensors are inputs after g); getitem's gradient.",
))


def scatter_add(g: Tensor, shape: tuple[int, ...], key: Any) -> Tensor:
    """Zeros of ``shape`` with ``g`` added at ``key`` (repeated indices accumulate); differentiable."""
    template, index = _split_key(g, key, "scatter_add")
    return apply(_SCATTER_ADD, (g, *index), {"shape": tuple(shape), "key": template})


def getitem(x: Tensor, key: Any) -> Tensor:
    """``x[key]``: basic slicing, integer-array and boolean-mask indexing."""
    template, index = _split_key(x, key, "getitem")
    try:
        return apply(_GETITEM, (x, *index), {"key": template})
    except OpError as exc:
        raise _index_error("getitem", x, key, exc.__cause__ or exc) from exc


def _setitem_ref(x: Any, value: Any, *index: Any, key: Any) -> None:
    x[fill_key(key, index)] = value


_SETITEM = define(Op("setitem", _setitem_ref, doc="x[key] = value, in place; index tensors follow value."))


def setitem(x: Tensor, key: Any, value: Any) -> None:
    """``x[key] = value`` in place. Not differentiable: refused where a recording tape would
    differentiate through ``x`` or ``value``; a write into a tensor that a tape recorded
    earlier is caught when that tape computes gradients."""
    from tensorcore.autodiff.tape import watched_by_recording_tape

    for what, t in (("into", x), ("from", value)):
        if isinstance(t, Tensor) and watched_by_recording_tape(t):
            raise GradientError(
                f"setitem: in-place assignment {what} a {t.dtype}{list(t.shape)} tensor that a recording "
                "GradientTape differentiates is not differentiable; build a new tensor with tc.where or concat"
            )
    if x._device.type == "cpu" and not isinstance(x._data, np.ndarray):
        x._data = np.array(x._data)  # a NumPy scalar result cannot be written in place
    if isinstance(value, Tensor) and value.dtype != x.dtype:
        from tensorcore.ops.logic import astype

        value = astype(value, x.dtype)
    template, index = _split_key(x, key, "setitem")
    try:
        apply_inplace(_SETITEM, x, (value, *index), {"key": template})
    except OpError as exc:
        raise _index_error("setitem", x, key, exc.__cause__ or exc) from exc


def take(x: Tensor, indices: Tensor, /, *, axis: int | None = None) -> Tensor:
    """Elements of ``x`` at integer ``indices`` along ``axis`` (required unless ``x`` is 1-D)."""
    if axis is None:
        if x.ndim != 1:
            raise OpError(f"take: axis is required for a {x.ndim}-D tensor (shape {x.shape})")
        axis = 0
    axis = normalize_axis("take", axis, x.ndim)
    if not isinstance(indices, Tensor) or indices.dtype.kind not in "iu":
        raise OpError(f"take: indices must be an integer tensor, got {getattr(indices, 'dtype', type(indices).__name__)}")
    key = (slice(None),) * axis + (indices,)
    template, index = _split_key(x, key, "take")
    # Named for what the user called: take, its indices and axis; also where a device finds a
    # bad index late (its getitem kernel records the error, raised at the next read).
    header = f"take: invalid indices {indices.dtype}{list(indices.shape)} along axis {axis} of a tensor of shape {x.shape}"
    try:
        with late_errors_named("getitem", header):
            return apply(_GETITEM, (x, *index), {"key": template})
    except OpError as exc:
        raise OpError(f"{header}: {_reason(exc.__cause__ or exc)}") from exc


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
