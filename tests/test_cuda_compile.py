"""CI compile check of the CUDA kernels: every ``kernels/cuda/*.cu`` source, with every set of
``-D`` defines its launchers build (``tensorcore.backends.cuda_ops.VARIANTS``), compiles with
``nvcc`` for sm_80 and sm_90 with warnings as errors. Needs no GPU (and no CuPy); skips, saying
so, where ``nvcc`` is absent. Runs the compiler in parallel, one process per core.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tensorcore.backends.cuda_ops import VARIANTS
from tensorcore.kernels import KERNEL_DIR

CUDA_DIR = KERNEL_DIR / "cuda"
ARCHS = ("sm_80", "sm_90")


def _nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or "/usr/local/cuda"
    candidate = Path(home) / "bin" / "nvcc"
    return str(candidate) if candidate.is_file() else None


NVCC = _nvcc()


TEMPLATES = {"fused.cu"}  # filled in per program: compiled by the fused-kernel test below


def test_every_cuda_source_is_built_by_some_launcher() -> None:
    sources = {p.name for p in CUDA_DIR.glob("*.cu")} - TEMPLATES
    built = {source for source, _ in VARIANTS}
    assert sources, "no kernels/cuda/*.cu sources"
    assert sources == built, f"sources no launcher builds: {sorted(sources - built)}; missing: {sorted(built - sources)}"


def _compile(nvcc: str, source: str, defines: tuple, arch: str, out_dir: str) -> tuple[str, int, str, float]:
    flags = [f"-D{k}={v}" for k, v in defines]
    out = Path(out_dir) / f"{source}-{arch}-{'-'.join(f'{k}{v}' for k, v in defines)}.ptx"
    cmd = [nvcc, f"-arch={arch}", "--ptx", "-Werror", "all-warnings", "-I", str(CUDA_DIR), *flags,
           str(CUDA_DIR / source), "-o", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    label = f"{source} {arch} {' '.join(flags)}"
    return label, proc.returncode, (proc.stdout + proc.stderr).strip(), time.perf_counter() - start


@pytest.mark.skipif(NVCC is None, reason="nvcc not found (no CUDA toolkit on PATH, CUDA_HOME or /usr/local/cuda): "
                                        "the CUDA kernels were not compile-checked")
def test_cuda_sources_compile_for_sm80_and_sm90_without_warnings() -> None:
    jobs = [(source, defines, arch) for source, defines in VARIANTS for arch in ARCHS]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(lambda job: _compile(NVCC, *job, tmp), jobs))
    failures = [f"{label}:\n{log}" for label, rc, log, _ in results if rc != 0]
    assert not failures, "nvcc failed (warnings are errors):\n\n" + "\n\n".join(failures)
    slowest = max(results, key=lambda r: r[3])
    print(f"\n{len(jobs)} nvcc compiles in {time.perf_counter() - start:.1f} s "
          f"(slowest: {slowest[0]}, {slowest[3]:.1f} s)")


@pytest.mark.skipif(NVCC is None, reason="nvcc not found: the fused-kernel template was not compile-checked")
def test_generated_fused_kernels_compile_for_sm80_and_sm90_without_warnings() -> None:
    import numpy as np
    from tensorcore.backends.cuda_ops.fused import source

    from tensorcore.ops.fusable import FUSABLE, FusedProgram

    # every fusable op once, in one chain over two inputs and a scalar, in both float types
    steps, prev = [], ("in", 0)
    for name, rule in FUSABLE.items():
        operands = (prev,) if rule.arity == 1 else (prev, ("in", 1) if len(steps) % 2 else ("scalar", 0))
        steps.append((name, operands))
        prev = ("step", len(steps) - 1)
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in (np.float32, np.float64):
            program = FusedProgram(tuple(steps), 2, (0.5,), np.dtype(dtype), (7, 3))
            path = Path(tmp) / f"fused_{np.dtype(dtype).name}.cu"
            path.write_text(source(program))
            for arch in ARCHS:
                proc = subprocess.run([NVCC, f"-arch={arch}", "--ptx", "-Werror", "all-warnings", str(path),
                                       "-o", str(path.with_suffix(f".{arch}.ptx"))], capture_output=True, text=True, timeout=300)
                assert proc.returncode == 0, f"{path.name} {arch}:\n{proc.stdout}{proc.stderr}\n{path.read_text()}"
