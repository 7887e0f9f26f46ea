"""Zero-copy views on OpenCL: permute_dims, broadcast_to, reshape, flip, stop_gradient, and
the strides/offset arithmetic of indexing keys (``plan_key``), shared with getitem/setitem.

A view is a ``CLArray`` on the same buffer with other shape, strides and offset (elements,
possibly zero or negative): it costs no kernel, and writes through ``setitem`` on the base
show in the view, as NumPy views do on cpu. Kernels reading views handle strides or call
``contiguous()``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from tensorcore.backends.opencl import CLArray, CLDevice, contiguous_strides
from tensorcore.backends.opencl_ops.movement_copy import contiguous, new_view

from tensorcore.errors import KernelUnsupported
from tensorcore.strides import nocopy_strides


def permute_dims(dev: CLDevice, x: CLArray, axes: tuple[int, ...]) -> CLArray:
    """``np.transpose(x, axes)`` as a view: the strides are permuted."""
    if sorted(axes) != list(range(len(x.shape))):
        raise ValueError("axes are not a permutation")  # explained by the op's rule
    return new_view(x, tuple(x.shape[a] for a in axes), tuple(x.strides[a] for a in axes), x.offset)


def broadcast_to(dev: CLDevice, x: CLArray, shape: tuple[int, ...]) -> CLArray:
    """``np.broadcast_to`` as a view: zero strides along the repeated dimensions."""
    shape = tuple(shape)
    lead = len(shape) - len(x.shape)
    if lead < 0:
        raise ValueError("cannot broadcast to fewer dimensions")  # explained by the op's rule
    strides = [0] * lead
    for n, s, m in zip(x.shape, x.strides, shape[lead:]):
        if n != m and n != 1:
            raise ValueError("shapes do not broadcast")
        strides.append(s if n == m else 0)
    return new_view(x, shape, tuple(strides), x.offset)


def reshape(dev: CLDevice, x: CLArray, shape: tuple[int, ...]) -> CLArray:
    """``np.reshape``: a view wherever NumPy's would be one (always for a contiguous input),
    else a view of a contiguous copy."""
    size = x.size
    if list(shape).count(-1) == 1:
        known = math.prod(n for n in shape if n != -1)
        if known == 0 or size % known:
            raise ValueError("cannot reshape")  # explained by the op's rule
        shape = tuple(size // known if n == -1 else n for n in shape)
    shape = tuple(int(n) for n in shape)
    if math.prod(shape) != size or any(n < 0 for n in shape):
        raise ValueError("cannot reshape")
    if size == 0:
        return CLArray(dev, None, shape, x.dtype)
    if x.is_contiguous:
        return x.view(shape, contiguous_strides(shape), x.offset)
    strides = nocopy_strides(x.shape, x.strides, shape)
    if strides is not None:
        return x.view(shape, tuple(strides), x.offset)
    flat = contiguous(x)
    return flat.view(shape, contiguous_strides(shape), flat.offset)


def flip(dev: CLDevice, x: CLArray, axis: tuple[int, ...]) -> CLArray:
    """``np.flip`` as a view, as NumPy's is: negative strides from the last element."""
    strides, offset = list(x.strides), x.offset
    for a in set(axis):
        if x.shape[a] > 0:
            offset += (x.shape[a] - 1) * strides[a]
            strides[a] = -strides[a]
    return new_view(x, tuple(x.shape), tuple(strides), offset)


def stop_gradient(dev: CLDevice, x: CLArray) -> CLArray:
    """The identity: the same array (the tape blocks the gradient, not the kernel)."""
    return x


# --- indexing keys ----------------------------------------------------------------------------


class KeyPlan(NamedTuple):
    """An indexing key reduced to strides/offset arithmetic on ``x``.

    The result has the dimensions ``dims`` (size, stride in x) with the broadcast shape of
    the advanced components inserted at ``adv_at``. ``adv`` lists the components:
    ("index", array, axis length, x stride) or ("mask", array, x shape, x strides over the
    dimensions it covers). Integers next to index arrays only move ``base``.
    """

    base: int
    dims: list[tuple[int, int]]
    adv: list[tuple[str, CLArray, Any, Any]]
    adv_at: int


