"""Helpers shared by the neural-network op modules (activations, losses, conv, pooling, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tensorcore.errors import OpError
from tensorcore.tensor import Tensor

_ZERO_BLOCK = 1 << 16  # elements: the block of zeros relu compares against (256 KiB of float32)
_zero_blocks: dict[np.dtype, np.ndarray] = {}
_zero_views: dict[tuple, np.ndarray] = {}  # (shape, dtype) -> a read-only view of the block, for small arrays
_MAX_ZERO_VIEWS = 1024  # shapes remembered; others make their view each time


def relu_into(x: Any, out: np.ndarray | None = None) -> Any:
    """``np.maximum(x, 0)`` (into ``out`` if given), the same bits, faster for float arrays.

    NumPy 2.4's ``maximum`` of a float array and a scalar runs a loop about 4x slower than
    against an array of zeros on an AVX2 CPU (64x128 float32: 12.4 us against 3.3 us), so C-
    contiguous float arrays are compared, block by block, with a block of zeros.
    """
    if type(x) is not np.ndarray:
        return np.maximum(x, 0, out=out)  # a scalar operand of a fused chain
    if x.dtype.kind != "f" or not x.flags.c_contiguous or (out is not None and not out.flags.c_contiguous):
        return np.maximum(x, np.zeros((), x.dtype), out=out)  # x's dtype, bool included
    if x.size <= _ZERO_BLOCK:
        zeros = _zero_views.get((x.shape, x.dtype))
        if zeros is None:
            zeros = _zero_block(x.dtype)[:x.size].reshape(x.shape)
            if len(_zero_views) < _MAX_ZERO_VIEWS:
                _zero_views[(x.shape, x.dtype)] = zeros
        return np.maximum(x, zeros, out=out)  # NumPy's rules for out: broadcasting, overlap
    if out is not None and out is not x and (out.shape != x.shape or np.may_share_memory(x, out)):
        return np.maximum(x, np.zeros((), x.dtype), out=out)  # block by block would break those rules
    out = np.empty_like(x) if out is None else out
    src, dst, block = x.reshape(-1), out.reshape(-1), _zero_block(x.dtype)
    for start in range(0, src.size, _ZERO_BLOCK):
        stop = min(start + _ZERO_BLOCK, src.size)
        np.maximum(src[start:stop], block[:stop - start], out=dst[start:stop])
    return out


def _zero_block(dtype: np.dtype) -> np.ndarray:
    block = _zero_blocks.get(dtype)
    if block is None:
        block = np.zeros(_ZERO_BLOCK, dtype)
        block.flags.writeable = False
        block = _zero_blocks.setdefault(dtype, block)
    return block


def pair(op: str, name: str, value: Any, minimum: int) -> tuple[int, int]:
    """``value`` (an int or a pair of ints) as a pair; each at least ``minimum``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        out = (int(value[0]), int(value[1]))
    else:
        raise OpError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(out) < minimum:
        raise OpError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return out


def require_tensor(op: str, name: str, x: Any, ndim: int | tuple[int, ...] | None = None, floating: bool = False) -> None:
    """Raise unless ``x`` is a tensor (of ``ndim`` dimensions, floating point if asked)."""
    if not isinstance(x, Tensor):
        raise OpError(f"{op}: {name} must be a tensor, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if x.ndim not in allowed:
            want = " or ".join(f"{n}-D" for n in allowed)
            raise OpError(f"{op}: {name} must be {want}, got shape {x.shape}")
    if floating and x.dtype.kind != "f":
        raise OpError(f"{op}: {name} must be floating point (float32 or float64), got {x.dtype}")


def reduction_mode(op: str, reduction: str) -> str:
    """Validate a loss's ``reduction`` argument."""
    if reduction not in ("mean", "sum", "none"):
        raise OpError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def conv_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a sliding window over ``size`` elements (floor mode)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def windows(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], out: tuple[int, int]) -> np.ndarray:
    """A read-only view ``(N, C, Ho, Wo, kH, kW)`` of the sliding windows of padded ``xp``."""
    n, c = xp.shape[:2]
    sn, sc, sh, sw = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp,
        shape=(n, c, out[0], out[1], kernel[0], kernel[1]),
        strides=(sn, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1]),
        writeable=False,
    )


def pad2d(x: np.ndarray, padding: tuple[int, int], value: float = 0.0) -> np.ndarray:
    """``x`` with ``padding`` rows/columns of ``value`` around its last two axes (no copy if 0)."""
    ph, pw = padding
    if not ph and not pw:
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


# --- GEMM epilogues: an activation the linear and conv2d kernels apply as they store results ---

