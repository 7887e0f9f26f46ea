"""What the fixed suites' command lines share: ``--device`` and ``--json``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def add_device_and_json(parser: argparse.ArgumentParser) -> None:
    """``--device`` (default: TENSORCORE_DEVICE, else cpu) and ``--json FILE``."""
    parser.add_argument("--device", default=None,
                        help="the device tensorcore runs on; None: the default device (TENSORCORE_DEVICE, else cpu)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON")


@contextmanager
def on_device(spec: str | None) -> Iterator[Any]:
    """A ``tc.device`` scope for ``spec`` (None: the default device); yields the device."""
    import tensorcore as tc

    with tc.device(spec if spec is not None else tc.default_device()) as dev:
        yield dev


def write_json(path: Path | None, results: dict[str, Any]) -> None:
    """``results`` as JSON in ``path`` (nothing if None)."""
    if path is not None:
        path.write_text(json.dumps(results, indent=1) + "\n")
