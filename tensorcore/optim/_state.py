"""Optimizer state dicts: what ``Optimizer.state_dict`` returns and ``load_state_dict`` takes.

One flat dict. Tensors: ``"state.{i}.{name}"``, parameter ``i``'s state (``velocity``;
``m``, ``v``, ``schedule``). JSON values: ``type`` (the optimizer's class name), ``lr`` (the
number, or None for a callable), ``lr_callable``, ``iterations`` (the step counters' value),
``param_shapes``, ``param_dtypes`` and the hyperparameters (``momentum``, ``nesterov``,
``weight_decay``; ``betas``, ``eps``). A callable learning rate is not saved (code never is):
the optimizer that loads the state must be created with the same callable, which then goes on
from the restored step count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tensorcore import dispatch
from tensorcore.autodiff.variable import refuse_in_run
from tensorcore.ops.creation import asarray, from_host
from tensorcore.ops.logic import astype
from tensorcore.ops.optim_updates import ASSIGN
from tensorcore.optim import _lr
from tensorcore.tensor import Tensor

_FLOAT_STATE = {"schedule"}  # state whose dtype follows the device (float64, or float32 without it)


def state_dict(opt: Any) -> dict[str, Any]:
    """The flat state dict of ``opt`` (see the module's docstring); tensors are copies."""
    out: dict[str, Any] = _settings(opt)
    out["lr"] = None if opt._lr_fn is not None else opt._lr_value
    out["iterations"] = opt.iterations
    with dispatch.untraced():  # a snapshot: later steps must not change what was returned
        for i, state in enumerate(opt._replica_states[0]):
            for key, value in state.items():
                if isinstance(value, Tensor):
                    out[f"state.{i}.{key}"] = asarray(value, copy=True)
    return out


def _settings(opt: Any) -> dict[str, Any]:
    """The JSON entries a loaded state must agree with."""
    return {"type": type(opt).__name__, "lr_callable": opt._lr_fn is not None,
            "param_shapes": [list(p.shape) for p in opt.params], "param_dtypes": [str(p.dtype) for p in opt.params],
            **opt._hyperparameters()}


def _tensor_templates(opt: Any) -> dict[str, Tensor]:
    return {f"state.{i}.{key}": value for i, state in enumerate(opt._replica_states[0])
            for key, value in state.items() if isinstance(value, Tensor)}


def _spec(value: Any) -> tuple[tuple[int, ...], np.dtype] | None:
    if isinstance(value, Tensor):
        return tuple(value.shape), value.dtype
    if isinstance(value, (np.ndarray, np.generic)):
        return tuple(np.shape(value)), np.asarray(value).dtype
    return None


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values, tuples read as lists (as a JSON round trip gives them)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):  # True == 1 in Python, not here
        return type(a) is type(b) and a == b
    return a == b


def problems(opt: Any, state: Mapping[str, Any], strict: bool = True) -> list[str]:
    """Everything wrong with ``state`` for ``opt``, each named (empty: it loads)."""
    if not isinstance(state, Mapping):
        return [f"the state must be the dict that state_dict() returns, got {type(state).__name__}"]
    out: list[str] = []
    settings, templates = _settings(opt), _tensor_templates(opt)
    expected = [*settings, "lr", "iterations", *templates]
    if strict:
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        if missing:
            out.append(f"missing keys: {', '.join(missing)}")
        if unexpected:
            out.append(f"unexpected keys: {', '.join(map(str, unexpected))}")
    for key, want in settings.items():
        if key in state and not _json_equal(state[key], want):
            what = "was saved from" if key == "type" else "saved"
            out.append(f"{key}: {what} {state[key]!r}, but this optimizer has {want!r}")
    if "lr" in state and not state.get("lr_callable", settings["lr_callable"]):
        try:
            _lr.check_rate("lr", state["lr"])  # its message names "lr"
        except (TypeError, ValueError) as exc:
            out.append(str(exc))
    iterations = state.get("iterations", 0)
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
        out.append(f"iterations: must be an int >= 0, got {iterations!r}")
    for key, template in templates.items():
        if key not in state:
            continue
        spec = _spec(state[key])
        if spec is None:
            out.append(f"{key}: must be a tc.Tensor or a NumPy array, got {type(state[key]).__name__}")
            continue
        shape, dtype = spec
        if shape != tuple(template.shape):
            out.append(f"{key}: shape {shape}, but this optimizer's is {tuple(template.shape)}")
        floats_ok = key.rsplit(".", 1)[-1] in _FLOAT_STATE and dtype in (np.float32, np.float64)
        if dtype != template.dtype and not floats_ok:
            out.append(f"{key}: dtype {dtype}, but this optimizer's is {template.dtype}")
    return out


def _source(value: Any, target: Tensor) -> Tensor:
    """``value`` as a tensor of ``target``'s dtype on its device, ready to be assigned."""
    if isinstance(value, Tensor):
        moved = value if value.device is target.device else value.to_device(target.device)
        return moved if moved.dtype == target.dtype else astype(moved, target.dtype)
    return from_host(np.ascontiguousarray(np.asarray(value, dtype=target.dtype)), target.device)


def load_state_dict(opt: Any, state: Mapping[str, Any], strict: bool = True) -> None:
    """Check ``state`` against ``opt`` (every problem named in one ``ValueError``), then write
    it into every replica's state tensors in place, the step counters and the lr tensors."""
    name = type(opt).__name__
    if opt._strategy is not None:  # before any write: it would set the shared lr tensors too
        refuse_in_run(f"{name}.load_state_dict", "load the optimizer's state outside strategy.run, between steps")
    if not isinstance(state, Mapping):
        raise TypeError(f"{name}.load_state_dict takes the dict that state_dict() returns, got {type(state).__name__}")
    found = problems(opt, state, strict)
    if found:
        raise ValueError(f"{name}.load_state_dict: {len(found)} problem(s), nothing was loaded:\n  - "
                         + "\n  - ".join(found))
    with dispatch.untraced():
        _follow_all(opt)  # state lands on each parameter's (current) device
        # Every source is made (uploads, copies) before anything is written.
        sources: dict[tuple[str, Any], Tensor] = {}
        writes = []
        for states in opt._replica_states:
            for i, per_param in enumerate(states):
                for key, target in per_param.items():
                    full = f"state.{i}.{key}"
                    if full in state and isinstance(target, Tensor):
                        cache = (full, target.device)
                        if cache not in sources:
                            sources[cache] = _source(state[full], target)
                        writes.append((target, sources[cache]))
        for target, source in writes:
            dispatch.apply_inplace(ASSIGN, target, (source,))
        if "iterations" in state:
            count = int(state["iterations"])
            for steps in opt._replica_steps:
                for counter in steps.values():
                    dispatch.apply_inplace(ASSIGN, counter, (float(count),))
            opt._host_iterations = None if opt._traced else count
    if "lr" in state and opt._lr_fn is None:
        opt.lr = float(state["lr"])


def _follow_all(opt: Any) -> None:
    """Move state that lags behind its parameter's device (``Optimizer._follow``) now."""
    def follow() -> None:
        for p, per_param in zip(opt.params, opt.state):
            if any(isinstance(v, Tensor) and v.device is not p.device for v in per_param.values()):
                opt._follow(p, per_param)

    if opt._strategy is None:
        follow()
    else:
        opt._strategy.for_each_replica(follow)
