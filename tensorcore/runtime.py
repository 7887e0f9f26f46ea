"""Process-level queries about devices: list them, their memory, wait for them."""

from __future__ import annotations

from typing import Any

from tensorcore import registry
from tensorcore.backend import DeviceInfo
from tensorcore.device import Device, resolve


def devices(all: bool = False) -> list[DeviceInfo]:  # noqa: A002 - mirrors `tensorcore devices --all`
    """The devices available here; with ``all=True`` also each unavailable backend and why, and
    each device a started backend found but cannot use (with the reason and the fix)."""
    out: list[DeviceInfo] = []
    for entry in registry.all_entries():
        if entry.devices:
            out.extend(entry.devices)
        elif all:
            out.append(DeviceInfo(None, f"{entry.name} (unavailable)", backend=entry.name, reason=entry.reason))
        if all and entry.devices:  # without devices, the backend's reason already gives theirs
            out.extend(entry.unavailable)
    return out


def memory_stats(device: Any = None) -> dict[str, int]:
    """Bytes ``in_use``, ``cached`` and ``peak`` on ``device`` (empty if the backend does not track them)."""
    dev = Device("cpu") if device is None else resolve(device)
    return registry.get_backend(dev.type).memory_stats(dev.index)


def synchronize(device: Any = None) -> None:
    """Wait for all work queued on ``device``, or on every device of the backends started so
    far if None. Every device is waited for even when one reports an error (a late index
    error, say); then the first error is raised. Such device errors belong to the thread that
    launched the failing op: this raises the calling thread's own, and another thread's wait
    for that thread's next read or synchronize."""
    if device is not None:
        dev = resolve(device)
        registry.get_backend(dev.type).synchronize(dev.index)
        return
    first: Exception | None = None
    for entry in registry.loaded_entries():
        for info in entry.devices or []:
            try:
                entry.backend.synchronize(info.device.index)
            except Exception as exc:  # noqa: BLE001 - raised below, once every queue is drained
                first = first or exc
    if first is not None:
        raise first
