"""Eager dispatch: the one path every op takes.

``apply(op, inputs, attrs)`` chooses the device (the innermost ``tc.device`` scope, else the
inputs' device, else the default), moves inputs that live elsewhere (soft placement) or
raises (strict), finds the kernel of that device's backend, runs it, wraps the result and
records it on any recording GradientTape. An op with no kernel on the device runs its
composite form there if it has one, otherwise on ``cpu`` (soft) or raises (strict). Complex
inputs or results count as "no kernel" unless the device's backend declares a complex kernel
for that op (``complex_kernels``: True for all, a set of op names, or False): no float kernel
ever reads complex bytes.

This is eager mode's hot loop: it avoids per-call allocation beyond the result tensor.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from tensorcore import placement, registry
from tensorcore.autodiff import tape as _tape
from tensorcore.device import Device, default_device
from tensorcore.device import _state as _scope_state
from tensorcore.dispatch_checks import (
    check_dtypes,
    check_rule,
    complex_involved,
    describe,
    explain,
    has_complex_kernel,
)
from tensorcore.dtypes import COMPLEX_SET
from tensorcore.errors import (
    CollectiveError,
    KernelBuildError,
    KernelUnsupported,
    OpError,
    OutOfMemoryError,
    PlacementError,
)
from tensorcore.ops.registry import OPS, Op
from tensorcore.tensor import Tensor

_EMPTY: dict[str, Any] = {}
# Graph tracers (tc.function) active now in any thread; like the tape list, empty is the cheap
# common case that the hot path checks. A tracer records only the ops of the thread that
# started it: each thread's innermost one is its ``_trace_state.tracer`` (``current_tracer()``).
tracers: list[Any] = []


class _TraceState(threading.local):
    tracer: Any = None  # this thread's innermost tracer; None outside tracing and inside untraced()


_trace_state = _TraceState()
_new = object.__new__
_recording = _tape.recording  # the list of recording tapes; empty almost always
_ops_per_device = placement.ops_per_device
_pstate = placement.state
_CPU = Device("cpu")
_SCALARS = (int, float, bool, complex)
# Kernel errors that already say what went wrong and where (a build error: source, device, log, line).
_PASS_THROUGH = (OpError, PlacementError, OutOfMemoryError, CollectiveError, KernelBuildError)


def wrap(data: Any, dev: Device) -> Tensor:
    """A new Tensor around backend array ``data`` on ``dev`` (no copy)."""
    t = _new(Tensor)
    t._data = data
    t._device = dev
    t._version = 0
    if tracers:  # a tensor made while tracing (tc.zeros, tc.asarray, ...): a new one in each eager call
        tracer = _trace_state.tracer
        if tracer is not None:
            tracer.made(t)
    return t


def current_tracer() -> Any:
    """The tracer recording this thread's ops (its innermost ``tc.function`` trace), or None when
    this thread traces nothing or is inside :func:`untraced`. Other threads' traces never count."""
    return _trace_state.tracer if tracers else None


def start_tracing(tracer: Any) -> None:
    """Make ``tracer`` record this thread's ops until :func:`stop_tracing` (graph/trace.py)."""
    tracer.outer = _trace_state.tracer
    _trace_state.tracer = tracer
    tracers.append(tracer)


def stop_tracing(tracer: Any) -> None:
    """End ``tracer`` (this thread's innermost): the thread's outer tracer, if any, records again."""
    if _trace_state.tracer is not tracer:
        raise RuntimeError("stop_tracing: the tracer is not this thread's innermost one")
    _trace_state.tracer = tracer.outer
    tracers.remove(tracer)


