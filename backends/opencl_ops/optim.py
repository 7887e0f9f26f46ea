"""OpenCL launchers: optim (placeholder, being written)."""

KERNELS: dict = {}
