"""Neural-network functions (``tensorcore.nn.functional``), with PyTorch's signatures (NCHW).

The hot ones are fused ops with NumPy references and fused backward ops of their own
(``relu_backward``, ``softmax_backward``, ``cross_entropy_backward``, ``conv2d_backward_input``,
...), which device backends can replace with native kernels by op name.
"""

from __future__ import annotations

from tensorcore.ops.activations import gelu, log_softmax, relu, sigmoid, softmax, tanh
from tensorcore.ops.conv import conv2d
from tensorcore.ops.dense import embedding, linear
from tensorcore.ops.losses import cross_entropy, mse_loss
from tensorcore.ops.normalization import batch_norm, dropout, layer_norm
from tensorcore.ops.pooling import avg_pool2d, max_pool2d

__all__ = [
    "relu",
    "gelu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "linear",
    "embedding",
    "cross_entropy",
    "mse_loss",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "batch_norm",
    "layer_norm",
    "dropout",
]
