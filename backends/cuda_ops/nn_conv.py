"""CUDA launchers: conv2d and its two backward ops, as im2col + the tiled GEMM of ``matmul``
(``kernels/cuda/conv.cu`` and ``matmul.cu``).

- ``conv2d``: per group, ``out_g = W_g @ cols_g`` with the columns of all images of a chunk
  side by side (so small images still fill whole 128-wide tiles), one batched GEMM over the
  groups (``gridDim.z``). The GEMM stores column (image, pixel) straight into its image of the
  NCHW output (its ``csplit``) and adds the bias per output channel as it stores.
- ``conv2d_backward_input``: ``cols = W_g.T @ g`` per (group, image) (batched over whichever is
  more numerous, looping over the other), then col2im gathers each input pixel's taps (one
  thread per pixel: no atomics).
- ``conv2d_backward_weight``: ``gw_g = g_g @ cols_g.T``, reducing over the images and pixels of
  a chunk at once; ``g`` is first permuted to (group, channel, image, pixel) by the copy
  kernel so that its rows are dense; later chunks accumulate into ``gw`` (the GEMM's
  ``accumulate``).

float32 and float64 with one dtype across inputs; anything else raises ``KernelUnsupported``.
Large batches are processed in chunks of images so that the columns stay under
``CHUNK_BYTES``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops._common import (
    BLOCK,
    FLOATS,
    contiguous_strides,
    defines,
    elem_strides,
    float_dtype,
    grid_1d,
    i64,
    int_arg,
)
from tensorcore.backends.cuda_ops.matmul import MAX_BATCH, gemm
from tensorcore.backends.cuda_ops.movement_copy import contiguous, copy_strided

from tensorcore.errors import KernelUnsupported

SOURCE = "conv.cu"
CHUNK_BYTES = 256 << 20  # columns per chunk of images: bounded, as the pool's working set

#: (source, defines) the launchers build: compiled by tests/test_cuda_compile.py.
VARIANTS = [(SOURCE, defines(t)) for t in FLOATS]

_Pair = tuple[int, int]


def out_size(size: int, kernel_size: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a sliding window (floor mode)."""
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def chunk_images(per_image: int, itemsize: int) -> int:
    """Images per chunk so that ``per_image`` elements each stay under ``CHUNK_BYTES``."""
    return max(1, CHUNK_BYTES // max(per_image * itemsize, 1))


def _geometry(kernel_size: _Pair, stride: _Pair, padding: _Pair, dilation: _Pair) -> tuple[np.int32, ...]:
    """kh, kw, sh, sw, ph, pw, dh, dw as the conv kernels take them."""
    return tuple(int_arg("conv geometry", v) for v in (*kernel_size, *stride, *padding, *dilation))


def _im2col(dev: Any, dtype: np.dtype, x: Any, n0: int, nc: int, groups: int, cg: int, ho: int, wo: int,
            geometry: tuple[np.int32, ...]) -> Any:
    """Columns (G, K, nc * P) of images n0 .. n0 + nc of ``x`` (any strides)."""
    _, _, h, w = x.shape
    kh, kw = int(geometry[0]), int(geometry[1])
    xs = elem_strides(x)
    total = groups * cg * kh * kw * nc * ho * wo
    cols = dev.empty((total,), dtype)
    if total:
        view = dev.view(x, (nc,) + tuple(x.shape[1:]), xs, n0 * xs[0])
        dev.launch(SOURCE, "im2col", defines(dtype), grid_1d(dev, total), (BLOCK,),
                   (cols, view, *(i64(s) for s in xs), int_arg("images", nc), int_arg("channels", cg),
                    int_arg("height", h), int_arg("width", w), *geometry, int_arg("height", ho),
                    int_arg("width", wo), i64(total)))
    return cols


def _check_groups(groups: int) -> None:
    if groups > MAX_BATCH:
        raise KernelUnsupported(f"conv2d with more than {MAX_BATCH} groups")


def conv2d(dev: Any, x: Any, w: Any, b: Any = None, *, stride: _Pair, padding: _Pair, dilation: _Pair,
           groups: int, activation: str | None = None) -> Any:
    """2-D cross-correlation of x (N, C, H, W) with w (O, C/groups, kH, kW), plus bias (O,), and
    the ``activation`` applied as the GEMM stores its tiles."""
    dtype = float_dtype("conv2d", *(a for a in (x, w, b) if a is not None))
    if len(x.shape) != 4 or len(w.shape) != 4 or x.shape[1] != w.shape[1] * groups or w.shape[0] % groups or (
            b is not None and tuple(b.shape) != tuple(w.shape[:1])):
        raise KernelUnsupported("bad shapes")  # the reference explains the error
    _check_groups(groups)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho, wo = (out_size(s, k, st, p, d) for s, k, st, p, d in zip((h, wd), (kh, kw), stride, padding, dilation))
    if ho <= 0 or wo <= 0:
        raise KernelUnsupported("kernel does not fit")  # the reference explains the error
    out = dev.empty((n, o, ho, wo), dtype)
    if out.size == 0:
        return out
    geometry = _geometry((kh, kw), stride, padding, dilation)
    og, k, p = o // groups, cg * kh * kw, ho * wo
    w = contiguous(dev, w)  # rows of W_g dense: (O, K)
    sb = elem_strides(b)[0] if b is not None else 0
    chunk = chunk_images(groups * k * p, dtype.itemsize)
    for n0 in range(0, n, chunk):
        nc = min(chunk, n - n0)
        cols = _im2col(dev, dtype, x, n0, nc, groups, cg, ho, wo, geometry)
        dst = dev.view(out, (nc, o, ho, wo), contiguous_strides((n, o, ho, wo)), n0 * o * p)
        # A = W_g (og x K), B = cols_g (K x nc*P), C column j = (image j // P, pixel j % P)
        gemm(dev, dtype, og, nc * p, k, groups, dst, w, cols, (k, 1, og * k), (nc * p, 1, k * nc * p),
             (p, 1, og * p), b, (sb, 0, og * sb), csplit=p, c_split_stride=o * p, activation=activation)
    return out


def conv2d_backward_input(dev: Any, g: Any, w: Any, *, input_size: _Pair, stride: _Pair, padding: _Pair,
                          dilation: _Pair, groups: int) -> Any:
    """conv2d's input gradient: columns ``W_g.T @ g`` per image and group, then col2im."""
    dtype = float_dtype("conv2d_backward_input", g, w)
    if len(g.shape) != 4 or len(w.shape) != 4 or g.shape[1] != w.shape[0] or w.shape[0] % groups:
        raise KernelUnsupported("bad shapes")
    _check_groups(groups)
    n, o, ho, wo = g.shape
    _, cg, kh, kw = w.shape
    h, wd = (int(v) for v in input_size)
    c = cg * groups
    out = dev.empty((n, c, h, wd), dtype)
    if out.size == 0:
        return out
    geometry = _geometry((kh, kw), stride, padding, dilation)
    og, k, p = o // groups, cg * kh * kw, ho * wo
    g, w = contiguous(dev, g), contiguous(dev, w)  # g's pixels as one dense row per channel
    chunk = chunk_images(groups * k * p, dtype.itemsize)
    for n0 in range(0, n, chunk):
        nc = min(chunk, n - n0)
        cols = dev.empty((groups * k * nc * p,), dtype)  # (G, K, nc * P)
        a_strides = (1, k, og * k)  # A = W_g.T (K x og), read through W's strides
        if groups >= nc:  # batch the groups, one launch per image
            for i in range(nc):
                b = dev.view(g, (og * p,), (1,), (n0 + i) * o * p)
                dst = dev.view(cols, (k * p,), (1,), i * p)
                gemm(dev, dtype, k, p, og, groups, dst, w, b, a_strides, (p, 1, og * p), (nc * p, 1, k * nc * p))
        else:  # batch the images, one launch per group
            for gi in range(groups):
                a = dev.view(w, (og * k,), (1,), gi * og * k)
                b = dev.view(g, (og * p,), (1,), n0 * o * p + gi * og * p)
                dst = dev.view(cols, (k * p,), (1,), gi * k * nc * p)
                gemm(dev, dtype, k, p, og, nc, dst, a, b, (1, k, 0), (p, 1, o * p), (nc * p, 1, p))
        total = nc * c * h * wd
        dst = dev.view(out, (total,), (1,), n0 * c * h * wd)
        dev.launch(SOURCE, "col2im", defines(dtype), grid_1d(dev, total), (BLOCK,),
                   (dst, cols, int_arg("images", nc), int_arg("channels", c), int_arg("channels", cg),
                    int_arg("height", h), int_arg("width", wd), *geometry, int_arg("height", ho),
                    int_arg("width", wo), i64(total)))
    return out


def conv2d_backward_weight(dev: Any, x: Any, g: Any, *, kernel_size: _Pair, stride: _Pair, padding: _Pair,
                           dilation: _Pair, groups: int) -> Any:
    """conv2d's weight gradient ``g_g @ cols_g.T``, reducing over images and output pixels."""
    dtype = float_dtype("conv2d_backward_weight", x, g)
    if len(x.shape) != 4 or len(g.shape) != 4 or x.shape[0] != g.shape[0] or x.shape[1] % groups or g.shape[1] % groups:
        raise KernelUnsupported("bad shapes")
    _check_groups(groups)
    n, c, h, wd = x.shape
    _, o, ho, wo = g.shape
    kh, kw = (int(v) for v in kernel_size)
    cg, og = c // groups, o // groups
    k, p = cg * kh * kw, ho * wo
    if n == 0 or p == 0:
        return dev.zeros((o, cg, kh, kw), dtype)  # an empty sum
    out = dev.empty((o, cg, kh, kw), dtype)
    if out.size == 0:
        return out
    geometry = _geometry((kh, kw), stride, padding, dilation)
    gs = elem_strides(g)
    chunk = chunk_images(groups * (k + og) * p, dtype.itemsize)
    for n0 in range(0, n, chunk):
        nc = min(chunk, n - n0)
        cols = _im2col(dev, dtype, x, n0, nc, groups, cg, ho, wo, geometry)
        # g of the chunk permuted to (G, og, nc, Ho, Wo), dense: each A row (g, o) runs over (image, pixel)
        gt_shape = (groups, og, nc, ho, wo)
        gt = dev.empty(gt_shape, dtype)
        src = dev.view(g, gt_shape, (og * gs[1], gs[1], gs[0], gs[2], gs[3]), n0 * gs[0])
        copy_strided(dev, gt_shape, gt, contiguous_strides(gt_shape), src, elem_strides(src))
        # A = g_g (og x nc*P), B = cols_g.T (nc*P x K) read through cols' strides, C = gw_g (og x K)
        gemm(dev, dtype, og, k, nc * p, groups, out, gt, cols, (nc * p, 1, og * nc * p), (1, nc * p, k * nc * p),
             (k, 1, og * k), accumulate=n0 > 0)
    return out


KERNELS: dict = {
    "conv2d": conv2d,
    "conv2d_backward_input": conv2d_backward_input,
    "conv2d_backward_weight": conv2d_backward_weight,
}
