"""Strided-layout arithmetic shared by the device backends (pure Python, no device library).

Backends may import this module, like ``tensorcore.backend``: a view's strides are the same
question on every device.
"""

from __future__ import annotations

import functools


def nocopy_strides(old_shape: tuple[int, ...], old_strides: tuple[int, ...],
                   new_shape: tuple[int, ...]) -> list[int] | None:
    """Strides viewing a strided array as ``new_shape`` without a copy, or None where the
    dimensions to merge are not laid out one after the other (NumPy's ``_attempt_nocopy_reshape``)."""
    dims = [(n, s) for n, s in zip(old_shape, old_strides) if n != 1]
    olddims, oldstrides = [n for n, _ in dims], [s for _, s in dims]
    newstrides = [0] * len(new_shape)
    oi, oj, ni, nj = 0, 1, 0, 1
    while ni < len(new_shape) and oi < len(olddims):
        np_, op_ = new_shape[ni], olddims[oi]
        while np_ != op_:
            if np_ < op_:
                np_ *= new_shape[nj]
                nj += 1
            else:
                op_ *= olddims[oj]
                oj += 1
        for ok in range(oi, oj - 1):
            if olddims[ok + 1] * oldstrides[ok + 1] != oldstrides[ok]:
                return None
        newstrides[nj - 1] = oldstrides[oj - 1]
        for nk in range(nj - 1, ni, -1):
            newstrides[nk - 1] = newstrides[nk] * new_shape[nk]
        ni, nj, oi, oj = nj, nj + 1, oj, oj + 1
    last = newstrides[ni - 1] if ni >= 1 else 1
    for nk in range(ni, len(new_shape)):
        newstrides[nk] = last
    return newstrides


@functools.lru_cache(maxsize=4096)
def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major strides, in elements (cached: launchers ask for the same shapes every step)."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def broadcast_strides(src_shape: tuple[int, ...], src_strides: tuple[int, ...], shape: tuple[int, ...],
                      what: str = "input") -> tuple[int, ...]:
    """Element strides of an array (``src_shape``, ``src_strides``) broadcast to ``shape``: zero
    where it repeats; leading size-1 dimensions beyond ``shape``'s rank are dropped, as NumPy
    does for assignments. Raises ValueError where the shapes do not broadcast."""
    given = tuple(src_shape)
    src_shape, src_strides = tuple(src_shape), tuple(src_strides)
    while len(src_shape) > len(shape) and src_shape[0] == 1:
        src_shape, src_strides = src_shape[1:], src_strides[1:]
    if len(src_shape) > len(shape):
        raise ValueError(f"could not broadcast {what} from shape {given} into shape {tuple(shape)}")
    lead = len(shape) - len(src_shape)
    out = [0] * lead
    for n, s, m in zip(src_shape, src_strides, shape[lead:]):
        if n == m:
            out.append(s if m != 1 else 0)
        elif n == 1:
            out.append(0)
        else:
            raise ValueError(f"could not broadcast {what} from shape {given} into shape {tuple(shape)}")
    return tuple(out)


def coalesce(shape: tuple[int, ...], *strides: tuple[int, ...]) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """Drop size-1 dimensions and merge neighbours that every layout steps through as one.

    Fewer dimensions means fewer divisions per element in the kernels, lets views of more
    dimensions than the kernels take (tile, repeat) fit them, and makes a contiguous view of
    any shape one dimension. Only for non-empty shapes.
    """
    merged: list[tuple[int, list[int]]] = []
    for d, n in enumerate(shape):
        if n == 1:
            continue
        st = [s[d] for s in strides]
        if merged and all(p == s * n for p, s in zip(merged[-1][1], st)):
            merged[-1] = (merged[-1][0] * n, st)
        else:
            merged.append((n, st))
    return tuple(n for n, _ in merged), [tuple(st[k] for _, st in merged) for k in range(len(strides))]


def transpose_axis(shape: tuple[int, ...], src_strides: tuple[int, ...], least: int = 8) -> int | None:
    """The dimension a tiled copy should pair with the last one, or None for a plain copy.

    That is the dimension p the source steps through most finely, when it steps through p
    more finely than through the last dimension (a transpose: a plain copy would read or
    write scattered lines) and both are at least ``least`` long."""
    if len(shape) < 2:
        return None
    last = len(shape) - 1
    p = min(range(last), key=lambda d: abs(src_strides[d]))
    if src_strides[p] == 0 or abs(src_strides[p]) >= abs(src_strides[last]) or min(shape[p], shape[last]) < least:
        return None
    return p
