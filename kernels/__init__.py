"""Hand-written kernel sources (``opencl/*.cl``, ``cuda/*.cu``), installed as package data."""

from pathlib import Path

KERNEL_DIR = Path(__file__).parent


def source(relative: str) -> str:
    """The text of a kernel source file, e.g. ``source("opencl/elementwise.cl")``."""
    return (KERNEL_DIR / relative).read_text()
