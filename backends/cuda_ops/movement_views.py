"""Zero-copy views on CUDA: permute_dims, broadcast_to, reshape, flip, stop_gradient, and the
strides/offset arithmetic of indexing keys (``plan_key``) that getitem and scatter_add share.

A view is a new ``cupy.ndarray`` header over the same allocation (``CUDADevice.view``): no
kernel runs and nothing is copied, as on OpenCL. Every CUDA launcher reads strided inputs or
gathers them with ``movement_copy.contiguous`` first. ``reshape`` of a view that cannot be
viewed in the new shape (NumPy's rule) copies once with the backend's own gather kernel, never
with CuPy's.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from tensorcore.backends.cuda_ops._common import contiguous_strides, elem_strides, is_array, is_contiguous
from tensorcore.backends.cuda_ops.movement_copy import contiguous

from tensorcore.errors import KernelUnsupported
from tensorcore.strides import nocopy_strides


def _array(op: str, x: Any) -> None:
    if not is_array(x):
        raise KernelUnsupported(f"{op}: not a device array")


def permute_dims(dev: Any, x: Any, axes: tuple[int, ...]) -> Any:
    """``np.transpose(x, axes)`` as a view: the strides are permuted."""
    _array("permute_dims", x)
    axes = tuple(int(a) for a in axes)
    if sorted(axes) != list(range(len(x.shape))):
        raise ValueError("axes are not a permutation")  # explained by the op's rule
    strides = elem_strides(x)
    return dev.view(x, tuple(x.shape[a] for a in axes), tuple(strides[a] for a in axes))


def broadcast_to(dev: Any, x: Any, shape: tuple[int, ...]) -> Any:
    """``np.broadcast_to`` as a view: zero strides along the repeated dimensions."""
    _array("broadcast_to", x)
    shape = tuple(int(n) for n in shape)
    lead = len(shape) - len(x.shape)
    if lead < 0:
        raise ValueError("cannot broadcast to fewer dimensions")  # explained by the op's rule
    strides = [0] * lead
    for n, s, m in zip(x.shape, elem_strides(x), shape[lead:]):
        if n != m and n != 1:
            raise ValueError("shapes do not broadcast")
        strides.append(s if n == m else 0)
    return dev.view(x, shape, tuple(strides))


def reshape(dev: Any, x: Any, shape: tuple[int, ...]) -> Any:
    """``np.reshape``: a view wherever NumPy's would be one (always for a contiguous input),
    else a view of a contiguous copy."""
    _array("reshape", x)
    n = math.prod(x.shape)
    shape = tuple(int(d) for d in shape)
    if shape.count(-1) == 1:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or n % known:
            raise ValueError("cannot reshape")  # explained by the op's rule
        shape = tuple(n // known if d == -1 else d for d in shape)
    if math.prod(shape) != n or any(d < 0 for d in shape):
        raise ValueError("cannot reshape")
    if n == 0:
        return dev.empty(shape, x.dtype)
    if is_contiguous(x):
        return dev.view(x, shape, contiguous_strides(shape))
    strides = nocopy_strides(tuple(x.shape), elem_strides(x), shape)
    if strides is not None:
        return dev.view(x, shape, tuple(strides))
    flat = contiguous(dev, x)
    return dev.view(flat, shape, contiguous_strides(shape))


def flip(dev: Any, x: Any, axis: tuple[int, ...]) -> Any:
    """``np.flip`` as a view, as NumPy's is: negative strides from the last element."""
    _array("flip", x)
    strides, offset = list(elem_strides(x)), 0
    for a in set(axis):
        if x.shape[a] > 0:
            offset += (x.shape[a] - 1) * strides[a]
            strides[a] = -strides[a]
    return dev.view(x, tuple(x.shape), tuple(strides), offset)


def stop_gradient(dev: Any, x: Any) -> Any:
    """The identity: the same array (the tape blocks the gradient, not the kernel)."""
    return x


# --- indexing keys ----------------------------------------------------------------------------


