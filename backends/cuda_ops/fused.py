"""CUDA kernels for fused elementwise chains (graph mode): ``kernels/cuda/fused.cu`` is the
template, with the scalar helpers of ``kernels/fused_ops.h`` that the OpenCL template shares.
Like the other launchers, this module imports no CuPy (the compile test generates sources here).
"""

from __future__ import annotations

import math
from string import Template
from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops._common import BLOCK, CTYPES

from tensorcore.errors import KernelUnsupported
from tensorcore.ops.fusable import FusedProgram

MAX_BLOCKS = 4096  # the grid-stride loop covers the rest


def source(program: FusedProgram) -> str:
    """The CUDA C++ text of ``program`` (every input contiguous with the output's shape)."""
    from tensorcore.kernels import source as kernel_source

    params = [f"const FT* x{k}_p" for k in range(program.n_inputs)] + [f"FT k{m}" for m in range(len(program.scalars))]
    loads = [f"        const FT x{k} = x{k}_p[i];" for k in range(program.n_inputs)]
    body = "\n".join("        " + line for line in program.c_statements())
    text = Template(kernel_source("cuda/fused.cu")).substitute(
        HELPERS=kernel_source("fused_ops.h"), PARAMS="".join(", " + p for p in params), LOADS="\n".join(loads),
        BODY=body, RESULT=f"t{len(program.steps) - 1}")
    return f"#define FT {CTYPES[program.dtype]}\n{text}"


def fuse(dev: Any, program: FusedProgram) -> Any:
    """One kernel computing ``program`` on CUDA device ``dev``: ``kernel(*inputs, out=None)``."""
    if program.dtype not in CTYPES:
        raise KernelUnsupported(f"no fused CUDA kernel for {program.dtype}")
    if program.reduction is not None:  # the graph then fuses the chain alone
        raise KernelUnsupported("no fused CUDA kernel ending in a reduction yet")
    text = source(program)
    shape, n = program.shape, math.prod(program.shape)
    scalars = tuple(program.dtype.type(v) for v in program.scalars)
    grid = (min(MAX_BLOCKS, max(1, -(-n // BLOCK))),)

    def run(*inputs: Any, out: Any = None) -> Any:
        cp = dev.cp
        with dev.activate():
            if out is None:
                out = dev.empty(shape, program.dtype)
            if n == 0:
                return out
            # the kernel reads element i of every input: broadcast and strided ones are made so
            dense = [x if x.shape == shape and x.flags.c_contiguous else cp.ascontiguousarray(cp.broadcast_to(x, shape))
                     for x in inputs]
            kernel = dev.generated_function(f"fused.cu ({program.describe()})", text, "fused")
            kernel(grid, (BLOCK,), (out, np.int64(n), *dense, *scalars))
        return out

    return run
