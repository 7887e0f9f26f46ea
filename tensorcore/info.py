"""The Array API inspection namespace, returned by ``tc.__array_namespace_info__()``."""

from __future__ import annotations

from typing import Any

from tensorcore import dtypes
from tensorcore.device import Device, default_device


class __array_namespace_info__:  # noqa: N801 - the Array API names it so
    """Array API inspection utilities: capabilities, devices and dtypes of tensorcore."""

    def capabilities(self) -> dict[str, Any]:
        """What tensorcore supports of the optional parts of the standard."""
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    def default_device(self) -> Device:
        """The default device (``TENSORCORE_DEVICE``, else ``cpu``)."""
        return default_device()

    def devices(self) -> list[Device]:
        """The devices available on this machine."""
        from tensorcore.registry import available_devices

        return available_devices()

    def default_dtypes(self, *, device: Any = None) -> dict[str, Any]:
        """Default dtypes: float32 for reals (as in ML practice), complex64 for complex numbers
        (the spec: the default float's precision), int64 for integers and indices."""
        return {
            "real floating": dtypes.DEFAULT_FLOAT,
            "complex floating": dtypes.DEFAULT_COMPLEX,
            "integral": dtypes.DEFAULT_INT,
            "indexing": dtypes.DEFAULT_INDEX,
        }

    def dtypes(self, *, device: Any = None, kind: Any = None) -> dict[str, Any]:
        """The spec's dtypes tensorcore supports, by name, optionally only those of ``kind``.
        ``float16`` works too but is not a spec dtype: it is listed only when ``kind`` is that
        dtype (or a tuple holding it)."""
        named = kind if isinstance(kind, tuple) else (kind,)
        listed = [d for d in dtypes.ALL if d != dtypes.float16 or any(k is not None and not isinstance(k, str)
                                                                      and dtypes.as_dtype(k) == dtypes.float16 for k in named)]
        return {d.name: d for d in listed if kind is None or dtypes.isdtype(d, kind)}
