"""OpenCL launchers: nn (placeholder, being written)."""

KERNELS: dict = {}
