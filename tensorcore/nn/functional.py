"""Neural-network functions (``tensorcore.nn.functional``), with PyTorch's signatures (NCHW).

The hot ones are fused ops with NumPy references and fused backward ops of their own
(``relu_backward``, ``softmax_backward``, ``cross_entropy_backward``, ``conv2d_backward_input``,
...), which device backends can replace with native kernels by op name. ``embedding`` and
``avg_pool2d`` here add PyTorch's options (``padding_idx``; ``count_include_pad``,
``divisor_override``) on top of those ops, with other ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.autodiff.custom import stop_gradient
from tensorcore.errors import OpError
from tensorcore.ops import dense as _dense
from tensorcore.ops import pooling as _pooling
from tensorcore.ops._nn import require_tensor
from tensorcore.ops.activations import gelu, log_softmax, relu, sigmoid, softmax, tanh
from tensorcore.ops.arithmetic import add, divide, multiply, subtract
from tensorcore.ops.conv import conv2d
from tensorcore.ops.creation import asarray, ones
from tensorcore.ops.dense import linear
from tensorcore.ops.losses import cross_entropy, mse_loss
from tensorcore.ops.normalization import batch_norm, dropout, layer_norm
from tensorcore.ops.pooling import max_pool2d
from tensorcore.tensor import Tensor


def padding_row(padding_idx: Any, num_embeddings: int) -> int:
    """``padding_idx`` as a row index in ``[0, num_embeddings)`` (negative counts from the end)."""
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, int) or not -num_embeddings <= padding_idx < num_embeddings:
        raise OpError(f"embedding: padding_idx must be an int in [-{num_embeddings}, {num_embeddings}) "
                      f"(a row of the weight), got {padding_idx!r}")
    return padding_idx % num_embeddings


def padding_mask(num_embeddings: int, row: int, like: Tensor) -> Tensor:
    """A ``(num_embeddings, 1)`` table of ones with 0 at ``row``, on ``like``'s device and dtype."""
    table = np.ones((num_embeddings, 1), like.dtype)
    table[row] = 0
    return asarray(table, device=like.device)


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, *, mask: Tensor | None = None) -> Tensor:  # noqa: A002
    """Rows of ``weight`` ``(num_embeddings, dim)`` at integer ``input``: shape ``input.shape + (dim,)``.

    ``padding_idx``: positions holding that index send no gradient to its row (PyTorch's
    padding); their values are the row's, exactly. The gradient is masked by a 0/1 lookup in a
    ``(num_embeddings, 1)`` table (``mask``, which ``nn.Embedding`` keeps per device instead of
    building it each call): ``stop_gradient(e) + (e - stop_gradient(e)) * m`` has the value ``e``
    and the gradient ``m``. Every backend does these natively, with no integer arithmetic on the
    indices (which CUDA would run on the host).
    """
    out = _dense.embedding(input, weight)
    if padding_idx is None:
        return out
    row = padding_row(padding_idx, weight.shape[0])
    if mask is None:
        mask = padding_mask(weight.shape[0], row, weight)
    held = stop_gradient(out)
    return add(held, multiply(subtract(out, held), _dense.embedding(input, mask)))


def avg_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,  # noqa: A002
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """2-D average pooling of ``input`` ``(N, C, H, W)``; ``stride`` defaults to ``kernel_size``.

    PyTorch's options: ``count_include_pad=False`` divides each window by its number of input
    (unpadded) elements; ``divisor_override`` divides every window by that number.
    ``ceil_mode=True`` is not supported (the output size rounds down).
    """
    if ceil_mode:
        raise OpError("avg_pool2d: ceil_mode=True is not supported; the output size rounds down (ceil_mode=False)")
    out = _pooling.avg_pool2d(input, kernel_size, stride, padding)
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, int) or divisor_override <= 0:
            raise OpError(f"avg_pool2d: divisor_override must be a positive int, got {divisor_override!r}")
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        return multiply(out, kh * kw / divisor_override)  # the op divides by the window's size
    if count_include_pad or padding in (0, (0, 0), [0, 0]):
        return out
    # The share of each window that lies inside the input: pooling a plane of ones.
    require_tensor("avg_pool2d", "input", input, ndim=4)
    plane = ones((1, 1) + tuple(input.shape[2:]), dtype=input.dtype, device=input.device)
    inside = _pooling.avg_pool2d(plane, kernel_size, stride, padding)
    return divide(out, inside)


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
