"""Data movement on OpenCL: contiguous copies and zero-copy views."""

from __future__ import annotations

import numpy as np
from tensorcore.backends.opencl import CLArray
from tensorcore.backends.opencl_ops._common import ctype, global_size, output, shape_args


def contiguous(a: CLArray) -> CLArray:
    """``a`` itself if C-contiguous, else a contiguous copy (one strided gather)."""
    if a.is_contiguous or a.buf is None:
        return a
    dev = a.dev
    out = output(dev, a.shape, a.dtype)
    kernel = dev.kernel("copy.cl", "copy_strided", (("T", ctype(a.dtype)),))
    dev.launch(kernel, global_size(a.size), None, out.buf, a.buf, np.int64(a.offset), *shape_args(a), np.int64(a.size))
    return out


KERNELS: dict = {}
