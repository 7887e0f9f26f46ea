"""Kernel launchers of the CUDA backend, one module per family; ``KERNELS`` joins them.

Each launcher takes the device (``CUDADevice``, bound by ``CUDABackend.bind`` with its device
and stream current) first, then the op's inputs as ``cupy.ndarray`` or Python scalars, then
the op's attributes as keywords, and returns new arrays (in-place ops write into their first
input and return None). A launcher raises ``KernelUnsupported`` before writing anything for
inputs it does not handle; the op then falls back to cpu. ``VARIANTS`` lists every
(source, defines) pair the launchers build, for the compile check in CI.

Complex kernels (``complex``): each op of ``complex.NATIVE`` gets an entry that sends complex
operands to the complex launcher and the rest to the real one, installed after the real table.
"""

from tensorcore.backends.cuda_ops import complex as complex_ops
from tensorcore.backends.cuda_ops import (
    elementwise,
    global_norm,
    matmul,
    movement_copy,
    movement_index,
    movement_views,
    nn_conv,
    nn_pool,
    optim,
    reduce,
    softmax,
)

KERNELS: dict = {}
VARIANTS: list = []
for _module in (elementwise, reduce, matmul, softmax, optim, movement_copy, movement_views, movement_index, nn_conv,
                nn_pool, global_norm):
    KERNELS.update(_module.KERNELS)
    VARIANTS += getattr(_module, "VARIANTS", [])
VARIANTS += complex_ops.VARIANTS
complex_ops.install(KERNELS)
