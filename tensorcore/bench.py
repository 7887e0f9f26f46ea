"""Time any callable on any device: ``tc.bench.timeit`` and ``tc.bench.interleaved``.

The method (``docs/benchmarks.md``): call once (kernels compile, pools fill), run untimed for
``warmup`` seconds, then take samples until the ``budget`` is spent. A sample is a block of
``number`` calls followed by a wait for the device, so each figure is the time to the result
on the device, not to the enqueue; ``number`` is chosen during the warm-up so that a block
lasts at least ``MIN_BLOCK`` seconds (a 2 µs op is not timed by one 2 µs reading), unless the
caller fixes it. The statistics are the median and interquartile range of the samples, per call.

Next to the wall time, each sample also reads the device's own clock where it has one: CUDA
events, or OpenCL marker events on a queue made with profiling (``TENSORCORE_OPENCL_PROFILING=1``
before the backend starts). Device seconds are the span on the device between a mark enqueued
before the block and one after it, as CUDA events measure; they leave out the host's final wait.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

__all__ = ["MIN_BLOCK", "CUDAEvents", "DeviceTimer", "OpenCLMarkers", "Timing", "device_timer", "format_seconds",
           "interleaved", "timeit"]

MIN_BLOCK = 1e-3  # seconds: the shortest block of calls one sample times
MAX_NUMBER = 1_000_000  # calls per block, at most


def format_seconds(seconds: float) -> str:
    """``seconds`` with three significant digits in ns, µs, ms or s."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


@dataclass(frozen=True)
class Timing:
    """Seconds per call of a timed callable: the median, interquartile range and minimum over
    ``repeats`` samples, each sample a block of ``number`` calls. ``device_median`` and
    ``device_iqr`` are the same from the device's own clock (None where it has none)."""

    median: float
    iqr: float
    min: float
    repeats: int
    number: int
    samples: tuple[float, ...] = field(default=(), repr=False)
    device_median: float | None = None
    device_iqr: float | None = None
    device_samples: tuple[float, ...] = field(default=(), repr=False)

    @classmethod
    def from_samples(cls, samples: list[float], number: int, device_samples: list[float] | None = None) -> Timing:
        """The statistics of per-call ``samples`` (seconds), each measured over ``number`` calls,
        and of ``device_samples``, the same blocks on the device's clock, if any."""
        if not samples:
            raise ValueError("Timing.from_samples: no samples")
        median, iqr = _median_iqr(samples)
        device = _median_iqr(device_samples) if device_samples else (None, None)
        return cls(median, iqr, min(samples), len(samples), number, tuple(samples), *device,
                   tuple(device_samples or ()))

    @property
    def relative_iqr(self) -> float:
        """The IQR as a fraction of the median: the noise of this measurement."""
        return self.iqr / self.median if self.median > 0 else 0.0

    def __repr__(self) -> str:
        calls = "call" if self.number == 1 else "calls"
        device = "" if self.device_median is None else f", device={format_seconds(self.device_median)}"
        return (f"Timing(median={format_seconds(self.median)}, iqr={format_seconds(self.iqr)} "
                f"({self.relative_iqr:.1%}), min={format_seconds(self.min)}{device}, "
                f"repeats={self.repeats} x {self.number} {calls})")


