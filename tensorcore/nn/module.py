"""``Module``: the base of layers and models; tracks parameters, buffers and sub-modules."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from tensorcore.autodiff.variable import Variable
from tensorcore.device import Device, resolve
from tensorcore.tensor import Tensor


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped: keys the model has and the state lacks,
    and keys the state has and the model lacks."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """A layer or a model. Assigning a trainable ``Variable`` or a ``Module`` to an attribute
    registers it; ``register_buffer`` registers non-trainable state (e.g. running means).
    Subclasses implement ``forward``; calling the module calls ``forward``.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}")
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Variable) and value.trainable:
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: Variable) -> None:
        """Register non-trainable state that moves with the module (``to_device``)."""
        setattr(self, name, value)
        self._buffers[name] = value

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation of this module; subclasses override it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # --- traversal ---------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, depth first, with dotted names."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        """This module and every sub-module."""
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator[Module]:
        """The direct sub-modules."""
        yield from self._modules.values()

    def named_parameters(self) -> Iterator[tuple[str, Variable]]:
        """Every trainable parameter once, with dotted names, in registration order."""
        seen: set[int] = set()
        for prefix, m in self.named_modules():
            for name, p in m._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self) -> list[Variable]:
        """Every trainable parameter once, in a stable order (what optimizers take)."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, Variable]]:
        """Every buffer, with dotted names."""
        for prefix, m in self.named_modules():
            for name, b in m._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), b

    def state_dict(self) -> dict[str, Variable]:
        """Parameters and buffers by dotted name (what ``tc.save`` and checkpoints store)."""
        return dict(self.named_parameters()) | dict(self.named_buffers())

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy ``state`` (name -> tensor on any device, or NumPy array) into this module's
        parameters and buffers, in place, each on its own device.

        Everything is checked before anything is written: missing and unexpected keys (with
        ``strict``), and values whose shape or dtype differ. All the problems are named in one
        ``ValueError``, and the module is left as it was. Without ``strict``, keys that do not
        match are skipped and returned.
        """
        problems = self.state_dict_problems(state, strict)
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: {len(problems)} problem(s), nothing was loaded:\n  "
                             + "\n  ".join(problems))
        own = self.state_dict()
        for key, variable in own.items():
            if key in state:
                value = state[key]
                if isinstance(value, Tensor) and not hasattr(variable, "copies") and value.device != variable.device:
                    value = value.to_device(variable.device)  # a mirrored variable copies to each replica itself
                variable.assign(value)
        return IncompatibleKeys([k for k in own if k not in state], [k for k in state if k not in own])

    def state_dict_problems(self, state: Mapping[str, Any], strict: bool = True) -> list[str]:
        """Every reason ``load_state_dict(state, strict)`` would refuse ``state`` (empty: it loads)."""
        own = self.state_dict()
        problems = state_dict_mismatches(own, state)
        if strict:
            problems += [f"missing key {k!r} ({_describe(own[k])})" for k in own if k not in state]
            problems += [f"unexpected key {k!r}" for k in state if k not in own]
        return problems

    # --- modes and placement ----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch norm uses batch statistics) recursively."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode recursively."""
        return self.train(False)

    def to_device(self, device: str | Device) -> Module:
        """Move every parameter and buffer to ``device`` in place (the Variables stay the same
        objects, so an optimizer built before the move still updates them)."""
        dev = resolve(device)
        for v in list(self.parameters()) + [b for _, b in self.named_buffers()]:
            v.move_to_device(dev)
        return self

    to = to_device

    @property
    def device(self) -> Device | None:
        """The device of the first parameter (None for a module without parameters)."""
        params = self.parameters()
        return params[0].device if params else None

    def __repr__(self) -> str:
        lines = [f"  ({name}): {child!r}".replace("\n", "\n  ") for name, child in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"

    def extra_repr(self) -> str:
        """Settings shown in ``repr``; layers override it."""
        return ""


def state_dict_mismatches(own: Mapping[str, Tensor], state: Mapping[str, Any]) -> list[str]:
    """A line for each key of both whose value in ``state`` is not a tensor or array of the same
    shape and dtype as in ``own`` (what loading it would need)."""
    problems = []
    for key in own.keys() & state.keys():
        value, target = state[key], own[key]
        if not isinstance(value, (Tensor, np.ndarray)):
            problems.append(f"{key!r} is a {type(value).__name__}, not a tensor or NumPy array")
        elif tuple(value.shape) != target.shape or np.dtype(value.dtype) != target.dtype:
            problems.append(f"{key!r} is {_describe(value)} in the state but {_describe(target)} in the model")
    return sorted(problems)


def _describe(x: Any) -> str:
    return f"{np.dtype(x.dtype)}{list(x.shape)}"
