"""The optimizer base: parameters fixed at construction, ``step(grads)`` in their order.

The learning rate lives on the devices, not in the kernels' attributes: each device that
holds a parameter has one 0-d *lr tensor* (float64; float32 where the device has no
float64) that the update kernels read on every launch. ``opt.lr = x`` writes it in place, so
a graph traced before the assignment (``tc.function``) uses the new value, and a schedule
needs no retrace. The host keeps a copy of the last value set: reading ``opt.lr`` never
waits for a device, and a value written again is not written to the devices again.

Steps are counted on the devices too, in a 0-d *step counter* per device (and replica) that
the first update on that device advances inside its own kernel (no launch of its own). A
traced step therefore counts every time its graph runs; ``opt.iterations`` reads the count,
and a callable learning rate ``lr(step)`` is evaluated from it, on the device.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from tensorcore import dispatch, placement
from tensorcore.autodiff.variable import Variable, refuse_in_run, refuse_shared_writes
from tensorcore.device import Device
from tensorcore.errors import DeviceError, OpError, PlacementError
from tensorcore.ops.creation import from_host
from tensorcore.ops.logic import astype
from tensorcore.ops.optim_updates import ASSIGN
from tensorcore.optim import _lr
from tensorcore.optim._lr import state_dtype
from tensorcore.tensor import Tensor


class Optimizer:
    """Updates a fixed list of trainable Variables in place from gradients given in the same
    order (what ``tape.gradient(loss, params)`` returns).

    Per-parameter state (momentum, moments, step count) lives in ``self.state[i]`` on the
    parameter's device, and follows the parameter if the model moves (``Module.to_device``).

    ``lr`` is a number (``opt.lr = x`` changes it, eagerly and for traced steps alike) or a
    callable ``lr(step)``: it is called at every step with the step counter, a 0-d float
    tensor holding the number of steps taken before this one (0 at the first step), on the
    device of the parameters it is for, and must compute with tensor operations (``tc.cos``,
    ``tc.minimum``, ``*``, ``//``...), since inside a traced step it runs in the graph. One that
    reads a value (``float(step)``, ``min(1, step / 10)``, ``math.cos(step)``) is refused with
    a ``TypeError`` at its first step.

    Over mirrored variables (``tensorcore.distribute``), each replica has its own state, and
    ``step`` (inside ``strategy.run``) first all-reduces the gradients across the replicas.
    """

    # State tensors of a fixed shape of their own, not elementwise with the parameter (Adam's
    # schedule): the strict-placement check keeps their shape on its scratch tensors.
    _fixed_shape_state: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Variable], lr: float | Callable[[Tensor], Any]) -> None:
        self.params = list(params)
        name = type(self).__name__
        if not self.params:
            raise ValueError(f"{name} got no parameters to optimize")
        for i, p in enumerate(self.params):
            if not isinstance(p, Variable):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a tc.Variable")
        self._lr_fn: Callable[[Tensor], Any] | None = lr if _lr.is_callable_lr(lr) else None
        self._lr_value: float | None = None if self._lr_fn is not None else _lr.check_rate(name, lr, positive=True)
        self._lr_tensors: dict[Device, Tensor] = {}  # one per device, shared by replicas (only read)
        self._lr_checked = False  # whether the callable passed its first, checked evaluation
        self._traced = False  # whether a traced step captured this optimizer
        self._host_iterations: int | None = 0  # the step count while only eager steps counted
        # DeviceError.raised when the host copies of the lr and of the count were last written or
        # read: a device error since means in-place writes to the devices may have been skipped.
        self._lr_errors = self._count_errors = DeviceError.raised
        self._now = threading.local()  # this thread's inputs of the update in progress (see _apply)
        self._lock = threading.Lock()
        self._kernels_checked: set[tuple] = set()  # update signatures whose kernels took part (strict)
        # The strategy that mirrors the parameters (duck-typed: optim sits below distribute).
        self._strategy = _strategy_of(self.params)
        if self._strategy is None:
            self._replica_states = [[self._init_state(p) for p in self.params]]
            self._replica_steps = [self._new_counters()]
        else:
            made = self._strategy.for_each_replica(lambda: ([self._init_state(p) for p in self.params],
                                                            self._new_counters()))
            self._replica_states = [states for states, _ in made]
            self._replica_steps = [steps for _, steps in made]
            self._strategy._track_optimizer(self)

    # --- the learning rate and the step count ---------------------------------------------
    @property
    def lr(self) -> float | Callable[[Tensor], Any]:
        """The learning rate: the last number set (a host copy; reading it never waits for a
        device), or the callable ``lr(step)`` given."""
        return self._lr_fn if self._lr_fn is not None else self._lr_value

    @lr.setter
    def lr(self, value: float | Callable[[Tensor], Any]) -> None:
        name = type(self).__name__
        if self._strategy is not None:  # every replica would set it, between other replicas' updates
            refuse_in_run(f"setting {name}.lr (or stepping its scheduler)",
                          "set the learning rate or step the scheduler outside strategy.run, between steps")
        if _lr.is_callable_lr(value):
            if self._lr_fn is None and self._traced:
                raise _lr.mode_change_error(name, "a callable", "a number")
            self._lr_fn, self._lr_value, self._lr_checked = value, None, False
            return
        rate = _lr.check_rate(name, value)
        if self._lr_fn is not None and self._traced:
            raise _lr.mode_change_error(name, "a number", "a callable")
        tracing = dispatch.current_tracer() is not None
        if self._lr_fn is None and rate == self._lr_value and not tracing and self._lr_errors == DeviceError.raised:
            return  # unchanged: nothing to write
        self._lr_fn, self._lr_value, self._lr_errors = None, rate, DeviceError.raised
        for steps in self._replica_steps:  # lr tensors for every device (none while lr was a callable)
            for dev in steps:
                self._lr_tensor(dev)
        for t in list(self._lr_tensors.values()):
            # In place (a fill, no upload): graphs that captured the tensor read the new value.
            dispatch.apply_inplace(ASSIGN, t, (rate,))

    @property
    def iterations(self) -> int:
        """The number of steps taken (of the first replica, under ``tensorcore.distribute``),
        each run of a traced step included. Counted on the device: once a traced step has run,
        reading it waits for the device (eager steps alone keep a host copy)."""
        if self._host_iterations is not None and self._count_errors == DeviceError.raised:
            return self._host_iterations
        count = int(self._primary_counter().item())
        if self._host_iterations is not None:  # a device error skipped steps, maybe: the device's count
            self._host_iterations, self._count_errors = count, DeviceError.raised
        return count

    def _primary_counter(self) -> Tensor:
        steps = self._replica_steps[0]
        counter = steps.get(self.params[0].device)
        return counter if counter is not None else next(iter(steps.values()))

    def _new_counters(self) -> dict[Device, Tensor]:
        """This replica's step counters (one per device holding a parameter); the lr tensors."""
        devices = dict.fromkeys(p.device for p in self.params)
        if self._lr_fn is None:
            for dev in devices:
                self._lr_tensor(dev)
        return {dev: _device_scalar(0.0, dev) for dev in devices}

    def _lr_tensor(self, dev: Device) -> Tensor:
        """The lr tensor of ``dev``, made (untraced) on first use."""
        t = self._lr_tensors.get(dev)
        if t is None:
            with self._lock:  # replicas run in threads: one tensor per device, whoever comes first
                t = self._lr_tensors.get(dev)
                if t is None:
                    t = self._lr_tensors[dev] = _device_scalar(self._lr_value, dev)
        return t

    def _steps(self) -> dict[Device, Tensor]:
        """The step counters of the replica running in this thread."""
        if self._strategy is None:
            return self._replica_steps[0]
        return self._replica_steps[self._strategy.local_index()]

    def _add_device(self, steps: dict[Device, Tensor], dev: Device) -> None:
        """A parameter moved to ``dev``: its counter starts from the replica's count (copied
        once, untraced, like ``_follow``), and counters of devices left without a parameter go."""
        with dispatch.untraced():
            source = next(iter(steps.values()), None)
            if source is None:
                steps[dev] = _device_scalar(float(self._host_iterations or 0), dev)
            else:
                moved = source.to_device(dev)
                steps[dev] = moved if moved.dtype == state_dtype(dev) else astype(moved, state_dtype(dev))
        live = {p.device for p in self.params}
        for gone in [d for d in steps if d not in live]:
            del steps[gone]

    # --- the step ---------------------------------------------------------------------
    @property
    def state(self) -> list[dict[str, Any]]:
        """Per-parameter state of the replica running in this thread (the only one without a strategy)."""
        if self._strategy is None:
            return self._replica_states[0]
        return self._replica_states[self._strategy.local_index()]

    def step(self, grads: Sequence[Any]) -> None:
        """Apply one update; ``grads[i]`` is the gradient of ``params[i]``: a tensor, a NumPy
        array (uploaded to the parameter's device), or None to leave that parameter alone.

        What can be known before the first write is checked first, so a step that raises then
        changes no parameter, state, learning rate tensor or step counter: each gradient's type,
        shape and dtype; under strict placement its device (a gradient on another device is an
        error, as for any op) and whether the update kernels of the parameter's device take
        these dtypes. A failure on the device itself (out of memory) can still stop a step part-way.
        """
        name = type(self).__name__
        if len(grads) != len(self.params):
            raise ValueError(f"{name}.step got {len(grads)} gradients for {len(self.params)} parameters")
        grads = _checked_gradients(name, self.params, grads)
        strategy = self._strategy
        if strategy is None:
            refuse_shared_writes(f"{name}.step", self.params)
        if dispatch.tracers and dispatch.current_tracer() is not None:  # only the device knows the count now
            self._traced, self._host_iterations = True, None
        if strategy is not None:
            grads = strategy.reduce_gradients(grads, self.params)
        self._now.writing = False
        try:
            if strategy is None:
                self._apply(grads)
            else:
                with strategy.applying_update():  # a replica failing in here is repaired by run
                    self._apply(grads)
        except BaseException:
            if self._now.writing:
                self._host_iterations = None  # some counters may have advanced: ask the device
            raise
        if self._host_iterations is not None and (strategy is None or strategy.local_index() == 0):
            self._host_iterations += 1

    def _apply(self, grads: Sequence[Any]) -> None:
        states, steps, now = self.state, self._steps(), self._now
        lrs = self._lr_tensors if self._lr_fn is None else self._evaluate_lr(grads, steps)
        # Every update's inputs first (bookkeeping that changes no value: state following a moved
        # parameter, counters and lr tensors of a new device), then the checks, then the writes.
        updates: list[tuple] = []
        counted: set[Device] = set()
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if g is None:
                continue
            state, dev = states[i], p.device
            if dev not in steps:
                self._add_device(steps, dev)
            if any(isinstance(v, Tensor) and v.device is not dev for v in state.values()):
                self._follow(p, state)  # the parameter moved since the last step
            lr = lrs.get(dev)
            # The first update on each device counts the step, inside its own kernel.
            step = None if dev in counted or 0 in p._data.shape else steps[dev]  # (Tensor.size is slow)
            if step is not None:
                counted.add(dev)
            updates.append((i, p, g if g.device is dev else g.to_device(dev), state,
                            lr if lr is not None else self._lr_tensor(dev), step))
        if placement.state.strict:  # also while tracing: the graph's run would stop part-way too
            for update in updates:
                self._check_kernels(*update)
        now.writing = True
        for _, p, g, state, lr, step in updates:
            now.lr, now.step = lr, step
            self._update(p, g, state)
        if len(counted) < len(steps):  # a device none of whose parameters was updated: count apart
            for dev, counter in steps.items():
                if dev not in counted:  # add and assign: kernels every backend has (no assign_add on cuda)
                    dispatch.apply_inplace(ASSIGN, counter, (counter + 1.0,))

    def _check_kernels(self, i: int, param: Variable, grad: Tensor, state: dict[str, Any], lr: Tensor,
                       step: Tensor | None) -> None:
        """Under strict placement: raise now, before any parameter is written, if a kernel of this
        update would decline its inputs on the parameter's device (a dtype it lacks), which
        strict placement makes an error. A kernel says so only when called, so the update runs
        once on scratch tensors of the same dtypes and devices (one element each, the lr tensor
        read as it is); once per signature, so later steps pay a set lookup."""
        dev = param.device
        if dev.type == "cpu":
            return  # the cpu kernels are the ops' references: they take every input the ops take
        key = (dev, param.dtype, param.ndim, grad.dtype, lr.dtype, step is None,
               tuple((k, v.dtype, v.device, v.shape == param.shape) for k, v in state.items() if isinstance(v, Tensor)))
        if key in self._kernels_checked:
            return
        small = (1,) * param.ndim

        def scratch(t: Tensor, key: str = "") -> Tensor:
            # Shrunk where it goes elementwise with the parameter; a state of its own fixed shape
            # (Adam's 4-element schedule) keeps it, even where the parameter's shape is the same.
            shape = small if t.shape == param.shape and key not in self._fixed_shape_state else t.shape
            return from_host(np.zeros(shape, t.dtype), t.device)

        now = self._now
        now.lr, now.step = lr, None if step is None else scratch(step)
        try:
            with dispatch.untraced():
                self._update(scratch(param), scratch(grad),
                             {k: scratch(v, k) if isinstance(v, Tensor) else v for k, v in state.items()})
        except PlacementError as exc:
            raise PlacementError(
                f"{type(self).__name__}.step: parameter {i} ({param.name!r}, {param.dtype}{list(param.shape)} on {dev}) "
                f"cannot be updated on its device, so this step updated nothing: {exc}") from None
        self._kernels_checked.add(key)

    def _evaluate_lr(self, grads: Sequence[Any], steps: dict[Device, Tensor]) -> dict[Device, Tensor]:
        """The callable's learning rate on each device this step updates, all evaluated before
        any update, so a callable that fails changes nothing."""
        out: dict[Device, Tensor] = {}
        for p, g in zip(self.params, grads):
            dev = p.device
            if g is None or dev in out:
                continue
            if dev not in steps:
                self._add_device(steps, dev)
            out[dev] = _lr.evaluate(type(self).__name__, self._lr_fn, steps[dev], check=not self._lr_checked)
        self._lr_checked = True
        return out

    def _follow(self, param: Variable, state: dict[str, Any]) -> None:
        """Move ``param``'s state to its device, untraced: traced, the move would run on every
        call of the graph and copy the stale state from the old device each time."""
        with dispatch.untraced():
            for key, value in state.items():
                if isinstance(value, Tensor) and value.device is not param.device:
                    state[key] = value.to_device(param.device)
            self._adapt_state(param, state)

    # --- what subclasses provide ----------------------------------------------------------
    def _init_state(self, param: Variable) -> dict[str, Any]:
        """The state a parameter starts with (subclasses override)."""
        return {}

    def _adapt_state(self, param: Variable, state: dict[str, Any]) -> None:
        """Adjust state that has just followed its parameter to a new device (subclasses
        override; runs untraced, see ``_follow``)."""

    def _update(self, param: Variable, grad: Any, state: dict[str, Any]) -> None:
        """Update ``param`` in place; the learning rate tensor and the step counter to advance
        (or None) are ``self._now.lr`` and ``self._now.step`` (set per update by ``_apply``)."""
        raise NotImplementedError

    def _hyperparameters(self) -> dict[str, Any]:
        """The settings a state dict must agree with, as JSON values (subclasses override)."""
        return {}

    # --- saving and restoring -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A snapshot of everything an exactly resumed run needs, as one flat dict: tensors
        (copies of the per-parameter state, ``"state.{i}.{name}"``) and JSON values (``type``,
        ``lr``, ``lr_callable``, ``iterations``, the parameters' shapes and dtypes, the
        hyperparameters). Under ``tensorcore.distribute``, the first replica's state."""
        from tensorcore.optim import _state

        return _state.state_dict(self)

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Restore what :meth:`state_dict` returned (tensors as ``tc.Tensor`` or NumPy arrays),
        writing into the existing state tensors in place, on each parameter's device (every
        replica's, under ``tensorcore.distribute``). Everything is checked first: a ``ValueError``
        names every problem, and then nothing has changed. ``strict=False`` tolerates missing
        and unexpected keys (what is missing keeps its value)."""
        from tensorcore.optim import _state

        _state.load_state_dict(self, state, strict)

    def state_dict_problems(self, state: dict[str, Any], strict: bool = True) -> list[str]:
        """Every reason ``load_state_dict(state, strict)`` would refuse ``state`` (empty: it loads)."""
        from tensorcore.optim import _state

        return _state.problems(self, state, strict)


def _checked_gradients(name: str, params: list[Variable], grads: Sequence[Any]) -> Sequence[Any]:
    """``grads`` once every one has passed its checks (type, shape, dtype; device under strict
    placement), with NumPy arrays then uploaded to their parameter's device: a bad gradient
    raises before anything changes, and before any upload."""
    host: list[int] = []
    for i, (p, g) in enumerate(zip(params, grads)):
        if g is None:
            continue
        if isinstance(g, (np.ndarray, np.generic)):
            host.append(i)
        elif not isinstance(g, Tensor):
            raise TypeError(f"{name}.step: gradient {i} (of parameter {p.name!r}) is a {type(g).__name__}; pass a "
                            "tc.Tensor, a NumPy array, or None to leave that parameter as it is")
        if tuple(g.shape) != p.shape or g.dtype != p.dtype:
            raise OpError(f"{name}.step: gradient {i} is {g.dtype}{list(g.shape)} but parameter {p.name!r} is "
                          f"{p.dtype}{list(p.shape)}")
        if placement.state.strict and isinstance(g, Tensor) and g.device is not p.device:
            raise PlacementError(
                f"{name}.step: gradient {i} is on {g.device} but parameter {p.name!r} is on {p.device}; move it with "
                f".to_device('{p.device}') first, or use TENSORCORE_PLACEMENT=soft to copy it implicitly")
    if not host:
        return grads
    out = list(grads)
    for i in host:  # host data has no device: it goes where its parameter is (any policy)
        out[i] = from_host(np.asarray(grads[i]), params[i].device)
    return out


def _device_scalar(value: float | None, dev: Device) -> Tensor:
    """A 0-d tensor of the device's state dtype (made untraced: it outlives any graph)."""
    with dispatch.untraced():
        return from_host(np.asarray(value, state_dtype(dev)), dev)


def _strategy_of(params: list[Variable]) -> Any:
    """The distribute strategy mirroring every parameter, or None; mixing is an error."""
    strategies = {id(s): s for s in (getattr(p, "strategy", None) for p in params)}
    if len(strategies) > 1:
        raise ValueError("an optimizer's parameters must all be mirrored by one strategy, or none of them: "
                         "create the model and the optimizer in the same strategy.scope()")
    return next(iter(strategies.values()))
