"""OpenCL kernels for fused elementwise chains (graph mode): ``kernels/opencl/fused.cl`` is
the template; each FusedProgram, with the layout of its inputs, becomes one generated kernel.
"""

from __future__ import annotations

import math
from string import Template
from typing import Any

import numpy as np
from tensorcore.backends.opencl import CLArray, CLDevice
from tensorcore.backends.opencl_ops._common import CTYPES, long8
from tensorcore.backends.opencl_ops.elementwise_launch import LOCAL, chunking, strided_layout

from tensorcore.errors import KernelUnsupported
from tensorcore.ops.fusable import FusedProgram


def source(program: FusedProgram, layout: str) -> str:
    """The OpenCL C text of ``program`` for input layout ``layout`` (one letter per input:
    ``t`` contiguous with the output's shape, ``v`` strided or broadcast)."""
    from tensorcore.kernels import source as kernel_source

    params, loads = [], []
    for k, kind in enumerate(layout):
        params.append(f"__global const FT* x{k}_p, long x{k}_o" + (f", long8 x{k}_s" if kind == "v" else ""))
        index = "i" if kind == "t" else f"strided_offset(i, shape, x{k}_s, ndim)"
        loads.append(f"        const FT x{k} = x{k}_p[x{k}_o + {index}];")
    params += [f"FT k{m}" for m in range(len(program.scalars))]
    body = "\n".join("        " + line for line in program.c_statements())
    return Template(kernel_source("opencl/fused.cl")).substitute(
        PARAMS="".join(", " + p for p in params), LOADS="\n".join(loads), BODY=body,
        RESULT=f"t{len(program.steps) - 1}")


def fuse(dev: CLDevice, program: FusedProgram) -> Any:
    """One kernel computing ``program``: ``kernel(*inputs, out=None) -> CLArray``."""
    from tensorcore.kernels import KERNEL_DIR

    dtype = program.dtype
    if dtype not in CTYPES or dtype.kind != "f" or (dtype == np.float64 and not dev.fp64):
        raise KernelUnsupported(f"no fused OpenCL kernel for {dtype} on opencl:{dev.index}")
    shape, n = program.shape, math.prod(program.shape)
    size, chunk = chunking(n) if n else ((0,), 0)
    scalars = [dtype.type(v) for v in program.scalars]
    options = (f"-DFT={CTYPES[dtype]}", "-I", str(KERNEL_DIR))
    kernels: dict[str, Any] = {}

    def run(*inputs: CLArray, out: CLArray | None = None) -> CLArray:
        if out is None:
            out = dev.empty(shape, dtype)
        if n == 0:
            return out
        layout = "".join("t" if x.shape == shape and x.is_contiguous else "v" for x in inputs)
        kernel = kernels.get(layout)
        if kernel is None:
            kernel = kernels[layout] = dev.generated_kernel(
                f"fused.cl ({program.describe()}, layout {layout})", source(program, layout), "fused", options)
        strided = [x for x, kind in zip(inputs, layout) if kind == "v"]
        dims, strides = strided_layout(shape, strided) if strided else ([n], [])
        args: list[Any] = [out.buf, n, chunk, long8(tuple(dims), 1), np.int32(len(dims))]
        it = iter(strides)
        for x, kind in zip(inputs, layout):
            args += (x.buf, x.offset) + ((long8(tuple(next(it)), 0),) if kind == "v" else ())
        dev.launch(kernel, size, LOCAL, *args, *scalars)
        return out

    return run
