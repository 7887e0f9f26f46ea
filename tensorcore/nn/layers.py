"""Layers: Linear, Embedding, Conv2d, MaxPool2d, AvgPool2d, Flatten, Dropout, BatchNorm2d, LayerNorm,
ReLU, Sequential (activations, containers and losses have modules of their own)."""

from __future__ import annotations

import math
from typing import Any

from tensorcore import random
from tensorcore.autodiff.variable import Variable
from tensorcore.errors import OpError
from tensorcore.nn import functional as F
from tensorcore.nn.module import Module
from tensorcore.ops.creation import asarray, ones, zeros
from tensorcore.ops.manipulation import reshape
from tensorcore.tensor import Tensor


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


def _positive_int(layer: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise OpError(f"{layer}: {name} must be a positive int, got {value!r}")
    return value


class Embedding(Module):
    """A lookup table: integer indices ``(...)`` -> rows of ``weight`` ``(num_embeddings,
    embedding_dim)``, shape ``(..., embedding_dim)``; weight initialized from N(0, 1) as PyTorch does.

    ``padding_idx``: that row starts at zero (unless given by ``_weight``/``from_pretrained``)
    and gets no gradient (see ``F.embedding``). ``_weight``/``from_pretrained`` take an initial table; frozen
    (``_freeze=True``) it is a buffer: in ``state_dict`` but not in ``parameters()``.
    ``max_norm``, ``scale_grad_by_freq`` and ``sparse`` are not supported.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight: Any = None, _freeze: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        for name, unsupported in (("max_norm", max_norm is not None), ("scale_grad_by_freq", scale_grad_by_freq),
                                  ("sparse", sparse)):
            if unsupported:
                raise OpError(f"Embedding: {name} is not supported (dense gradients, no renormalization); leave it at its default")
        self.num_embeddings = _positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _positive_int("Embedding", "embedding_dim", embedding_dim)
        self.padding_idx = None if padding_idx is None else F.padding_row(padding_idx, num_embeddings)
        if _weight is None:
            table = random.normal((num_embeddings, embedding_dim), dtype=dtype, device="cpu").numpy().copy()
            if self.padding_idx is not None:
                table[self.padding_idx] = 0
            value = asarray(table, device=device)
        else:
            value = asarray(_weight, dtype=dtype, device=device)
            if tuple(value.shape) != (num_embeddings, embedding_dim):
                raise OpError(f"Embedding: _weight must have shape ({num_embeddings}, {embedding_dim}), got {value.shape}")
        weight = Variable(value, trainable=not _freeze, name="weight")
        if _freeze:
            self.register_buffer("weight", weight)
        else:
            self.weight = weight
        object.__setattr__(self, "_masks", {})  # padding masks per (device, dtype): not state

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None, **kwargs: Any) -> Embedding:
        """An Embedding whose table is a copy of ``embeddings`` (2-D); frozen unless ``freeze=False``."""
        shape = tuple(embeddings.shape)
        if len(shape) != 2:
            raise OpError(f"Embedding.from_pretrained: embeddings must be 2-D (num_embeddings, embedding_dim), got {shape}")
        device = kwargs.pop("device", embeddings.device if isinstance(embeddings, Tensor) else None)
        return cls(shape[0], shape[1], padding_idx, _weight=embeddings, _freeze=freeze, device=device, **kwargs)

    def _mask(self) -> Tensor | None:
        if self.padding_idx is None:
            return None
        key = (self.weight.device, self.weight.dtype)
        mask = self._masks.get(key)
        if mask is None:
            mask = self._masks[key] = F.padding_mask(self.num_embeddings, self.padding_idx, self.weight)
        return mask

    def forward(self, indices: Any) -> Any:
        """Look up the rows of ``indices``."""
        return F.embedding(indices, self.weight, self.padding_idx, mask=self._mask())

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


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


class AvgPool2d(Module):
    """Average pooling over NCHW input (PyTorch's options; ``ceil_mode=True`` is not supported)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        if ceil_mode:
            raise OpError("AvgPool2d: ceil_mode=True is not supported; the output size rounds down (ceil_mode=False)")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x: Any) -> Any:
        """Pool ``x``."""
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, False, self.count_include_pad,
                            self.divisor_override)

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


class LayerNorm(Module):
    """Normalization over the trailing ``normalized_shape`` dimensions, with a learned scale
    (ones) and shift (zeros) of that shape when ``elementwise_affine``."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        for n in shape:
            _positive_int("LayerNorm", "normalized_shape", n)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        affine = elementwise_affine
        self.weight = Variable(ones(shape, dtype=dtype, device=device), name="weight") if affine else None
        self.bias = Variable(zeros(shape, dtype=dtype, device=device), name="bias") if affine and bias else None

    def forward(self, x: Any) -> Any:
        """Normalize ``x`` over its trailing dimensions."""
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


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
