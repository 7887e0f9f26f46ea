"""OpenCL launchers of the neural-network ops: conv2d (``nn_conv``) and pooling (``nn_pool``).

``linear`` and ``linear_backward_weight`` share the GEMM in ``matmul``, where they live.
"""

from tensorcore.backends.opencl_ops import nn_conv, nn_pool

KERNELS: dict = {**nn_conv.KERNELS, **nn_pool.KERNELS}
