"""Activation layers with PyTorch's constructors: GELU, Sigmoid, Tanh, Softmax.

Each wraps one fused op (a native kernel on every backend), so a layer costs what the function does.
"""

from __future__ import annotations

import warnings
from typing import Any

from tensorcore.errors import OpError
from tensorcore.nn import functional as F
from tensorcore.nn.module import Module


class GELU(Module):
    """Gaussian error linear unit ``x * Phi(x)``; ``approximate="tanh"`` uses the tanh formula."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise OpError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Any) -> Any:
        """Apply GELU elementwise."""
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``, computed without overflow."""

    def forward(self, x: Any) -> Any:
        """Apply the logistic sigmoid elementwise."""
        return F.sigmoid(x)


class Tanh(Module):
    """Hyperbolic tangent."""

    def forward(self, x: Any) -> Any:
        """Apply tanh elementwise."""
        return F.tanh(x)


def _implicit_dim(ndim: int) -> int:
    """PyTorch's legacy choice when ``Softmax(dim=None)``: 0 for 0-, 1- and 3-D input, else 1."""
    warnings.warn("Softmax(dim=None): the dimension is chosen implicitly, as PyTorch did (deprecated there too); "
                  "pass dim explicitly, e.g. Softmax(dim=-1)", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """``exp(x) / sum(exp(x))`` along ``dim`` (PyTorch's name for the axis)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)):
            raise OpError(f"Softmax: dim must be an int (or None), got {dim!r}")
        self.dim = dim

    def forward(self, x: Any) -> Any:
        """Apply softmax along ``dim``."""
        dim = self.dim if self.dim is not None else _implicit_dim(x.ndim)
        return F.softmax(x, axis=dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


__all__ = ["GELU", "Sigmoid", "Tanh", "Softmax"]
