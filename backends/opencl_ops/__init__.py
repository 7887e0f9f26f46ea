"""Kernel launchers of the OpenCL backend, one module per family; ``KERNELS`` joins them.

Each launcher takes the device (``CLDevice``, bound by ``OpenCLBackend.bind``) first, then
the op's inputs as ``CLArray`` or Python scalars, then the op's attributes as keywords, and
returns new ``CLArray`` outputs (in-place ops write into their first input and return None).
A launcher raises ``KernelUnsupported`` before writing anything for inputs it does not
handle; the op then falls back to cpu.
"""

from tensorcore.backends.opencl_ops import elementwise, global_norm, matmul, movement, nn, optim, reduce

KERNELS: dict = {}
for _module in (elementwise, reduce, matmul, nn, movement, optim, global_norm):
    KERNELS.update(_module.KERNELS)
