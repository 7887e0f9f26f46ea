"""A pytest plugin of ``tensorcore bench gpu-check``: which CUDA launchers the tests ran on a GPU.

Loaded with ``-p tensorcore.benchmarks.gpu_check_plugin`` and ``TENSORCORE_LAUNCHER_COUNTS=FILE``
set. On import (before ``tests/conftest.py`` starts the backends and binds their kernels) it
wraps every launcher of ``tensorcore.backends.cuda_ops.KERNELS`` so that a call on a real
``CUDADevice`` is counted (not one on the launcher tests' stand-in device, which runs no
kernel). At the end it writes ``{"launchers": [...], "calls": {op: n}}`` to FILE; under
pytest-xdist each worker leaves its counts beside FILE and the controller adds them up.
Fused graph-mode kernels are not launchers of the table and are not counted.
"""

from __future__ import annotations

import functools
import glob
import json
import os
from collections import Counter
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

ENV = "TENSORCORE_LAUNCHER_COUNTS"
COUNTS: Counter[str] = Counter()


def instrument(kernels: MutableMapping[str, Callable[..., Any]], counts: Counter[str],
               device_type: type) -> None:
    """Replace each launcher of ``kernels`` by one that counts its calls on a ``device_type``
    (exactly that type: a subclass is a stand-in) in ``counts``, then calls it."""
    def counting(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def launcher(dev: Any, *args: Any, **kwargs: Any) -> Any:
            if type(dev) is device_type:
                counts[name] += 1
            return fn(dev, *args, **kwargs)
        return launcher

    for name, fn in list(kernels.items()):
        kernels[name] = counting(name, fn)


def write_counts(path: str, launchers: list[str], counts: Counter[str], worker: str | None) -> None:
    """A worker's counts beside ``path``; or, in the controller (or without xdist), the sum
    of its own and the workers' counts in ``path``, the workers' files removed."""
    if worker:
        Path(f"{path}.{worker}").write_text(json.dumps(counts))
        return
    total = Counter(counts)
    for part in glob.glob(f"{glob.escape(path)}.gw*"):
        total.update(json.loads(Path(part).read_text()))
        os.remove(part)
    Path(path).write_text(json.dumps({"launchers": sorted(launchers), "calls": dict(total)}, indent=1))


if os.environ.get(ENV):  # at import: the backends bind their kernels when conftest starts them
    from tensorcore.backends.cuda import CUDADevice
    from tensorcore.backends.cuda_ops import KERNELS

    instrument(KERNELS, COUNTS, CUDADevice)


def pytest_sessionfinish(session: Any) -> None:
    """Write the counts (see ``write_counts``)."""
    if os.environ.get(ENV):
        from tensorcore.backends.cuda_ops import KERNELS

        write_counts(os.environ[ENV], list(KERNELS), COUNTS, os.environ.get("PYTEST_XDIST_WORKER"))
