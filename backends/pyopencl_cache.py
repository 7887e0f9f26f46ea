"""pyopencl's own disk caches, and how tensorcore goes on when one of them is damaged.

pyopencl keeps two caches on disk. Its *invoker cache*, a SQLite file of pytools
(``~/.cache/pytools/pdict-v5-pyopencl-invoker-cache-*.sqlite``), holds the Python code that sets
a kernel's arguments; every kernel goes through it. If the file is damaged (a crash while it
was written, a full disk), its import fails with ``sqlite3.DatabaseError: file is not a
database`` and so does every kernel, in every run. Its *compiler cache*
(``~/.cache/pyopencl/pyopencl-compiler-cache-*``) holds program binaries for drivers without a
cache of their own (not PoCL, not NVIDIA's); a damaged entry there fails the build.

``guard_invoker_cache`` opens the invoker cache before any kernel is made and wraps it: if
it cannot be opened, or a read or write fails later, the process goes on with an in-memory
cache (the code is generated again, ~1 ms per kernel), with one warning that names the file
to delete. ``CLDevice.build`` rebuilds from source, with the compiler cache off, when a
build fails for any reason but a compile error (``warn_compiler_cache``). tensorcore never
deletes these files itself.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import warnings
from typing import Any

_warned: set[str] = set()
_lock = threading.Lock()


class _GuardedCache:
    """pyopencl's invoker cache as pyopencl uses it (``cache[key]``, ``store_if_not_present``):
    the disk cache while it works, an in-memory one after its first failure."""

    def __init__(self, disk: Any, path: str) -> None:
        self.disk, self.path, self.memory = disk, path, {}

    def __getitem__(self, key: Any) -> Any:
        if self.disk is not None:
            try:
                return self.disk[key]
            except KeyError:
                raise
            except Exception as exc:  # sqlite3.DatabaseError, OSError, a damaged pickle
                self._failed(exc)
        return self.memory[key]

    def store_if_not_present(self, key: Any, value: Any) -> None:
        if self.disk is not None:
            try:
                self.disk.store_if_not_present(key, value)
                return
            except Exception as exc:
                self._failed(exc)
        self.memory.setdefault(key, value)

    def _failed(self, exc: BaseException) -> None:
        self.disk = None
        _warn_invoker(self.path, exc)


def _sqlite_file(exc: BaseException) -> str:
    """The database file a pytools error was about (read from the failing frame's ``self``)."""
    tb = exc.__traceback__
    while tb is not None:
        filename = getattr(tb.tb_frame.f_locals.get("self"), "filename", None)
        if isinstance(filename, str) and filename.endswith(".sqlite"):
            return filename
        tb = tb.tb_next
    try:
        import platformdirs

        return f"pdict-v5-pyopencl-invoker-cache-*.sqlite in {platformdirs.user_cache_dir('pytools', 'pytools')}"
    except ImportError:
        return "pyopencl's invoker cache (pytools' cache folder)"


def _warn_once(key: str, message: str) -> None:
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _warn_invoker(path: str, exc: BaseException) -> None:
    _warn_once(path, f"pyopencl's kernel-call cache {path} cannot be used ({type(exc).__name__}: {exc}); tensorcore "
                     f"goes on without it in this process (the code it holds is generated again for each kernel). "
                     f"Delete {path} to restore it.")


def guard_invoker_cache() -> None:
    """Open pyopencl's invoker cache now and make its failures non-fatal (see the module's
    docstring). Call before making any kernel; calling again does nothing."""
    import pyopencl as cl

    module = sys.modules.get("pyopencl.invoker")
    if module is not None and isinstance(getattr(module, "invoker_cache", None), _GuardedCache):
        return
    try:
        import pyopencl.invoker as invoker
    except sqlite3.Error as exc:  # the module opens the database as it is imported
        path = _sqlite_file(exc)
        if not hasattr(cl, "_PYOPENCL_NO_CACHE"):
            raise RuntimeError(f"pyopencl's kernel-call cache {path} is damaged ({exc}); delete it") from exc
        saved = cl._PYOPENCL_NO_CACHE
        cl._PYOPENCL_NO_CACHE = True  # import the module without opening the database...
        try:
            import pyopencl.invoker as invoker
        finally:
            cl._PYOPENCL_NO_CACHE = saved
        invoker.invoker_cache = _GuardedCache(None, path)  # ...and give it a cache in memory
        _warn_invoker(path, exc)
        return
    disk = getattr(invoker, "invoker_cache", None)
    if disk is not None and not isinstance(disk, _GuardedCache):
        invoker.invoker_cache = _GuardedCache(disk, str(getattr(disk, "filename", "pyopencl's invoker cache")))


def warn_compiler_cache(exc: BaseException) -> None:
    """A build failed for another reason than a compile error: say so once, naming the folder
    of pyopencl's compiler cache (the caller rebuilds with that cache off)."""
    try:
        import platformdirs

        folder = platformdirs.user_cache_dir("pyopencl", "pyopencl")
    except ImportError:
        folder = "pyopencl's compiler cache"
    _warn_once("compiler", f"building an OpenCL program through pyopencl's compiler cache failed ({type(exc).__name__}: "
                           f"{exc}); tensorcore builds from source without that cache in this process. If this "
                           f"repeats, delete {folder}.")
