"""OpenCL launchers: reduce (placeholder, being written)."""

KERNELS: dict = {}
