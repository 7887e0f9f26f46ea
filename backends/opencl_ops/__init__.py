"""Kernel launchers of the OpenCL backend, one module per family; ``KERNELS`` joins them.

Each launcher takes the device (``CLDevice``, bound by ``OpenCLBackend.bind``) first, then
the op's inputs as ``CLArray`` or Python scalars, then the op's attributes as keywords.
"""

from tensorcore.backends.opencl_ops import movement

KERNELS: dict = {}
for _module in (movement,):
    KERNELS.update(_module.KERNELS)
