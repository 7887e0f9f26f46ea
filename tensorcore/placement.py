"""Placement policy (``soft`` / ``strict``), its warnings and the placement statistics.

``TENSORCORE_PLACEMENT`` sets the policy (``soft`` by default). Under ``soft`` every
deviation from what was asked is allowed but visible: warned once on stderr and counted in
:func:`placement_stats`. Under ``strict`` each of them raises. ``TENSORCORE_LOG_PLACEMENT=1``
logs every op's device, like TensorFlow's ``log_device_placement``.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tensorcore.errors import DeviceUnavailableError, PlacementError

if TYPE_CHECKING:
    from tensorcore.device import Device

POLICIES = ("soft", "strict")
logger = logging.getLogger("tensorcore.placement")


def _policy_from_env() -> str:
    value = os.environ.get("TENSORCORE_PLACEMENT", "soft").strip().lower()
    if value not in POLICIES:
        raise ValueError(f"TENSORCORE_PLACEMENT={value!r} is not a policy; use 'soft' or 'strict'")
    return value


class _State:
    """Module state read on the dispatch hot path, kept as plain attributes."""

    strict: bool = _policy_from_env() == "strict"
    log_every_op: bool = os.environ.get("TENSORCORE_LOG_PLACEMENT", "") not in ("", "0")


state = _State()
ops_per_device: dict[Device, int] = {}  # a plain dict: Counter costs 50 ns more per op
fallbacks: Counter[tuple[str, Device]] = Counter()
bytes_copied = [0]
_warned: set[object] = set()


def policy() -> str:
    """The placement policy in force: ``'soft'`` or ``'strict'``."""
    return "strict" if state.strict else "soft"


def set_policy(name: str) -> None:
    """Set the placement policy for the process: ``'soft'`` or ``'strict'``."""
    if name not in POLICIES:
        raise ValueError(f"unknown placement policy {name!r}; use 'soft' or 'strict'")
    state.strict = name == "strict"


@contextmanager
def placement_policy(name: str) -> Iterator[None]:
    """Context manager that sets the placement policy inside the block."""
    outer = policy()
    set_policy(name)
    try:
        yield
    finally:
        set_policy(outer)


def warn_once(key: object, message: str) -> None:
    """Log ``message`` as a warning the first time ``key`` is seen (stderr by default)."""
    if key not in _warned:
        _warned.add(key)
        _stderr_logging()
        logger.warning(message)


def _stderr_logging() -> None:
    # Make warnings visible even where the program never configured logging.
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("tensorcore: %(message)s"))
        logger.addHandler(handler)


def device_unavailable(dev: Device, reason: str, origin: str) -> Device:
    """Policy for a well-formed device that this machine lacks: cpu (soft) or raise."""
    from tensorcore.device import Device

    if state.strict:
        raise DeviceUnavailableError(
            f"{origin} asks for {dev}, which is unavailable: {reason} "
            "(TENSORCORE_PLACEMENT=strict; use soft placement to run on cpu instead)"
        )
    warn_once(("unavailable", dev), f"{dev} is unavailable ({reason}); using cpu:0 instead")
    return Device("cpu")


def cross_device(op_name: str, devices: list[Device], target: Device, scoped: bool = False) -> None:
    """Policy for an op whose inputs live off the device it runs on."""
    if state.strict:
        names = ", ".join(str(d) for d in devices)
        if scoped:
            raise PlacementError(
                f"{op_name}: inputs are on {names} but the tc.device scope runs it on {target}; move "
                f"them with .to_device('{target}') first, or use TENSORCORE_PLACEMENT=soft to copy implicitly"
            )
        raise PlacementError(
            f"{op_name}: inputs are on different devices ({names}); move them with "
            f".to_device('{target}') first, or use TENSORCORE_PLACEMENT=soft to copy implicitly"
        )


def kernel_missing(op_name: str, dev: Device, have: list[str], reason: str = "") -> None:
    """Policy for an op with no (usable) kernel on ``dev``: count and warn once (soft) or raise.

    ``reason`` is set when a kernel exists but declined these inputs (a dtype it lacks)."""
    where = ", ".join(sorted(have)) or "no backend"
    what = f"op {op_name!r} has no kernel on {dev}" if not reason else f"op {op_name!r} on {dev}: {reason}"
    if state.strict:
        raise PlacementError(f"{what} (kernels exist for: {where}); use TENSORCORE_PLACEMENT=soft to run it on cpu")
    fallbacks[op_name, dev] += 1
    warn_once(("fallback", op_name, dev, reason), f"{what}; running it on cpu:0")


def log_op(op_name: str, dev: Device) -> None:
    """Log one op's placement on stderr (``TENSORCORE_LOG_PLACEMENT=1``)."""
    _stderr_logging()
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    logger.info("op %s placed on %s", op_name, dev)


def placement_stats() -> dict[str, object]:
    """Ops run per device, CPU fallbacks per (op, device), and bytes copied between devices."""
    return {
        "ops_per_device": {str(d): n for d, n in ops_per_device.items()},
        "fallbacks": {f"{op}@{d}": n for (op, d), n in fallbacks.items()},
        "bytes_copied": bytes_copied[0],
    }


def reset_placement_stats() -> None:
    """Zero the placement statistics (the warnings already given stay given)."""
    ops_per_device.clear()
    fallbacks.clear()
    bytes_copied[0] = 0


def summary() -> str:
    """A short human-readable placement summary, as printed at the end of ``tensorcore train``."""
    s = placement_stats()
    ops = ", ".join(f"{d}: {n:,}" for d, n in s["ops_per_device"].items()) or "none"
    fb = ", ".join(f"{k} x{n}" for k, n in s["fallbacks"].items()) or "none"
    return f"ops per device: {ops}; cpu fallbacks: {fb}; bytes copied: {s['bytes_copied']:,}"