def apply(op: Op, inputs: tuple, attrs: dict[str, Any] = _EMPTY) -> Any:
    """Run ``op`` eagerly on ``inputs`` (Tensors or Python scalars) with keyword ``attrs``."""
    # Fast path: one or two inputs, no scope, all tensors on one device. Unrolled on
    # purpose: this is the per-op cost of eager mode (see benchmarks/eager.py).
    n = len(inputs)
    if n == 2 and _scope_state.scope is None:
        a, b = inputs
        if isinstance(a, Tensor):
            dev = a._device
            if isinstance(b, Tensor):
                args = (a._data, b._data) if b._device is dev else None
            else:
                args = (a._data, b) if type(b) in _SCALARS else None
        elif isinstance(b, Tensor) and type(a) in _SCALARS:
            dev = b._device
            args = (a, b._data)
        else:
            args = None
    elif n == 1 and _scope_state.scope is None and isinstance(inputs[0], Tensor):
        dev = inputs[0]._device
        args = (inputs[0]._data,)
    elif _scope_state.scope is None:
        dev, args = _same_device_args(inputs)
    else:
        args = None
    if args is None:
        inputs, dev = _place(op, inputs)
        args = tuple(x._data if isinstance(x, Tensor) else x for x in inputs)
    if op.checks_dtypes:
        check_dtypes(op, inputs)
    kernel = op.kernels.get(dev)
    if kernel is None:
        return _without_kernel(op, inputs, attrs, dev, composite=not complex_involved(args, attrs))
    if dev is not _CPU and complex_involved(args, attrs) and not has_complex_kernel(dev, op.name):
        return _without_kernel(op, inputs, attrs, dev, reason="no complex kernels", composite=False)
    try:
        out = kernel(*args, **attrs) if attrs else kernel(*args)
    except KernelUnsupported as exc:
        return _without_kernel(op, inputs, attrs, dev, reason=str(exc))
    except _PASS_THROUGH:
        raise
    except Exception as exc:
        raise explain(op, inputs, attrs, dev, exc) from exc
    try:
        _ops_per_device[dev] += 1
    except KeyError:
        _ops_per_device[dev] = 1
    if _pstate.log_every_op:
        placement.log_op(op.name, dev)
    if op.n_outputs == 1:
        result = _new(Tensor)
        result._data = out
        result._device = dev
        result._version = 0
        if _recording:
            _tape.record(op, inputs, attrs, (result,))
        if tracers and _trace_state.tracer is not None:
            _trace_state.tracer.op(op, inputs, attrs, (result,), dev)
        return result
    results = tuple(wrap(o, dev) for o in out)
    if _recording:
        _tape.record(op, inputs, attrs, results)
    if tracers and _trace_state.tracer is not None:
        _trace_state.tracer.op(op, inputs, attrs, results, dev)
    return results


def apply_on(dev: Device, op: Op, inputs: tuple, attrs: dict[str, Any] = _EMPTY) -> Any:
    """``apply`` with ``dev`` as the device scope (an already resolved device)."""
    outer = _scope_state.scope
    _scope_state.scope = dev
    try:
        return apply(op, inputs, attrs)
    finally:
        _scope_state.scope = outer


def _same_device_args(inputs: tuple) -> tuple[Device | None, tuple | None]:
    """(device, kernel args) when all tensor inputs share a device, else (None, None)."""
    dev = None
    for x in inputs:
        if isinstance(x, Tensor):
            if dev is None:
                dev = x._device
            elif x._device is not dev:
                return None, None
        elif type(x) not in _SCALARS:
            return None, None
    if dev is None:
        return None, None
    return dev, tuple(x._data if isinstance(x, Tensor) else x for x in inputs)


def _place(op: Op, inputs: tuple) -> tuple[tuple, Device]:
    """The general placement rule: scope, else the inputs' device, else the default."""
    dev = _scope_state.scope
    try:
        inputs = tuple(_as_input(x) for x in inputs)
    except OpError as exc:
        given = ", ".join(describe(x) for x in inputs)
        raise OpError(f"{op.name}: inputs ({given}) must be tensors or Python scalars; {exc}") from None
    devices = [x._device for x in inputs if isinstance(x, Tensor)]
    if not devices and inputs:
        from tensorcore.ops.creation import asarray  # e.g. tc.add(1, 2): make the first a tensor

        inputs = (asarray(inputs[0], device=dev),) + tuple(inputs[1:])
        devices = [inputs[0]._device]
    if dev is None:
        # Inputs on several devices: an accelerator wins over cpu, else the first input's.
        dev = next((d for d in devices if d.type != "cpu"), devices[0]) if devices else default_device()
    if any(d is not dev for d in devices):
        inputs = _gather(op, inputs, dev)
    return inputs, dev


