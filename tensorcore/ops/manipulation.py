"""Shape manipulation: reshape, permute_dims, broadcast_to, expand_dims, squeeze, concat, stack.

flip, roll, tile, repeat, moveaxis, unstack, broadcast_shapes and diff are defined in
:mod:`tensorcore.ops.manipulation_more` and re-exported here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops._axes import normalize_axes, normalize_axis
from tensorcore.ops.arithmetic import sum_to_shape
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor


def _reshape_infer(x: Spec, shape: tuple[int, ...]) -> Spec:
    size = math.prod(x.shape)
    known = math.prod(n for n in shape if n != -1)
    if shape.count(-1) > 1 or (-1 in shape and (known == 0 or size % known)) or (-1 not in shape and known != size):
        raise OpError(f"reshape: cannot reshape a tensor of shape {x.shape} ({size} elements) into shape {shape}")
    return Spec(tuple(size // known if n == -1 else n for n in shape), x.dtype)


_RESHAPE = define(Op("reshape", lambda x, shape: np.reshape(x, shape), infer=_reshape_infer,
                     grad=lambda ctx, g: (reshape(g, ctx.inputs[0].shape),), complex_grad=True))


def reshape(x: Tensor, /, shape: Any, *, copy: bool | None = None) -> Tensor:
    """``x`` with a new shape of the same size (one dimension may be -1).

    ``copy=True`` returns a copy; ``copy=False`` raises where the result cannot share ``x``'s
    memory; ``None`` shares it where it can (on cpu, like NumPy).
    """
    if not copy and type(shape) is tuple and shape == x.shape:  # gradients ask this often
        return x
    from tensorcore.ops.logic import astype

    shape = (shape,) if isinstance(shape, int) else tuple(int(n) for n in shape)
    out = x if x.shape == shape else apply(_RESHAPE, (x,), {"shape": shape})
    if copy:
        return astype(out, out.dtype, copy=True)
    if copy is False and x.device.type == "cpu" and x.size and not np.shares_memory(out._data, x._data):
        raise ValueError(f"reshape(copy=False): a tensor of shape {x.shape} with its strides cannot be viewed as {shape}")
    return out


def _permute_infer(x: Spec, axes: tuple[int, ...]) -> Spec:
    if sorted(axes) != list(range(len(x.shape))):
        raise OpError(f"permute_dims: axes {axes} are not a permutation of the {len(x.shape)} axes of shape {x.shape}")
    return Spec(tuple(x.shape[a] for a in axes), x.dtype)


_PERMUTE = define(Op("permute_dims", lambda x, axes: x.transpose(axes), infer=_permute_infer,  # the method: 1 us less than np.transpose
                     grad=lambda ctx, g: (permute_dims(g, tuple(np.argsort(ctx.attrs["axes"]).tolist())),), complex_grad=True))


def permute_dims(x: Tensor, /, axes: tuple[int, ...]) -> Tensor:
    """``x`` with its axes reordered: output axis i is input axis ``axes[i]``."""
    axes = tuple(int(a) for a in axes)
    if len(axes) != x.ndim:
        raise OpError(f"permute_dims: {len(axes)} axes given for a {x.ndim}-D tensor of shape {x.shape}")
    axes = tuple(normalize_axis("permute_dims", a, x.ndim) for a in axes)
    return apply(_PERMUTE, (x,), {"axes": axes})


def matrix_transpose(x: Tensor, /) -> Tensor:
    """Swap the last two axes of ``x`` (at least 2-D)."""
    if x.ndim < 2:
        raise OpError(f"matrix_transpose: needs at least 2 dimensions, got shape {x.shape}")
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return apply(_PERMUTE, (x,), {"axes": axes})


def _broadcast_infer(x: Spec, shape: tuple[int, ...]) -> Spec:
    try:
        np.broadcast_shapes(x.shape, shape)
        if np.broadcast_shapes(x.shape, shape) != tuple(shape):
            raise ValueError
    except ValueError:
        raise OpError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None
    return Spec(tuple(shape), x.dtype)


_BROADCAST = define(Op("broadcast_to", lambda x, shape: np.broadcast_to(x, shape), infer=_broadcast_infer,
                       grad=lambda ctx, g: (sum_to_shape(g, ctx.inputs[0].shape),), complex_grad=True))


def broadcast_to(x: Tensor, /, shape: tuple[int, ...]) -> Tensor:
    """``x`` broadcast to ``shape`` (a read-only view on cpu)."""
    shape = tuple(int(n) for n in shape)
    if x.shape == shape:
        return x
    return apply(_BROADCAST, (x,), {"shape": shape})


def broadcast_arrays(*arrays: Tensor) -> list[Tensor]:
    """The tensors broadcast against each other."""
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        raise OpError(f"broadcast_arrays: shapes {[a.shape for a in arrays]} cannot be broadcast together") from None
    return [broadcast_to(a, shape) for a in arrays]


def expand_dims(x: Tensor, /, axis: int = 0) -> Tensor:
    """``x`` with a new axis of size 1 inserted at ``axis``."""
    axis = normalize_axis("expand_dims", axis, x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x: Tensor, /, axis: Any) -> Tensor:
    """``x`` without the given axes, which must have size 1."""
    if x.ndim == 0 and axis not in (None, ()):
        raise OpError(f"squeeze: axis {axis!r} is out of range for a 0-d tensor, which has no axes")
    axes = normalize_axes("squeeze", axis, x.ndim)
    for a in axes:
        if x.shape[a] != 1:
            raise OpError(f"squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


def _concat_infer(*xs: Spec, axis: int) -> Spec:
    first = xs[0].shape
    for i, x in enumerate(xs[1:], 1):
        if len(x.shape) != len(first) or any(a != b for d, (a, b) in enumerate(zip(first, x.shape)) if d != axis):
            raise OpError(f"concat: input {i} has shape {x.shape}, incompatible with {first} outside axis {axis}")
    return Spec(first[:axis] + (sum(x.shape[axis] for x in xs),) + first[axis + 1:], np.result_type(*(x.dtype for x in xs)))


def _concat_grad(ctx: Any, g: Tensor) -> tuple:
    from tensorcore.ops.indexing import getitem

    axis = ctx.attrs["axis"]
    grads, start = [], 0
    for x in ctx.inputs:
        n = x.shape[axis]
        grads.append(getitem(g, (slice(None),) * axis + (slice(start, start + n),)))
        start += n
    return tuple(grads)


_CONCAT = define(Op("concat", lambda *xs, axis: np.concatenate(xs, axis=axis), infer=_concat_infer, grad=_concat_grad, complex_grad=True))


def concat(arrays: Any, /, *, axis: int | None = 0) -> Tensor:
    """Join tensors along an existing ``axis`` (``None`` flattens them first)."""
    arrays = tuple(arrays)
    if not arrays:
        raise OpError("concat: needs at least one tensor")
    if axis is None:
        arrays, axis = tuple(reshape(a, (-1,)) for a in arrays), 0
    ndim = arrays[0].ndim
    if ndim == 0:
        raise OpError("concat: cannot concatenate 0-d tensors; use stack")
    return apply(_CONCAT, arrays, {"axis": normalize_axis("concat", axis, ndim)})


def stack(arrays: Any, /, *, axis: int = 0) -> Tensor:
    """Join tensors of the same shape along a new ``axis``."""
    arrays = tuple(arrays)
    if not arrays:
        raise OpError("stack: needs at least one tensor")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise OpError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    axis = normalize_axis("stack", axis, arrays[0].ndim + 1)
    return concat([expand_dims(a, axis) for a in arrays], axis=axis)


# The rest of the Array API's manipulation functions live in manipulation_more (file size);
# imported last because they build on the ops above.
from tensorcore.ops.manipulation_more import (  # noqa: E402
    broadcast_shapes,
    diff,
    flip,
    moveaxis,
    repeat,
    roll,
    tile,
    unstack,
)

__all__ = [
    "reshape", "permute_dims", "matrix_transpose", "broadcast_to", "broadcast_arrays",
    "expand_dims", "squeeze", "concat", "stack",
    "flip", "roll", "tile", "repeat", "moveaxis", "unstack", "broadcast_shapes", "diff",
]
