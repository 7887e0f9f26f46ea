"""Strided-layout arithmetic shared by the device backends (pure Python, no device library).

Backends may import this module, like ``tensorcore.backend``: a view's strides are the same
question on every device.
"""

from __future__ import annotations


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
