"""OpenCL launchers: conv2d and its two backward ops, as im2col packing + the GEMM.

- ``conv2d``: per group, ``out = W_g @ cols`` with the columns of all images side by side
  (so small images fill whole panels); the im2col packer writes them straight into the
  GEMM's panel layout, and the bias is added as the tiles are stored.
- ``conv2d_backward_input``: ``cols = W_g.T @ g`` (a plain GEMM), then col2im gathers each
  input pixel's taps (no atomics, no wasted work for strided convolutions).
- ``conv2d_backward_weight``: ``gw_g = g_g @ cols.T`` with the reduction running over images
  and output pixels at once (the GEMM's two-level k), the transposed columns packed directly.

Large batches are processed in chunks of images so that the packed columns stay under
``CHUNK_BYTES``; the weight gradient accumulates over chunks.
"""

from __future__ import annotations

from tensorcore.backends.opencl import CLArray, CLDevice
from tensorcore.backends.opencl_ops import reduce_core as core
from tensorcore.backends.opencl_ops._common import output
from tensorcore.backends.opencl_ops.matmul import Mat, check_float, defines, gemm, panel_width, run, vec, vector_width
from tensorcore.backends.opencl_ops.movement import contiguous

from tensorcore.errors import KernelUnsupported

CHUNK_BYTES = 64 << 20  # packed columns per launch: bounded, like the pool's working set
LOCAL = 64  # work-items per group of the packers and col2im
ROWS_BELOW = 1024  # images x channels under which the weight gradient's columns are packed by rows
SLICE_BYTES = 256 << 10  # a slice of a packed panel that stays in a core's L2 while its work-items read it

_Pair = tuple[int, int]


def _kernel(dev: CLDevice, name: str, dtype: object) -> object:
    return dev.kernel("conv.cl", name, defines(dev, dtype))