class KeyPlan(NamedTuple):
    """An indexing key reduced to strides/offset arithmetic on ``x`` (elements, relative to
    ``x``'s first element).

    The result has the dimensions ``dims`` (size, stride in x) with the broadcast shape of the
    index tensors inserted at ``adv_at``. ``adv`` lists them as (array, axis length, x stride);
    integers next to index tensors only move ``base``. ``adv_axes``: the axis of x each one
    indexes (named in out-of-range errors).
    """

    base: int
    dims: list[tuple[int, int]]
    adv: list[tuple[Any, int, int]]
    adv_at: int
    adv_axes: tuple[int, ...] = ()


def plan_key(x: Any, template: Any, arrays: tuple[Any, ...]) -> KeyPlan:
    """Walk key ``template`` (Slots for index tensors) over ``x``'s shape and strides, with
    NumPy's rules: one Ellipsis, None adds a dimension, negative steps, and with index tensors
    the advanced dimensions go where the first one is if they are adjacent, else first.
    Boolean masks raise ``KernelUnsupported``: the result's size is the mask's count, which
    only a host read can give (the op then runs on the cpu, as the placement policy says)."""
    from tensorcore.ops.indexing import Slot  # the key format belongs to the op (imported late: layers)

    key = template if isinstance(template, tuple) else (template,)
    shape, strides = tuple(x.shape), elem_strides(x)
    ndim, consumed = len(shape), 0
    for k in key:
        if isinstance(k, Slot):
            if np.dtype(arrays[k].dtype) == np.bool_:
                raise KernelUnsupported("boolean mask indexing (the result's size needs a host read)")
            consumed += 1
        elif isinstance(k, bool) or not (k is None or k is Ellipsis or isinstance(k, (int, slice))):
            raise KernelUnsupported(f"index {k!r} of type {type(k).__name__}")
        elif k is not None and k is not Ellipsis:
            consumed += 1
    if sum(k is Ellipsis for k in key) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if consumed > ndim:
        raise IndexError(f"too many indices for a tensor: it is {ndim}-dimensional, but {consumed} were indexed")
    has_arrays = any(isinstance(k, Slot) for k in key)
    base, dim, adv_at = 0, 0, -1
    dims: list[tuple[int, int]] = []
    adv: list[tuple[Any, int, int]] = []
    adv_pos: list[int] = []
    adv_axes: list[int] = []
    for pos, k in enumerate(key):
        if k is None:
            dims.append((1, 0))
        elif k is Ellipsis:
            for _ in range(ndim - consumed):
                dims.append((shape[dim], strides[dim]))
                dim += 1
        elif isinstance(k, slice):
            start, stop, step = k.indices(shape[dim])
            length = len(range(start, stop, step))
            if length:
                base += start * strides[dim]
            dims.append((length, strides[dim] * step))
            dim += 1
        else:
            if has_arrays:
                adv_pos.append(pos)
                adv_at = len(dims) if adv_at < 0 else adv_at
            if isinstance(k, Slot):
                adv.append((arrays[k], shape[dim], strides[dim]))
                adv_axes.append(dim)
            else:
                n = shape[dim]
                if not -n <= k < n:
                    raise IndexError(f"index {k} is out of bounds for axis {dim} with size {n}")
                base += (k + n if k < 0 else k) * strides[dim]
            dim += 1
    dims += [(shape[d], strides[d]) for d in range(dim, ndim)]
    if adv_pos and adv_pos != list(range(adv_pos[0], adv_pos[-1] + 1)):
        adv_at = 0  # index tensors separated by a slice, None or Ellipsis: NumPy puts their dimensions first
    return KeyPlan(base, dims, adv, adv_at, tuple(adv_axes))


def basic_view(dev: Any, x: Any, plan: KeyPlan) -> Any:
    """The view a key without index tensors selects."""
    return dev.view(x, tuple(n for n, _ in plan.dims), tuple(s for _, s in plan.dims), plan.base)


KERNELS: dict = {
    "permute_dims": permute_dims, "broadcast_to": broadcast_to, "reshape": reshape, "flip": flip,
    "stop_gradient": stop_gradient,
}
