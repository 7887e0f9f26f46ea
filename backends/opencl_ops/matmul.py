"""OpenCL launchers: matmul (placeholder, being written)."""

KERNELS: dict = {}