def _out_size(size: int, kernel_size: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def _geometry(kernel_size: _Pair, stride: _Pair, padding: _Pair, dilation: _Pair) -> tuple:
    """kh, kw, sh, sw, ph, pw, dh, dw as the conv kernels take them."""
    return (*kernel_size, *stride, *padding, *dilation)


def _rows(items: int) -> tuple[tuple[int], tuple[int]]:
    """Launch sizes for ``items`` work-items that each loop over a plane: PoCL pays per
    work-group (about a microsecond), so the groups are large."""
    return (-(-items // LOCAL) * LOCAL,), (LOCAL,)


def _chunk(per_image: int, itemsize: int) -> int:
    """Images per launch so that ``per_image`` elements each stay under CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // max(per_image * itemsize, 1))


def conv2d(dev: CLDevice, x: CLArray, w: CLArray, b: CLArray | None = None, *, stride: _Pair, padding: _Pair,
           dilation: _Pair, groups: int, activation: str | None = None) -> CLArray:
    """2-D cross-correlation of x (N, C, H, W) with w (O, C/groups, kH, kW), plus bias (O,), and
    the ``activation`` applied as the GEMM stores its tiles."""
    dtype = check_float(dev, x, w, b)
    if len(x.shape) != 4 or len(w.shape) != 4 or x.shape[1] != w.shape[1] * groups or w.shape[0] % groups or (
            b is not None and b.shape != w.shape[:1]):
        raise KernelUnsupported("bad shapes")  # the reference explains the error
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho, wo = (_out_size(s, k, st, p, d) for s, k, st, p, d in zip((h, wd), (kh, kw), stride, padding, dilation))
    if ho <= 0 or wo <= 0:
        raise KernelUnsupported("kernel does not fit")
    out = output(dev, (n, o, ho, wo), dtype)
    if out.buf is None:
        return out
    og, k, p = o // groups, cg * kh * kw, ho * wo
    w = contiguous(w)
    nr = panel_width(dev, dtype)
    bias = None if b is None else Mat(b.buf, b.offset, b.strides[0], 0, (og * b.strides[0],))
    # whole vectors of each input row where rows are contiguous and each half panel is one row
    by_rows = stride[1] == 1 and x.strides[3] == 1 and wo % vector_width(dev, dtype) == 0
    pack = _kernel(dev, "im2col_panels_rows" if by_rows else "im2col_panels", dtype)
    chunk = _chunk(groups * k * p, dtype.itemsize)
    for n0 in range(0, n, chunk):
        nc = min(chunk, n - n0)
        panels = -(-nc * p // nr)
        size = panels * nr * k  # one group's packed columns
        packed = output(dev, (max(groups * size, 1),), dtype)
        if k and by_rows:
            dev.launch(pack, *_rows(groups * panels), packed.buf, x.buf, x.offset + n0 * x.strides[0],
                       vec(x.strides, 4), nc, cg, h, wd, kh, kw, stride[0], *padding, *dilation, ho, wo, panels,
                       groups * panels)
        elif k:
            dev.launch(pack, *_rows(nc * c), packed.buf, x.buf, x.offset + n0 * x.strides[0],
                       vec(x.strides, 4), nc, groups, cg, h, wd, *_geometry((kh, kw), stride, padding, dilation),
                       ho, wo, nc * c)
        # columns (image, pixel): image blocks o * p apart in the output
        run(dev, dtype, og, nc * p, 1, k, (groups,), Mat(w.buf, w.offset, k, 1, (og * k,)), 0, packed, (size,),
            Mat(out.buf, n0 * o * p, p, 1, (og * p,)), bias, split=p, c_so=o * p, activation=activation)
    return out


def conv2d_backward_input(dev: CLDevice, g: CLArray, w: CLArray, *, input_size: _Pair, stride: _Pair,
                          padding: _Pair, dilation: _Pair, groups: int) -> CLArray:
    """conv2d's input gradient: columns ``W_g.T @ g`` per image and group, then col2im."""
    dtype = check_float(dev, g, w)
    if len(g.shape) != 4 or len(w.shape) != 4 or g.shape[1] != w.shape[0] or w.shape[0] % groups:
        raise KernelUnsupported("bad shapes")
    n, o, ho, wo = g.shape
    _, cg, kh, kw = w.shape
    h, wd = input_size
    c = cg * groups
    out = output(dev, (n, c, h, wd), dtype)
    if out.buf is None:
        return out
    og, k, p = o // groups, cg * kh * kw, ho * wo
    g, w = contiguous(g), contiguous(w)
    scatter = _kernel(dev, "col2im", dtype)
    chunk = _chunk(groups * k * p, dtype.itemsize)
    for n0 in range(0, n, chunk):
        nc = min(chunk, n - n0)
        cols = output(dev, (nc, groups, k, p), dtype)
        if cols.buf is not None:
            gemm(dev, dtype, k, p, og, (nc, groups), Mat(w.buf, w.offset, 1, k, (0, og * k)),
                 Mat(g.buf, g.offset + n0 * o * p, p, 1, (o * p, og * p)),
                 Mat(cols.buf, 0, p, 1, (groups * k * p, k * p)))
        dev.launch(scatter, *_rows(nc * c), out.buf, cols.buf if cols.buf is not None else out.buf,
                   n0, nc * c, c, cg, h, wd, *_geometry((kh, kw), stride, padding, dilation), ho, wo)
    return out


def conv2d_backward_weight(dev: CLDevice, x: CLArray, g: CLArray, *, kernel_size: _Pair, stride: _Pair,
                           padding: _Pair, dilation: _Pair, groups: int) -> CLArray:
    """conv2d's weight gradient ``g_g @ cols.T``, reducing over images and output pixels."""
    dtype = check_float(dev, x, g)
    if len(x.shape) != 4 or len(g.shape) != 4 or x.shape[0] != g.shape[0] or x.shape[1] % groups or g.shape[1] % groups:
        raise KernelUnsupported("bad shapes")
    n, c, h, wd = x.shape
    _, o, ho, wo = g.shape
    kh, kw = kernel_size
    cg, og = c // groups, o // groups
    out = output(dev, (o, cg, kh, kw), dtype)
    if out.buf is None:
        return out
    q, p = cg * kh * kw, ho * wo
    g = contiguous(g)
    nr = panel_width(dev, dtype)
    panels = -(-q // nr)
    chunk = _chunk(groups * panels * nr * p, dtype.itemsize)
    # By panel rows where images x channels are too few work-items for the cores (conv1 of the
    # CNN, 3 channels: 1.2 ms against 2.4); by channels otherwise (conv2, 32 channels: 1.7 ms
    # against 2.8 by rows; docs/performance.md, session 14).
    by_rows = min(chunk, n) * c < ROWS_BELOW
    pack = _kernel(dev, "im2col_panels_t_rows" if by_rows else "im2col_panels_t", dtype)
    for n0 in range(0, max(n, 1), chunk):  # at least once: no images still writes zeros
        nc = min(chunk, n - n0)
        kc = nc * p
        size = panels * nr * kc  # one packed group
        packed = output(dev, (max(groups * size, 1),), dtype)
        if kc and by_rows:
            items = groups * panels * nc * ho
            dev.launch(pack, *_rows(items), packed.buf, x.buf, x.offset + n0 * x.strides[0], vec(x.strides, 4),
                       nc, cg, h, wd, *_geometry((kh, kw), stride, padding, dilation), ho, wo, panels, items)
        elif kc:
            dev.launch(pack, *_rows(nc * c), packed.buf, x.buf, x.offset + n0 * x.strides[0], vec(x.strides, 4),
                       nc, cg, h, wd, *_geometry((kh, kw), stride, padding, dilation), ho, wo, nc * c)
        slices = _k_slices(nc, p, nr * dtype.itemsize) if nc == n else 1
        a = Mat(g.buf, g.offset + n0 * o * p, p, 1, (og * p,))
        if slices == 1:
            run(dev, dtype, og, q, nc, p, (groups,), a, o * p, packed, (size,), Mat(out.buf, 0, q, 1, (og * q,)),
                accumulate=n0 > 0)
            continue
        # Split K: each slice of images sums into its own partial gradient, read from its slice
        # of every packed panel, and the partials are added after. One work-item summing over
        # all images streamed each panel from memory once per row tile (the panel, ~K * 128
        # bytes, does not stay in cache) and the few output tiles left cores idle: the CNN's
        # weight gradients ran at 38-125 GFLOP/s (docs/performance.md, session 14).
        per = nc // slices
        partial = output(dev, (slices, o * q), dtype)
        run(dev, dtype, og, q, per, p, (groups, slices), Mat(a.buf, a.off, p, 1, (og * p, per * o * p)), o * p,
            packed, (size, per * p * nr), Mat(partial.buf, 0, q, 1, (og * q, o * q)), panel_stride=kc * nr)
        core.run(dev, core.Layout(partial, 1, slices, o * q, 0, o * q, 1), out, core.SUM, core.IDENTITY, dtype)
    return out


def _k_slices(images: int, pixels: int, row_bytes: int) -> int:
    """Slices of the images a weight gradient's K is split into: the fewest (a divisor of
    ``images``, so all slices are equal) whose slice of a packed panel (``row_bytes`` per row
    of K) fits ``SLICE_BYTES``; 1 for no images."""
    for slices in range(1, images + 1):
        if images % slices == 0 and images // slices * pixels * row_bytes <= SLICE_BYTES:
            return slices
    return max(images, 1)


KERNELS: dict = {
    "conv2d": conv2d,
    "conv2d_backward_input": conv2d_backward_input,
    "conv2d_backward_weight": conv2d_backward_weight,
}