def _as_input(x: Any) -> Any:
    """Tensors and Python scalars pass; a NumPy scalar is read as a Python scalar (weakly
    typed, as in PyTorch); anything else becomes a tensor."""
    if isinstance(x, Tensor) or type(x) in _SCALARS:
        return x
    if isinstance(x, np.generic):
        return x.item()
    from tensorcore.ops.creation import asarray

    return asarray(x)


def apply_inplace(op: Op, target: Tensor, inputs: tuple, attrs: dict[str, Any] = _EMPTY) -> None:
    """Run an in-place op: its kernel writes into ``target``'s buffer (and may update tensor
    inputs that hold state, such as optimizer moments). Not recorded on tapes.

    The kernel must validate before it writes, so a failed op leaves every buffer unchanged.
    Without a kernel on the device, the op runs on ``cpu`` (soft) and the results are copied
    back into the same tensors; under strict placement it raises.
    """
    if tracers and _trace_state.tracer is not None:  # recorded only: the graph applies it when it runs
        _trace_state.tracer.inplace(op, target, inputs, attrs)  # (see graph/trace.py)
        # Counted as eager mode counts it, so a tape that recorded the target before sees the
        # write and refuses a gradient through it while tracing too (it ran silently, on the
        # written value). The graph's run counts its writes again; only equality is ever read.
        _bump_version(target)
        return
    dev = target._device
    if any(isinstance(x, Tensor) and x._device is not dev for x in inputs):
        inputs = _gather(op, inputs, dev)
    kernel = op.kernels.get(dev)
    try:
        fallback_reason = "" if kernel is None else None
        args = [x._data if isinstance(x, Tensor) else x for x in inputs]
        if kernel is not None and dev is not _CPU and (target._data.dtype in COMPLEX_SET or complex_involved(
                args, attrs)) and not has_complex_kernel(dev, op.name):
            kernel, fallback_reason = None, "no complex kernels"
        if kernel is not None:
            try:
                kernel(target._data, *args, **attrs)
                _count(dev)
            except KernelUnsupported as unsupported:
                fallback_reason = str(unsupported)
        if fallback_reason is not None:
            _inplace_on_cpu(op, target, inputs, attrs, dev, fallback_reason)
    except _PASS_THROUGH:
        raise
    except Exception as exc:
        raise explain(op, (target, *inputs), attrs, dev, exc) from exc
    _bump_version(target)


def _inplace_on_cpu(op: Op, target: Tensor, inputs: tuple, attrs: dict[str, Any], dev: Device, reason: str = "") -> None:
    """Soft fallback of an in-place op: run on host copies, then write back what it writes.

    Only the target and the inputs the op declares in ``mutates`` are written back: an input
    that is only read may be a view of the target, and its stale copy must not undo the update.
    """
    placement.kernel_missing(op.name, dev, op.backends(), reason)
    backend = registry.get_backend(dev.type)
    tensors = [target] + [x for x in inputs if isinstance(x, Tensor)]
    host = {id(t): backend.to_numpy(t._data).copy() for t in tensors}
    args = [host[id(x)] if isinstance(x, Tensor) else x for x in inputs]
    op.reference(host[id(target)], *args, **attrs)
    written = [target] + [inputs[i] for i in op.mutates if isinstance(inputs[i], Tensor)]
    assign = OPS["assign"].kernels.get(dev)
    for t in written:
        fresh = backend.from_numpy(host[id(t)], dev.index)
        # Into the same buffer, so views of it see the write. A complex tensor off cpu has no
        # views (every op on it runs on cpu and copies its result back): a new buffer will do.
        if assign is not None and (dev is _CPU or host[id(t)].dtype.kind != "c"):
            assign(t._data, fresh)
        else:
            t._data = fresh
        placement.bytes_copied[0] += 2 * host[id(t)].nbytes
        if t is not target:
            _bump_version(t)
    _count(_CPU)


