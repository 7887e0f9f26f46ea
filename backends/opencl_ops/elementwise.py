"""OpenCL launchers: elementwise (placeholder, being written)."""

KERNELS: dict = {}
