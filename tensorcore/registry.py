"""The backend registry: discovers backends through entry points, loads them lazily.

Loading a backend may be slow (OpenCL platform enumeration, CUDA driver start), so a
backend is imported only when one of its devices is first asked for or when devices are
listed. A backend that fails to import, fails to start, or finds no device is kept with
its reason and shown by ``tc.devices(all=True)`` and ``tensorcore devices``, as are the devices
a started backend found but cannot use (``Backend.unavailable_devices``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tensorcore.backend import Backend, DeviceInfo
    from tensorcore.device import Device

GROUP = "tensorcore.backends"


@dataclass
class BackendEntry:
    """A discovered backend: its entry point, and once loaded, the backend or why not."""

    name: str
    entry_point: metadata.EntryPoint | None
    backend: Backend | None = None
    devices: list[DeviceInfo] | None = None
    reason: str | None = None
    loaded: bool = False
    #: Devices the backend found but cannot use, each with its reason (``device`` is None).
    unavailable: list[DeviceInfo] = field(default_factory=list)


_entries: dict[str, BackendEntry] | None = None


def _discover() -> dict[str, BackendEntry]:
    global _entries
    if _entries is None:
        found = {ep.name: BackendEntry(ep.name, ep) for ep in metadata.entry_points(group=GROUP)}
        if "cpu" not in found:
            raise RuntimeError(
                "tensorcore's built-in backends are not registered: the package metadata "
                f"has no '{GROUP}' entry points. Install the package (pip install -e .) "
                "rather than running it from a source folder."
            )
        _entries = found
    return _entries


def rescan() -> None:
    """Forget discovered backends so the next query re-reads the entry points (tests, plugins)."""
    global _entries
    _entries = None


def backend_names() -> list[str]:
    """Names of all registered backends, loaded or not."""
    return list(_discover())


_load_lock = threading.RLock()  # two threads asking for a device first must not both start it


def _load(entry: BackendEntry) -> BackendEntry:
    if entry.loaded:
        return entry
    with _load_lock:
        if not entry.loaded:
            _start(entry)
            entry.loaded = True  # only now: another thread must not see a half-started entry
    return entry


def _start(entry: BackendEntry) -> None:
    """Import and start one backend; on failure keep the reason."""
    try:
        factory = entry.entry_point.load()
        backend = factory()
        devices = backend.devices()
        # Optional in the contract (getattr: a factory may return a duck-typed backend).
        unusable = list(getattr(backend, "unavailable_devices", list)())
    except Exception as exc:  # a broken backend must not break the others
        entry.reason = f"failed to start: {type(exc).__name__}: {exc}"
        return
    entry.unavailable = [info if info.backend else replace(info, backend=entry.name) for info in unusable]
    if not devices:
        entry.reason = ("no usable device: " + "; ".join(str(info.reason) for info in entry.unavailable)
                        if entry.unavailable else "no devices found")
        return
    wrong = [str(d.device) for d in devices if d.device is None or d.device.type != entry.name]
    if getattr(backend, "name", None) != entry.name or wrong:
        entry.reason = (
            f"misconfigured: the entry point is named {entry.name!r} but the backend calls itself "
            f"{getattr(backend, 'name', None)!r} and lists devices {[str(d.device) for d in devices]}"
        )
        return
    from tensorcore.ops.registry import install_backend

    install_backend(entry.name, [d.device for d in devices], backend.bind, backend.kernels)
    entry.backend, entry.devices = backend, devices


def entry(name: str) -> BackendEntry | None:
    """The registry entry for backend ``name``, loading it on first use; None if unknown."""
    e = _discover().get(name)
    return None if e is None else _load(e)


def all_entries() -> list[BackendEntry]:
    """Every registered backend, loaded, in registration order with ``cpu`` first."""
    entries = sorted(_discover().values(), key=lambda e: e.name != "cpu")
    return [_load(e) for e in entries]


def loaded_entries() -> list[BackendEntry]:
    """The backends started so far (none is started by asking), ``cpu`` first."""
    entries = sorted((_entries or {}).values(), key=lambda e: e.name != "cpu")
    return [e for e in entries if e.loaded]


def get_backend(name: str) -> Backend:
    """The loaded backend ``name``; raises if it is unknown or unavailable."""
    e = entry(name)
    if e is None or e.backend is None:
        why = "not registered" if e is None else e.reason
        raise RuntimeError(f"backend {name!r} is unavailable: {why}")
    return e.backend


def unavailable_reason(dev: Device) -> str | None:
    """Why ``dev`` cannot be used here, or None if it can."""
    e = entry(dev.type)
    if e is None:
        return f"no backend named {dev.type!r} is registered"
    if e.backend is None:
        return f"the {dev.type} backend is unavailable: {e.reason}"
    if dev.index >= len(e.devices):
        have = ", ".join(str(d.device) for d in e.devices)
        unusable = "".join(f"; it also found a device it cannot use: {info.reason}" for info in e.unavailable)
        return f"{dev} does not exist; the {dev.type} backend has {have}{unusable}"
    return None


def available_devices() -> list[Device]:
    """All devices usable on this machine."""
    return [info.device for e in all_entries() for info in (e.devices or [])]