def _median_iqr(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return samples[0], 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return statistics.median(samples), q3 - q1


class DeviceTimer(Protocol):
    """A device's own clock around a block of calls: ``start`` and ``stop`` enqueue marks on
    its queue (the block runs between them), ``elapsed`` reads their distance once the host
    has waited for the device."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def elapsed(self) -> float: ...


class OpenCLMarkers:
    """Marker events on an OpenCL queue made with ``PROFILING_ENABLE``: the device seconds from
    the first marker's completion to the second's (an in-order queue runs the block between)."""

    def __init__(self, cl: Any, queue: Any) -> None:
        self.cl, self.queue = cl, queue
        self._first: Any = None
        self._last: Any = None

    def start(self) -> None:
        """Enqueue the opening marker."""
        self._first = self.cl.enqueue_marker(self.queue)

    def stop(self) -> None:
        """Enqueue the closing marker."""
        self._last = self.cl.enqueue_marker(self.queue)

    def elapsed(self) -> float:
        """Seconds between the markers (the queue has drained)."""
        return (self._last.profile.end - self._first.profile.end) * 1e-9  # nanoseconds


class CUDAEvents:
    """CUDA events recorded on a stream of GPU ``index`` (``stream()`` is asked at each start:
    CuPy's current stream can change), read with ``cupy.cuda.get_elapsed_time``."""

    def __init__(self, cp: Any, index: int, stream: Callable[[], Any]) -> None:
        self.cp, self.index, self.stream = cp, index, stream
        self._events: list[Any] = []

    def _record(self) -> Any:
        with self.cp.cuda.Device(self.index):  # an event belongs to the device it is made on
            event = self.cp.cuda.Event()
            event.record(self.stream())
        return event

    def start(self) -> None:
        """Record the opening event."""
        self._events = [self._record()]

    def stop(self) -> None:
        """Record the closing event."""
        self._events.append(self._record())

    def elapsed(self) -> float:
        """Seconds between the events (the stream has drained)."""
        return self.cp.cuda.get_elapsed_time(*self._events) * 1e-3  # milliseconds


def device_timer(device: Any) -> DeviceTimer | None:
    """The clock of ``device`` (a device string or Device): CUDA events on a ``cuda`` device's
    stream; OpenCL markers where the queue records profiling (``TENSORCORE_OPENCL_PROFILING=1``
    when the backend started); None for ``cpu``, a wait function, None, or a queue without it."""
    from tensorcore import registry
    from tensorcore.device import Device, resolve

    if device is None or (callable(device) and not isinstance(device, (str, Device))):
        return None
    dev = resolve(device)
    if dev.type not in ("opencl", "cuda"):
        return None
    target = registry.get_backend(dev.type).device(dev.index)
    if dev.type == "cuda":
        return CUDAEvents(target.cp, dev.index, lambda: target.stream)
    if int(target.queue.properties) & int(target.cl.command_queue_properties.PROFILING_ENABLE):
        return OpenCLMarkers(target.cl, target.queue)
    return None


def _synchronizer(device: Any) -> Callable[[], None]:
    """A function that waits for ``device``'s queue (None: every device started so far; a
    callable: that function, e.g. another library's own wait)."""
    from tensorcore import registry
    from tensorcore.device import Device, resolve
    from tensorcore.runtime import synchronize

    if device is None:
        return synchronize
    if callable(device) and not isinstance(device, (str, Device)):
        return device
    dev = resolve(device)
    backend = registry.get_backend(dev.type)
    return partial(backend.synchronize, dev.index)  # resolved once: a sample pays only the wait


class _Subject:
    """One callable being timed: its device wait and clock, block size and samples. ``number``
    fixes the calls per block (None: calibrated during the first warm-up); ``setup`` runs
    untimed before every block."""

    def __init__(self, fn: Callable[[], Any], sync: Callable[[], None], timer: DeviceTimer | None,
                 number: int | None = None, setup: Callable[[], None] | None = None) -> None:
        self.fn, self.sync, self.timer, self.setup = fn, sync, timer, setup
        self.number, self.fixed_number = number or 1, number is not None
        self.samples: list[float] = []
        self.device_samples: list[float] = []

    def block(self, record: bool = False) -> float:
        """Run one block of ``number`` calls and wait for the device; wall seconds per call.
        ``record``: keep the sample (and the device clock's, if any)."""
        if self.setup is not None:
            self.setup()
        fn, timer, start = self.fn, self.timer, time.perf_counter()
        if timer is not None:
            timer.start()
        for _ in range(self.number):
            fn()
        if timer is not None:
            timer.stop()
        self.sync()
        per_call = (time.perf_counter() - start) / self.number
        if record:
            self.samples.append(per_call)
            if timer is not None:
                self.device_samples.append(timer.elapsed() / self.number)
        return per_call

    def warm(self, seconds: float, calibrate: bool) -> None:
        """Run untimed blocks for ``seconds`` (at least one, none for 0 s unless calibrating).
        When calibrating, grow ``number`` until a block lasts ``MIN_BLOCK``, going on past
        ``seconds`` if need be; a fixed ``number`` is never calibrated."""
        calibrate = calibrate and not self.fixed_number
        if seconds <= 0 and not calibrate:
            return
        end = time.perf_counter() + seconds
        while True:
            per_call = self.block()
            short = calibrate and per_call * self.number < MIN_BLOCK and self.number < MAX_NUMBER
            if short:
                wanted = math.ceil(MIN_BLOCK / max(per_call, 1e-9))
                self.number = min(MAX_NUMBER, max(2 * self.number, wanted))
            elif time.perf_counter() >= end:
                break

    def sample_for(self, seconds: float, at_least: int, max_repeats: int) -> None:
        """Take samples for ``seconds``, at least ``at_least`` of them, ``max_repeats`` in all."""
        end, taken = time.perf_counter() + seconds, 0
        while len(self.samples) < max_repeats:
            self.block(record=True)
            taken += 1
            if taken >= at_least and time.perf_counter() >= end:
                break


def interleaved(cases: Mapping[str, Callable[[], Any]], *, devices: Mapping[str, Any] | None = None,
                timers: Mapping[str, DeviceTimer | None] | None = None, budget: float = 0.5, warmup: float = 0.05,
                rounds: int = 3, rest: float = 0.15, min_repeats: int = 5, max_repeats: int = 100_000,
                number: int | None = None, setup: Callable[[], None] | None = None) -> dict[str, Timing]:
    """Time several zero-argument callables taking turns, round by round; a Timing per name.

    Each case gets ``budget`` seconds of samples in all, spread over ``rounds`` rounds, and at
    least ``min_repeats`` samples (a budget of 0: exactly that many, ``min_repeats / rounds``
    per round, rounded up). In each round every case, in turn, rests ``rest`` seconds, runs
    untimed for ``warmup`` seconds and then takes its samples: machine noise then hits all
    cases alike, and on two cores a library's spinning worker (OpenBLAS spins ~0.1 s after
    each call) has stopped before the next case starts. ``devices`` maps a name to the device
    to wait for (as ``timeit``'s ``device``; default: every device started so far). ``timers``
    maps a name to the clock read around each sample (a ``DeviceTimer``, or None for none); a
    name not in it gets its device's own clock (``device_timer``). ``number`` fixes the calls
    per sample (None: enough for a sample to last ``MIN_BLOCK``, found in the first warm-up).
    ``setup`` is called, untimed, before every block of calls (e.g. to drain other queues).
    """
    if budget < 0 or rounds < 1 or min_repeats < 1 or (number is not None and number < 1):
        raise ValueError(f"interleaved: need budget >= 0, rounds >= 1, min_repeats >= 1 and number >= 1 or None, "
                         f"got budget={budget}, rounds={rounds}, min_repeats={min_repeats}, number={number}")
    devices, timers = devices or {}, timers or {}
    subjects = {name: _Subject(fn, _synchronizer(devices.get(name)),
                               timers[name] if name in timers else device_timer(devices.get(name)), number, setup)
                for name, fn in cases.items()}
    for subject in subjects.values():  # compile kernels and fill pools before anything is timed
        subject.fn()
        subject.sync()
    per_round = math.ceil(min_repeats / rounds)
    for r in range(rounds):
        for subject in subjects.values():
            if rest > 0:
                time.sleep(rest)
            subject.warm(warmup, calibrate=r == 0)
            subject.sample_for(budget / rounds, per_round, max_repeats)
    return {name: Timing.from_samples(s.samples, s.number, s.device_samples) for name, s in subjects.items()}


def timeit(fn: Callable[..., Any], *args: Any, budget: float = 0.5, warmup: float = 0.05, device: Any = None,
           min_repeats: int = 5, max_repeats: int = 100_000, number: int | None = None) -> Timing:
    """Seconds per call of ``fn(*args)``: median, IQR and min over adaptive repeats that fill
    ``budget`` seconds, after one call and ``warmup`` seconds of untimed calls. Each sample
    ends with a wait for ``device`` (a device string or Device; None: every device started so
    far; or a function that waits, such as ``cupy.cuda.Device(0).synchronize``), so
    asynchronous work is counted to its end. ``device_median`` is filled from ``device``'s own
    clock where it has one (see ``device_timer``). ``number`` fixes the calls per sample (None:
    enough for ``MIN_BLOCK``).

    >>> t = tc.bench.timeit(tc.matmul, a, b, device="opencl:0")   # doctest: +SKIP
    >>> t.median, t.iqr                                           # doctest: +SKIP
    """
    call = partial(fn, *args)
    return interleaved({"fn": call}, devices={"fn": device}, budget=budget, warmup=warmup, rounds=1, rest=0.0,
                       min_repeats=min_repeats, max_repeats=max_repeats, number=number)["fn"]
