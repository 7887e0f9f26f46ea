"""Kernel launchers of the OpenCL backend, one module per family; ``KERNELS`` joins them.

Each launcher takes the device (``CLDevice``, bound by ``OpenCLBackend.bind``) first, then
the op's inputs as ``CLArray`` or Python scalars, then the op's attributes as keywords, and
returns new ``CLArray`` outputs (in-place ops write into their first input and return None).
A launcher raises ``KernelUnsupported`` before writing anything for inputs it does not
handle; the op then falls back to cpu.

Complex kernels (``complex``): an op with a real launcher and a complex one gets an entry
that picks by the first operand's dtype; the binary ops pick inside ``elementwise_binary``.
"""

from tensorcore.backends.opencl_ops import complex as complex_ops
from tensorcore.backends.opencl_ops import elementwise, global_norm, matmul, movement, nn, optim, reduce

KERNELS: dict = {}
for _module in (elementwise, reduce, matmul, nn, movement, optim, global_norm):
    KERNELS.update(_module.KERNELS)
for _name, _launcher in complex_ops.KERNELS.items():
    _real = KERNELS.get(_name)
    KERNELS[_name] = _launcher if _real is None else complex_ops.with_complex(_real, _launcher)