def _count(dev: Device) -> None:
    _ops_per_device[dev] = _ops_per_device.get(dev, 0) + 1


def _bump_version(t: Tensor) -> None:
    t._version += 1


def transfer(x: Tensor, dev: Device) -> Tensor:
    """Copy ``x`` to ``dev`` through the host; differentiable; counted in placement stats."""
    if x._device is dev:
        return x
    src = registry.get_backend(x._device.type)
    dst = registry.get_backend(dev.type)
    host = src.to_numpy(x._data)
    placement.bytes_copied[0] += host.nbytes
    out = wrap(dst.from_numpy(host, dev.index), dev)
    if _recording:
        _tape.record(TRANSFER, (x,), {"device": dev}, (out,))
    if tracers and _trace_state.tracer is not None:
        _trace_state.tracer.transfer(x, out, dev)
    return out


def _transfer_grad(ctx: Any, g: Tensor) -> tuple[Tensor]:
    return (transfer(g, ctx.inputs[0]._device),)


# Cross-device copies are recorded on tapes like any op, so gradients flow back across them.
TRANSFER = Op("transfer", lambda x, device: x, grad=_transfer_grad, doc="Copy between devices.", complex_grad=True)


@contextmanager
def untraced() -> Iterator[None]:
    """Run ops now, even while a function is being traced, and keep them off tapes.

    For bookkeeping whose result must persist across runs of a graph, such as moving an
    optimizer's state to its parameter's new device: traced, the move would run on every call
    and copy from the stale original each time. Only this thread's tracing and tapes pause.
    """
    with _tracing_paused(), _tape.paused():
        yield


@contextmanager
def _tracing_paused() -> Iterator[None]:
    """This thread's tracers stop recording inside the block (tapes keep recording)."""
    outer = _trace_state.tracer
    _trace_state.tracer = None
    try:
        yield
    finally:
        _trace_state.tracer = outer


def _gather(op: Op, inputs: tuple, dev: Device) -> tuple:
    """Soft placement: copy inputs that live off ``dev`` onto it (strict: raise)."""
    devices = [x._device for x in inputs if isinstance(x, Tensor)]
    placement.cross_device(op.name, list(dict.fromkeys(devices)), dev, scoped=_scope_state.scope is dev)
    tracer = current_tracer()
    if tracer is None:
        return tuple(transfer(x, dev) if isinstance(x, Tensor) else x for x in inputs)
    # While tracing, the op's node reads the tensors where they are: the graph's placer
    # inserts the copies, so they are not traced here.
    with _tracing_paused():
        moved = tuple(transfer(x, dev) if isinstance(x, Tensor) else x for x in inputs)
    for x, m in zip(inputs, moved):
        if m is not x:
            tracer.alias(m, x)
    return moved


def _without_kernel(op: Op, inputs: tuple, attrs: dict[str, Any], dev: Device, reason: str = "",
                    composite: bool = True) -> Any:
    """No (usable) kernel on ``dev``: run the composite form there, else fall back to cpu (soft),
    once the op's rule has accepted the inputs (a kernel also declines a 0-d matmul).
    ``composite=False`` goes straight to cpu: a composite form is written for real numbers."""
    if composite and op.composite is not None:
        return op.composite(*inputs, **attrs)
    check_rule(op, inputs, attrs)
    tracer = current_tracer()
    if tracer is None:  # while tracing, the graph's placer applies the policy to this node
        placement.kernel_missing(op.name, dev, op.backends(), reason)
    # The copies and the cpu op are neither traced nor taped: the one node and the one tape
    # record below stand for them, on the inputs the user gave.
    with untraced():
        out = apply_on(_CPU, op, tuple(transfer(x, _CPU) if isinstance(x, Tensor) else x for x in inputs), attrs)
        outs = out if isinstance(out, tuple) else (out,)
        outs = tuple(transfer(o, dev) for o in outs)
    if _recording:
        _tape.record(op, inputs, attrs, outs)
    if tracer is not None:
        tracer.op(op, inputs, attrs, outs, dev, fallback=reason or f"no kernel on {dev}")
    return outs if isinstance(out, tuple) else outs[0]
