"""Layers: Linear, Conv2d, MaxPool2d, Flatten, Dropout, BatchNorm2d, ReLU, Sequential."""

from __future__ import annotations

import math
from typing import Any

from tensorcore import random
from tensorcore.autodiff.variable import Variable
from tensorcore.nn import functional as F
from tensorcore.nn.module import Module
from tensorcore.ops.creation import ones, zeros
from tensorcore.ops.manipulation import reshape


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


def _uniform_param(shape: tuple[int, ...], bound: float, device: Any, name: str) -> Variable:
    return Variable(random.uniform(shape, -bound, bound, device=device), name=name)


class Linear(Module):
    """``y = x @ weight.T + bias``; weight ``(out_features, in_features)``, initialized
    uniformly in ``±1/sqrt(in_features)`` as PyTorch does."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = _uniform_param((out_features, in_features), bound, device, "weight")
        self.bias = _uniform_param((out_features,), bound, device, "bias") if bias else None

    def forward(self, x: Any) -> Any:
        """Apply the affine map."""
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution over NCHW input; weight ``(out, in/groups, kH, kW)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True, device: Any = None) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels={in_channels} and out_channels={out_channels} must be divisible by groups={groups}")
        kh, kw = _pair(kernel_size)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.config = f"{in_channels}, {out_channels}, kernel_size={(kh, kw)}, stride={stride}, padding={padding}"
        bound = 1.0 / math.sqrt(in_channels // groups * kh * kw)
        self.weight = _uniform_param((out_channels, in_channels // groups, kh, kw), bound, device, "weight")
        self.bias = _uniform_param((out_channels,), bound, device, "bias") if bias else None

    def forward(self, x: Any) -> Any:
        """Convolve ``x`` (N, C, H, W)."""
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return self.config


class MaxPool2d(Module):
    """Max pooling over NCHW input."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Any) -> Any:
        """Pool ``x``."""
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Flatten(Module):
    """Flatten dimensions ``start_dim`` and after into one."""

    def __init__(self, start_dim: int = 1) -> None:
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x: Any) -> Any:
        """Reshape ``x`` to ``x.shape[:start_dim] + (-1,)``."""
        return reshape(x, tuple(x.shape[: self.start_dim]) + (-1,))


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training mode; identity in eval mode."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Any) -> Any:
        """Zero elements with probability ``p`` and scale the rest by ``1/(1-p)``."""
        return F.dropout(x, self.p, training=self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class BatchNorm2d(Module):
    """Batch normalization over the channels of NCHW input, with running statistics."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True, device: Any = None) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Variable(ones((num_features,), device=device), name="weight") if affine else None
        self.bias = Variable(zeros((num_features,), device=device), name="bias") if affine else None
        self.register_buffer("running_mean", Variable(zeros((num_features,), device=device), trainable=False, name="running_mean"))
        self.register_buffer("running_var", Variable(ones((num_features,), device=device), trainable=False, name="running_var"))

    def forward(self, x: Any) -> Any:
        """Normalize ``x`` (batch statistics in training, running statistics in eval)."""
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training, momentum=self.momentum, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class ReLU(Module):
    """``max(x, 0)``."""

    def forward(self, x: Any) -> Any:
        """Apply ReLU."""
        return F.relu(x)


class Sequential(Module):
    """Modules applied one after another."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def forward(self, x: Any) -> Any:
        """Feed ``x`` through each module in order."""
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)
