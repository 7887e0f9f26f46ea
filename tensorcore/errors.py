"""Exception types raised by tensorcore, each naming what was wrong and what would be right."""

from __future__ import annotations


class PlacementError(RuntimeError):
    """An op or tensor cannot be placed where it was asked to be (strict placement)."""


class DeviceUnavailableError(PlacementError):
    """A well-formed device that this machine cannot provide (e.g. ``cuda`` with no GPU)."""


class OutOfMemoryError(MemoryError):
    """A device allocation failed even after the backend freed its cached blocks."""

    def __init__(self, device: object, requested: int, in_use: int, detail: str = "") -> None:
        self.device, self.requested, self.in_use = device, requested, in_use
        msg = (
            f"out of memory on {device}: requested {requested:,} bytes "
            f"with {in_use:,} bytes in use"
        )
        super().__init__(msg + (f" ({detail})" if detail else ""))


class OpError(ValueError):
    """An op was given inputs it cannot take: names the op, the inputs and what it expected."""


class GradientError(ValueError):
    """A gradient cannot be computed as asked (unwatched source, modified input, ...)."""


class KernelBuildError(RuntimeError):
    """A device kernel failed to compile: names the source file, the device, the compiler log
    and the offending source line."""


class KernelUnsupported(Exception):  # noqa: N818 - a signal to fall back, not an error users see
    """Raised by a backend kernel, before it writes anything, for inputs it does not handle
    (a dtype, a layout). Dispatch then treats the op as having no kernel on that device:
    it falls back to cpu under soft placement and raises under strict."""


class CollectiveError(RuntimeError):
    """A collective of ``tensorcore.distribute`` failed: a participant did not join in time,
    handed in different tensors, or stopped because another replica failed. Dispatch passes
    it through unchanged, so the caller sees which of these it was."""


class SerializationError(ValueError):
    """A file cannot be loaded: truncated, corrupted, not safetensors, or not what tensorcore wrote
    (foreign keys, a pickle). Names the file and what is wrong; nothing is loaded."""
