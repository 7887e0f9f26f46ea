"""An OpenCL device's programs: built from ``kernels/opencl/`` (or generated text) once per
(source, build options), their kernels cached and their scalar argument types declared.

``ProgramCache`` is a part of ``CLDevice`` (``opencl.py``), apart so that each file reads in
one sitting; it uses the device's ``cl``, ``context``, ``index``, ``name``, ``_kernels``
(the cache) and ``_build_lock`` (one build at a time per device, each entry built once and
published complete).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from tensorcore.errors import KernelBuildError

# OpenCL C scalar type names -> NumPy dtypes (vector types come from pyopencl.cltypes).
_SCALAR_TYPES = {
    "char": np.int8, "uchar": np.uint8, "short": np.int16, "ushort": np.uint16, "int": np.int32,
    "uint": np.uint32, "long": np.int64, "ulong": np.uint64, "float": np.float32, "double": np.float64,
    "size_t": np.uint64,
}


class ProgramCache:
    """Building and caching an OpenCL device's programs and kernels (mixed into ``CLDevice``)."""

    cl: Any
    context: Any
    index: int
    name: str
    _kernels: dict[tuple, Any]
    _build_lock: Any

    def kernel(self, source: str, name: str, defines: tuple[tuple[str, str], ...] = ()) -> Any:
        """Kernel ``name`` of ``kernels/opencl/<source>``, built with ``-D`` ``defines``; cached."""
        key = (source, name, defines)
        kernel = self._kernels.get(key)
        if kernel is None:
            with self._build_lock:
                kernel = self._kernels.get(key)  # another thread may have built it meanwhile
                if kernel is None:
                    kernel = getattr(self._program(source, defines), name)
                    self._declare_scalar_types(kernel)
                    self._kernels[key] = kernel  # published complete: any thread may launch it now
        return kernel

    def generated_kernel(self, label: str, text: str, name: str, options: tuple[str, ...] = ()) -> Any:
        """Kernel ``name`` of generated OpenCL C ``text`` (``label`` names it in build errors),
        built once per (text, options)."""
        key = ("<generated>", text, (name,) + options)
        kernel = self._kernels.get(key)
        if kernel is None:
            with self._build_lock:
                kernel = self._kernels.get(key)
                if kernel is None:
                    kernel = getattr(self.build(label, text, list(options)), name)
                    self._declare_scalar_types(kernel)
                    self._kernels[key] = kernel
        return kernel

    def _declare_scalar_types(self, kernel: Any) -> None:
        """Declare each by-value argument's type once (read from the compiled kernel): pyopencl
        then sets arguments in ~0.5 us instead of ~15 us per launch."""
        import pyopencl.cltypes as cltypes

        info = self.cl.kernel_arg_info
        private = self.cl.kernel_arg_address_qualifier.PRIVATE
        dtypes: list[Any] = []
        for i in range(kernel.num_args):
            if kernel.get_arg_info(i, info.ADDRESS_QUALIFIER) != private:
                dtypes.append(None)  # a buffer
                continue
            name = kernel.get_arg_info(i, info.TYPE_NAME).strip()
            dtype = _SCALAR_TYPES.get(name) or getattr(cltypes, name, None)
            if dtype is None:
                return  # a type we do not know: leave pyopencl's generic path
            dtypes.append(dtype)
        kernel.set_scalar_arg_dtypes(dtypes)

    def _program(self, source: str, defines: tuple[tuple[str, str], ...]) -> Any:
        """The built program (callers hold ``_build_lock``; cached once built)."""
        from tensorcore.kernels import KERNEL_DIR

        key = (source, "", defines)
        program = self._kernels.get(key)
        if program is None:
            text = (KERNEL_DIR / "opencl" / source).read_text()
            program = self._kernels[key] = self.build(source, text, [f"-D{k}={v}" for k, v in defines])
        return program

    def build(self, source: str, text: str, options: list[str]) -> Any:
        """Compile OpenCL C ``text`` (named ``source`` in errors); raises KernelBuildError."""
        from tensorcore.kernels import KERNEL_DIR

        options = options + ["-cl-kernel-arg-info", "-I", str(KERNEL_DIR / "opencl")]
        try:
            return self.cl.Program(self.context, text).build(options=options)
        except self.cl.RuntimeError as exc:  # a compile error
            raise _build_error(source, text, f"opencl:{self.index} ({self.name})", options, str(exc)) from None
        except Exception as exc:  # pyopencl's compiler cache failed (a damaged entry): build from source
            from tensorcore.backends.pyopencl_cache import warn_compiler_cache

            warn_compiler_cache(exc)
        try:
            return self.cl.Program(self.context, text).build(options=options, cache_dir=False)
        except self.cl.Error as exc:
            raise _build_error(source, text, f"opencl:{self.index} ({self.name})", options, str(exc)) from None


def _build_error(source: str, text: str, device: str, options: list[str], log: str) -> KernelBuildError:
    lines = text.splitlines()
    where = ""
    m = re.search(r"(?:<source>|\.cl|\.h):(\d+):(\d+):", log)  # PoCL names a temp file
    if m and 0 < int(m.group(1)) <= len(lines):
        where = f"\n{source}:{m.group(1)}: {lines[int(m.group(1)) - 1].strip()}"
    return KernelBuildError(f"kernel source {source} failed to build on {device} with options "
                            f"{' '.join(options)}:{where}\ncompiler log:\n{log.strip()}")
