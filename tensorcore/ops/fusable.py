"""Elementwise ops that the graph may fuse, and the description of a fused chain.

Each fusable op is listed once, with its scalar expression in C (the same text serves the
OpenCL and CUDA templates, ``kernels/opencl/fused.cl`` and ``kernels/cuda/fused.cu``, whose
helpers live in ``kernels/fused_ops.h``) and a NumPy form that writes into a given output.
Both compute exactly what the op's reference computes, for floating-point inputs of one dtype.

A :class:`FusedProgram` is what a backend's ``fuse`` compiles into one kernel: steps over the
external inputs, earlier steps' results and scalars, all of one float dtype and shape, and
optionally a reduction of the last step's result (``sum`` or ``mean`` over trailing axes:
the chain's values are summed as they are made, never written out).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tensorcore.ops._axes import reduced_shape
from tensorcore.ops._nn import relu_into


@dataclass(frozen=True)
class Fusable:
    """How an elementwise op is computed inside a fused kernel."""

    arity: int
    c: str  # C expression of the operands {0}, {1}
    # numpy(out, *operands) writes the result into ``out`` and returns it; ``out`` may be one of
    # the operands (memory planning reuses a dead input), so no operand is read after ``out`` is written.
    numpy: Callable[..., Any]


def _relu(out: np.ndarray, x: Any) -> Any:
    return relu_into(x, out)


def _relu_backward(out: np.ndarray, g: Any, y: Any) -> Any:
    return np.multiply(g, y > 0, out=out)  # as the reference: (y > 0) * g, so NaN and inf in g give NaN


def _sigmoid(out: np.ndarray, x: Any) -> Any:
    z = np.exp(-np.abs(x))  # as the reference: from exp(-|x|), which never overflows
    np.divide(np.where(np.asarray(x) >= 0, 1.0, z), 1.0 + z, out=out)
    return out


def _sigmoid_backward(out: np.ndarray, g: Any, y: Any) -> Any:
    t = np.subtract(1.0, y)
    t *= y
    return np.multiply(t, g, out=out)


def _ufunc(f: Any) -> Callable[..., Any]:
    return lambda out, *xs: f(*xs, out=out)


def _math(name: str) -> Fusable:
    return Fusable(1, f"{name}({{0}})", _ufunc(getattr(np, name)))


FUSABLE: dict[str, Fusable] = {
    "add": Fusable(2, "({0} + {1})", _ufunc(np.add)),
    "subtract": Fusable(2, "({0} - {1})", _ufunc(np.subtract)),
    "multiply": Fusable(2, "({0} * {1})", _ufunc(np.multiply)),
    "divide": Fusable(2, "({0} / {1})", _ufunc(np.divide)),
    "maximum": Fusable(2, "f_maximum({0}, {1})", _ufunc(np.maximum)),
    "minimum": Fusable(2, "f_minimum({0}, {1})", _ufunc(np.minimum)),
    "negative": Fusable(1, "(-{0})", _ufunc(np.negative)),
    "square": Fusable(1, "({0} * {0})", _ufunc(np.square)),
    "abs": Fusable(1, "fabs({0})", _ufunc(np.abs)),
    **{name: _math(name) for name in ("exp", "log", "sqrt", "tanh", "sin", "cos", "expm1", "log1p")},
    "relu": Fusable(1, "f_relu({0})", _relu),
    "relu_backward": Fusable(2, "f_relu_backward({0}, {1})", _relu_backward),
    "sigmoid": Fusable(1, "f_sigmoid({0})", _sigmoid),
    "sigmoid_backward": Fusable(2, "f_sigmoid_backward({0}, {1})", _sigmoid_backward),
}

FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# An operand of a step: ("in", k) the k-th input tensor, ("step", j) step j's result,
# ("scalar", m) the m-th scalar.
Operand = tuple[str, int]


@dataclass(frozen=True)
class FusedProgram:
    """A chain (or tree) of fusable ops over ``n_inputs`` tensors, computed per element."""

    steps: tuple[tuple[str, tuple[Operand, ...]], ...]  # (op name, operands); the last is the result
    n_inputs: int
    scalars: tuple[float, ...]
    dtype: np.dtype
    shape: tuple[int, ...]  # of the steps' results (the inputs broadcast to it)
    # ``sum`` or ``mean`` of the last step's result over trailing ``axes`` (the op's attributes:
    # ``axis``, ``keepdims``), or None: the result is the last step's, of ``shape``
    reduction: tuple[str, tuple[int, ...], bool] | None = None

    @property
    def out_shape(self) -> tuple[int, ...]:
        """The shape of the program's result."""
        if self.reduction is None:
            return self.shape
        _, axes, keepdims = self.reduction
        return reduced_shape(self.shape, axes, keepdims)

    def c_statements(self) -> list[str]:
        """One C statement per step, ``FT t<j> = <expression>;``, over ``x<k>`` (inputs) and
        ``k<m>`` (scalars): the body both the OpenCL and the CUDA template wrap in a loop."""
        names = {"in": "x", "step": "t", "scalar": "k"}
        lines = []
        for j, (op, operands) in enumerate(self.steps):
            expr = FUSABLE[op].c.format(*(f"{names[kind]}{i}" for kind, i in operands))
            lines.append(f"FT t{j} = {expr};")
        return lines

    def describe(self) -> str:
        """The ops fused, in order: ``multiply+add+exp`` (``+sum`` for a reduction)."""
        return "+".join([op for op, _ in self.steps] + ([self.reduction[0]] if self.reduction else []))


def run_numpy(program: FusedProgram, inputs: list[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
    """Evaluate ``program`` with NumPy (the cpu backend's fused kernel, and the reference of the
    others). Intermediate results share the output buffer where no later step still needs it.
    A reduction runs the op's own reference on the chain's result: the unfused graph's bits."""
    if program.reduction is not None:
        from tensorcore.ops.registry import OPS

        name, axes, keepdims = program.reduction
        values = run_numpy(replace(program, reduction=None), inputs)
        attrs: dict[str, Any] = {"axis": axes, "keepdims": keepdims}
        if name == "sum":
            attrs["dtype"] = None
        result = np.asarray(OPS[name].reference(values, **attrs))
        if out is None:
            return result
        np.copyto(out, result)
        return out
    if out is None:
        out = np.empty(program.shape, program.dtype)
    last = len(program.steps) - 1
    uses = [0] * len(program.steps)
    for _, operands in program.steps:
        for kind, i in operands:
            if kind == "step":
                uses[i] += 1
    donated = any(x is out for x in inputs)  # then ``out`` holds an input until the last step
    results: list[Any] = []
    holder = None  # the step whose result sits in ``out`` now
    for j, (op, operands) in enumerate(program.steps):
        vals = [inputs[i] if kind == "in" else results[i] if kind == "step" else program.scalars[i] for kind, i in operands]
        frees_out = holder is not None and any(kind == "step" and i == holder for kind, i in operands) and uses[holder] == 1
        if j == last or (not donated and (holder is None or frees_out)):
            target, holder = out, j
        else:
            target = np.empty(program.shape, program.dtype)
        results.append(FUSABLE[op].numpy(target, *vals))
    return out