# Each epilogue ``linear`` and ``conv2d`` take as their ``activation`` attribute, as the
# activation op (and its attributes) it stands for: what the graph rewrite in
# graph/rewrite_linear.py folds into a linear or conv2d that only that op reads. gelu's two
# forms are two epilogues, since the kernels compute them with different formulas.
EPILOGUE_OPS: dict[str, tuple[str, dict[str, Any]]] = {
    "relu": ("relu", {}),
    "gelu": ("gelu", {"approximate": "none"}),
    "gelu_tanh": ("gelu", {"approximate": "tanh"}),
    "sigmoid": ("sigmoid", {}),
    "tanh": ("tanh", {}),
}
EPILOGUES = tuple(EPILOGUE_OPS)
# The epilogues whose gradient needs the pre-activation (the rest need only the output).
_NEEDS_INPUT = frozenset({"gelu", "gelu_tanh"})


def check_epilogue(op: str, activation: str | None) -> None:
    """Raise unless ``activation`` is None or one of :data:`EPILOGUES` (an op's shape rule)."""
    if activation is not None and activation not in EPILOGUES:
        raise OpError(f"{op}: unknown activation {activation!r}; expected None or one of {EPILOGUES}")


def epilogue_of(op_name: str, attrs: dict[str, Any]) -> str | None:
    """The epilogue that computes the activation op ``op_name`` with ``attrs``, else None."""
    for name, (act, act_attrs) in EPILOGUE_OPS.items():
        if act == op_name and all(attrs.get(k) == v for k, v in act_attrs.items()):
            return name
    return None


def apply_epilogue(out: np.ndarray, activation: str | None) -> np.ndarray:
    """The reference's epilogue: the activation op's own reference, so the same bits as the
    separate op (relu's in place: ``np.maximum`` into ``out`` gives the same values)."""
    if activation is None:
        return out
    if activation == "relu":
        return relu_into(out, out)
    from tensorcore.ops.registry import OPS

    act, attrs = EPILOGUE_OPS[activation]
    return OPS[act].reference(out, **attrs)


class _ActivationStep:
    """What an activation op's gradient reads of its entry on the tape (``inputs``, ``output``,
    ``attrs``, ``needs_grad``), for that gradient to run on an epilogue's values."""

    def __init__(self, op: Any, x: Tensor | None, y: Tensor, attrs: dict[str, Any]) -> None:
        self.op, self.inputs, self.outputs, self.attrs, self.needs_grad = op, (x,), (y,), attrs, (True,)

    @property
    def output(self) -> Tensor:
        """The activation's output (the op's single output)."""
        return self.outputs[0]


def through_epilogue(ctx: Any, g: Tensor) -> Tensor:
    """The gradient ``g`` of an op's activated output taken back through its epilogue, for the
    op's own gradient to take from there.

    It runs the activation op's own gradient, so the result is the separate ops' gradient on
    every device. relu, sigmoid and tanh read only the activated output (``ctx.output``). gelu
    needs the pre-activation, which is not kept: it is computed again here by the same op
    without its activation (one more GEMM in the backward), from the inputs the tape already
    holds and checks for in-place writes. Keeping it instead would make the fused op write a
    second output as large as the first, the memory the fusion exists to save, for every
    forward, including the inference ones that never take a gradient. Where a gradient is
    traced, the rewrite does not fuse gelu anyway: the pre-activation then has gelu_backward
    as a second reader, and stays a separate ``linear`` result.
    """
    activation = ctx.attrs.get("activation")
    if activation is None:
        return g
    from tensorcore.dispatch import apply
    from tensorcore.ops.registry import OPS

    act, attrs = EPILOGUE_OPS[activation]
    x = None
    if activation in _NEEDS_INPUT:
        x = apply(ctx.op, ctx.inputs, {k: v for k, v in ctx.attrs.items() if k != "activation"})
    (gx,) = OPS[act].grad(_ActivationStep(OPS[act], x, ctx.output, attrs), g)
    return gx


def vjp_through(composite: Callable[..., Any], skip: tuple[int, ...] = ()) -> Callable[..., tuple]:
    """A gradient function for a fused backward op, from the op written with tensorcore ops.

    The composite is run again under a fresh tape and differentiated, so gradients of any
    order work wherever the composite's ops are differentiable. Inputs listed in ``skip``
    get None (their dependence is folded into other inputs by the composite).
    """

    def grad(ctx: Any, *upstream: Tensor) -> tuple:
        from tensorcore.autodiff.tape import GradientTape

        wanted = [
            i for i, (x, need) in enumerate(zip(ctx.inputs, ctx.needs_grad))
            if need and i not in skip and isinstance(x, Tensor) and x.dtype.kind == "f"
        ]
        result: list[Any] = [None] * len(ctx.inputs)
        if not wanted:
            return tuple(result)
        with GradientTape() as tape:
            tape.watch([ctx.inputs[i] for i in wanted])
            outs = composite(*ctx.inputs, **ctx.attrs)
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        grads = tape.gradient(outs, [ctx.inputs[i] for i in wanted], output_gradients=list(upstream))
        for i, g in zip(wanted, grads):
            result[i] = g
        return tuple(result)

    return grad
