"""The ``cuda`` backend (being written): CuPy with hand-written CUDA kernels."""

from __future__ import annotations

from tensorcore.backend import Backend


class CUDABackend(Backend):
    """Placeholder until the CUDA runtime lands: reports itself unavailable with the reason."""

    name = "cuda"

    def __init__(self) -> None:
        raise RuntimeError("the CUDA backend is not implemented yet (issue 5)")
