"""OpenCL kernels for fused elementwise chains (graph mode): ``kernels/opencl/fused.cl`` is
the template; each FusedProgram, with the layout of its inputs, becomes one generated kernel.
A chain that ends in a sum or mean over trailing axes fills ``fused_reduce.cl`` instead, whose
per-work-item parts ``reduce_core`` adds up.
"""

from __future__ import annotations

import math
from string import Template
from typing import Any

import numpy as np
from tensorcore.backends.opencl import CLArray, CLDevice
from tensorcore.backends.opencl_ops import reduce_core as core
from tensorcore.backends.opencl_ops._common import CTYPES, long8
from tensorcore.backends.opencl_ops.elementwise_launch import LOCAL, chunking, strided_layout

from tensorcore.errors import KernelUnsupported
from tensorcore.ops.fusable import FusedProgram


def source(program: FusedProgram, layout: str) -> str:
    """The OpenCL C text of ``program`` for input layout ``layout`` (one letter per input:
    ``t`` contiguous with the chain's shape, ``v`` strided or broadcast)."""
    from tensorcore.kernels import source as kernel_source

    params, loads = [], []
    for k, kind in enumerate(layout):
        params.append(f"__global const FT* x{k}_p, long x{k}_o" + (f", long8 x{k}_s" if kind == "v" else ""))
        index = "i" if kind == "t" else f"strided_offset(i, shape, x{k}_s, ndim)"
        loads.append(f"        const FT x{k} = x{k}_p[x{k}_o + {index}];")
    params += [f"FT k{m}" for m in range(len(program.scalars))]
    body = "\n".join("        " + line for line in program.c_statements())
    template = "opencl/fused.cl" if program.reduction is None else "opencl/fused_reduce.cl"
    return Template(kernel_source(template)).substitute(
        PARAMS="".join(", " + p for p in params), LOADS="\n".join(loads), BODY=body,
        RESULT=f"t{len(program.steps) - 1}")


def fuse(dev: CLDevice, program: FusedProgram) -> Any:
    """One kernel computing ``program``: ``kernel(*inputs, out=None) -> CLArray``."""
    from tensorcore.kernels import KERNEL_DIR

    dtype = program.dtype
    if dtype not in CTYPES or dtype.kind != "f" or (dtype == np.float64 and not dev.fp64):
        raise KernelUnsupported(f"no fused OpenCL kernel for {dtype} on opencl:{dev.index}")
    shape, n = program.shape, math.prod(program.shape)
    scalars = [dtype.type(v) for v in program.scalars]
    options = (f"-DFT={CTYPES[dtype]}", "-I", str(KERNEL_DIR))
    kernels: dict[str, Any] = {}

    def kernel_for(inputs: tuple[CLArray, ...]) -> tuple[Any, list[Any]]:
        """The kernel for the inputs' layout, and the inputs' arguments."""
        layout = "".join("t" if x.shape == shape and x.is_contiguous else "v" for x in inputs)
        kernel = kernels.get(layout)
        if kernel is None:
            name = "fused" if program.reduction is None else "fused_reduce"
            kernel = kernels[layout] = dev.generated_kernel(
                f"{name}.cl ({program.describe()}, layout {layout})", source(program, layout), name, options)
        strided = [x for x, kind in zip(inputs, layout) if kind == "v"]
        dims, strides = strided_layout(shape, strided) if strided else ([n], [])
        args: list[Any] = [long8(tuple(dims), 1), np.int32(len(dims))]
        it = iter(strides)
        for x, kind in zip(inputs, layout):
            args += (x.buf, x.offset) + ((long8(tuple(next(it)), 0),) if kind == "v" else ())
        return kernel, args

    if program.reduction is not None:
        return _reduction(dev, program, kernel_for, scalars)
    size, chunk = chunking(n) if n else ((0,), 0)

    def run(*inputs: CLArray, out: CLArray | None = None) -> CLArray:
        if out is None:
            out = dev.empty(shape, dtype)
        if n == 0:
            return out
        kernel, args = kernel_for(inputs)
        dev.launch(kernel, size, LOCAL, out.buf, n, chunk, *args, *scalars)
        return out

    return run


def _reduction(dev: CLDevice, program: FusedProgram, kernel_for: Any, scalars: list[Any]) -> Any:
    """The kernel of a chain ending in a sum or mean over trailing axes: parts of each row from
    the generated kernel, then reduce_core's sum of the parts (divided by the row's length for
    a mean), in the chain's dtype as the unfused sum accumulates."""
    name, axes, _ = program.reduction
    dtype, shape = program.dtype, program.shape
    length = math.prod(shape[len(shape) - len(axes):])  # elements reduced into each result
    rows = math.prod(shape[:len(shape) - len(axes)])
    if length == 0 or rows == 0:
        raise KernelUnsupported("an empty reduction runs unfused")  # NumPy's NaN and zeros, as the op gives them
    chunk, parts = core.row_plan(length, rows)
    size, local = core.grid(parts, rows)

    def run(*inputs: CLArray, out: CLArray | None = None) -> CLArray:
        result = dev.empty(program.out_shape, dtype) if out is None else out
        kernel, args = kernel_for(inputs)
        partials = dev.empty((rows * parts,), dtype)
        dev.launch(kernel, size, local, partials.buf, length, rows, chunk, parts, *args, *scalars)
        lay = core.Layout(partials, rows, parts, 1, parts, 1, 1)
        return core.run(dev, lay, result, core.SUM, core.IDENTITY, dtype,
                        div=float(length) if name == "mean" else None)

    return run
