"""The device grammar (``cpu``, ``cuda:1``, ``opencl:0``), the default device and device scopes.

A :class:`Device` is only a name; whether this machine can provide it is the registry's
business (:func:`resolve`). Devices are interned, so identity comparison is equality and a
device is a cheap dictionary key on the dispatch hot path.
"""

from __future__ import annotations

import difflib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

KNOWN_TYPES = ("cpu", "cuda", "opencl")
_GRAMMAR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*(\d+))?\s*$")
VALID_FORMS = "'cpu', 'cuda', 'cuda:N', 'opencl', 'opencl:N' (case-insensitive; no index means 0)"


class Device:
    """A device name: a backend type and an index. Construct with ``Device("cuda:1")``."""

    __slots__ = ("type", "index", "_str")
    _interned: ClassVar[dict[tuple[str, int], Device]] = {}

    def __new__(cls, spec: str | Device, index: int | None = None) -> Device:
        if isinstance(spec, Device):
            return spec
        type_, idx = parse(spec) if index is None else (parse(spec)[0], index)
        key = (type_, idx)
        dev = cls._interned.get(key)
        if dev is None:
            dev = object.__new__(cls)
            dev.type, dev.index, dev._str = type_, idx, f"{type_}:{idx}"
            cls._interned[key] = dev
        return dev

    def __repr__(self) -> str:
        return f"Device('{self._str}')"

    def __str__(self) -> str:
        return self._str

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                return Device(other) is self
            except ValueError:
                return False
        return other is self

    __hash__ = object.__hash__  # interned: identity hashing is value hashing

    def __reduce__(self) -> tuple:
        return (Device, (self._str,))


def parse(spec: str) -> tuple[str, int]:
    """Parse a device string into (type, index); raise ValueError naming the valid forms."""
    if not isinstance(spec, str):
        raise TypeError(f"a device must be a string like 'cuda:0' or a Device, not {spec!r}")
    m = _GRAMMAR.match(spec)
    type_ = m.group(1).lower() if m else None
    if type_ not in KNOWN_TYPES and type_ not in _known_types():
        raise ValueError(_unknown_device_message(spec, type_))
    return type_, int(m.group(2) or 0)


def _known_types() -> tuple[str, ...]:
    from tensorcore import registry  # deferred: the registry parses devices too

    return tuple(dict.fromkeys(KNOWN_TYPES + tuple(registry.backend_names())))


def _unknown_device_message(spec: str, type_: str | None) -> str:
    from tensorcore import registry

    msg = f"unknown device {spec!r}; valid forms are {VALID_FORMS}"
    guess = difflib.get_close_matches((type_ or spec).lower(), _known_types(), n=1, cutoff=0.5)
    if guess:
        msg += f"; did you mean '{guess[0]}'?"
    available = ", ".join(str(d) for d in registry.available_devices())
    return msg + f". Available devices here: {available}"


# --- default device and scopes ------------------------------------------------------------


class _ScopeState(threading.local):
    scope: Device | None = None  # set by `with tc.device(...)`; wins over the inputs' device
    default: Device | None = None  # this thread's default device (a distribute replica's), else None


_state = _ScopeState()
_default: Device | None = None


def default_device() -> Device:
    """The default device: this thread's (set by :func:`thread_default`, as a replica of
    ``tensorcore.distribute`` does), else ``TENSORCORE_DEVICE`` if set (and available), else ``cpu``."""
    global _default
    if _state.default is not None:
        return _state.default
    if _default is None:
        _default = resolve(os.environ.get("TENSORCORE_DEVICE", "cpu"), origin="TENSORCORE_DEVICE")
    return _default


def set_default_device(spec: str | Device | None) -> None:
    """Set the default device for new tensors (``None`` re-reads ``TENSORCORE_DEVICE``)."""
    global _default
    _default = None if spec is None else resolve(spec)


def current_device() -> Device:
    """Where a new tensor is created now: the innermost ``tc.device`` scope, else the default."""
    return _state.scope or default_device()


def scoped_device() -> Device | None:
    """The innermost ``tc.device`` scope of this thread, or None."""
    return _state.scope


@contextmanager
def thread_default(dev: Device | None) -> Iterator[None]:
    """Make ``dev`` this thread's default device inside the block. Unlike a ``tc.device`` scope,
    ops still run where their inputs are; only new tensors and input-less ops go to ``dev``."""
    outer = _state.default
    _state.default = dev
    try:
        yield
    finally:
        _state.default = outer


@contextmanager
def device(spec: str | Device) -> Iterator[Device]:
    """Context manager: ops and new tensors in this block run on ``spec`` (TF's ``tf.device``)."""
    dev = resolve(spec)
    outer = _state.scope
    _state.scope = dev
    try:
        yield dev
    finally:
        _state.scope = outer


def resolve(spec: str | Device, origin: str = "device") -> Device:
    """Map a device request to a device this machine has, applying the placement policy.

    A malformed or unknown name raises ValueError. A valid but unavailable device (``cuda``
    with no GPU) warns once and gives ``cpu`` under ``soft`` placement, and raises
    :class:`~tensorcore.errors.DeviceUnavailableError` under ``strict``.
    """
    from tensorcore import placement, registry

    dev = Device(spec)
    reason = registry.unavailable_reason(dev)
    if reason is None:
        return dev
    return placement.device_unavailable(dev, reason, origin)
