"""Data movement on OpenCL: contiguous copies, zero-copy views, indexing, copies.

The launchers live in three modules, joined here into ``KERNELS``:

- ``movement_views``: permute_dims, broadcast_to, reshape, flip, stop_gradient (views, no kernel)
  and the strides/offset arithmetic of indexing keys;
- ``movement_copy``: byte-moving copies (``contiguous``, concat, tile, tril, triu, roll);
- ``movement_index``: getitem, setitem, scatter_add, take_along_axis, scatter_along_axis,
  embedding, embedding_backward, repeat.

``contiguous`` stays importable from here: the backend's ``to_numpy`` uses it.
"""

from __future__ import annotations

from tensorcore.backends.opencl_ops import movement_copy, movement_index, movement_views
from tensorcore.backends.opencl_ops.movement_copy import contiguous

__all__ = ["contiguous", "KERNELS"]

KERNELS: dict = {**movement_views.KERNELS, **movement_copy.KERNELS, **movement_index.KERNELS}
