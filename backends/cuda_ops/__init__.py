"""Kernel launchers of the CUDA backend (being written)."""

KERNELS: dict = {}
