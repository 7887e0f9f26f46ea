"""OpenCL launchers of the neural-network ops: conv2d (``nn_conv``), pooling (``nn_pool``) and
batch_norm (``nn_norm``).

``linear`` and ``linear_backward_weight`` share the GEMM in ``matmul``, where they live.
"""

from tensorcore.backends.opencl_ops import nn_conv, nn_norm, nn_pool

KERNELS: dict = {**nn_conv.KERNELS, **nn_norm.KERNELS, **nn_pool.KERNELS}