def plan_key(x: CLArray, template: Any, arrays: tuple[CLArray, ...]) -> KeyPlan:
    """Walk key ``template`` (Slots for index arrays) over ``x``'s shape and strides, with
    NumPy's rules: one Ellipsis, None adds a dimension, negative steps, and with index arrays
    the advanced dimensions go where the first one is if they are adjacent, else first."""
    from tensorcore.ops.indexing import Slot  # the key format belongs to the op (imported late: layers)

    key = template if isinstance(template, tuple) else (template,)
    ndim, consumed = len(x.shape), 0
    for k in key:
        if isinstance(k, Slot):
            consumed += len(arrays[k].shape) if arrays[k].dtype == np.bool_ else 1
        elif isinstance(k, bool) or not (k is None or k is Ellipsis or isinstance(k, (int, slice))):
            raise KernelUnsupported(f"index {k!r} of type {type(k).__name__}")
        elif k is not None and k is not Ellipsis:
            consumed += 1
    if sum(k is Ellipsis for k in key) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if consumed > ndim:
        raise IndexError(f"too many indices for a tensor: it is {ndim}-dimensional, but {consumed} were indexed")
    has_arrays = any(isinstance(k, Slot) for k in key)
    base, dim, adv_at = x.offset, 0, -1
    dims: list[tuple[int, int]] = []
    adv: list[tuple[str, CLArray, Any, Any]] = []
    adv_pos: list[int] = []
    for pos, k in enumerate(key):
        if k is None:
            dims.append((1, 0))
        elif k is Ellipsis:
            for _ in range(ndim - consumed):
                dims.append((x.shape[dim], x.strides[dim]))
                dim += 1
        elif isinstance(k, slice):
            start, stop, step = k.indices(x.shape[dim])
            length = len(range(start, stop, step))
            if length:
                base += start * x.strides[dim]
            dims.append((length, x.strides[dim] * step))
            dim += 1
        else:
            if has_arrays:
                adv_pos.append(pos)
                adv_at = len(dims) if adv_at < 0 else adv_at
            if isinstance(k, Slot):
                a = arrays[k]
                if a.dtype == np.bool_:
                    covered = x.shape[dim:dim + len(a.shape)]
                    if not a.shape:
                        raise KernelUnsupported("a 0-d boolean index")
                    if tuple(a.shape) != tuple(covered):
                        raise IndexError(f"boolean index of shape {a.shape} does not match the indexed dimensions {covered}")
                    adv.append(("mask", a, covered, x.strides[dim:dim + len(a.shape)]))
                    dim += len(a.shape)
                else:
                    adv.append(("index", a, x.shape[dim], x.strides[dim]))
                    dim += 1
            else:
                n = x.shape[dim]
                if not -n <= k < n:
                    raise IndexError(f"index {k} is out of bounds for axis {dim} with size {n}")
                base += (k + n if k < 0 else k) * x.strides[dim]
                dim += 1
    dims += [(x.shape[d], x.strides[d]) for d in range(dim, ndim)]
    if adv_pos and adv_pos != list(range(adv_pos[0], adv_pos[-1] + 1)):
        adv_at = 0  # advanced indices separated by a slice, None or Ellipsis: NumPy puts them first
    return KeyPlan(base, dims, adv, adv_at)


def basic_view(x: CLArray, plan: KeyPlan) -> CLArray:
    """The view a key without index arrays selects."""
    return new_view(x, tuple(n for n, _ in plan.dims), tuple(s for _, s in plan.dims), plan.base)


KERNELS: dict = {
    "permute_dims": permute_dims, "broadcast_to": broadcast_to, "reshape": reshape, "flip": flip,
    "stop_gradient": stop_gradient,
}
