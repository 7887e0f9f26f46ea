"""PoCL's kernel cache: where it is, which of its files are damaged, and what tensorcore checks
after a process that used it died.

PoCL, the OpenCL driver for CPUs, keeps every program it compiles on disk, in
``<top>/<two letters>/<hash>/``: ``program.bc`` (LLVM bitcode) and, per kernel and work-group
variant, ``<kernel>/<variant>/<kernel>.so``. A truncated file there (a full disk, a power cut)
is not rebuilt: PoCL aborts (SIGABRT, a failed assertion while reading ``program.bc``) or dies
of SIGBUS (mapping a short ``.so``) in every later process that loads it, with no message and
nothing Python can catch. So tensorcore never lets a process load such a file knowingly:

- files are checked by reading them, never by loading them: an ELF ``.so`` must be as long as
  its headers and segments say, a ``program.bc`` must hold whole bitcode blocks (``problem``);
- each process that starts the OpenCL backend leaves a marker, removed when it exits
  (``mark_running``). A marker whose process is gone means that process died without exiting
  (a crash, or a kill); the next process then checks every ``program.bc`` and the ``.so``
  files of the programs PoCL loaded since the dead one started (PoCL touches each program's
  ``last_accessed`` when it loads it), which are the files that could have killed it;
- damaged files are recorded (``damage.json``) until they change or go, so later runs report
  them without checking again, and OpenCL devices that use that cache are listed unavailable
  with the folder to delete (tensorcore never deletes PoCL's files itself).

Checking costs ~0.05 s per 1,000 programs to list, ~0.1 s per 1,000 ``program.bc`` to read
(warm disk cache; the first read of a large cold cache takes seconds), and runs only after a
process died or when the driver check (``opencl_probe``) crashed.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import struct
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

PLATFORM = "Portable Computing Language"  # PoCL's OpenCL platform name
_BITCODE_MAGIC = b"BC\xc0\xde"
_MODULE_BLOCK = 8  # LLVM's MODULE_BLOCK_ID: every bitcode file has one


def kernel_cache_dir(env: Mapping[str, str]) -> Path | None:
    """The kernel cache PoCL uses under environment ``env`` (as PoCL finds it:
    ``POCL_CACHE_DIR``, else ``$XDG_CACHE_HOME/pocl/kcache``, else ``~/.cache/pocl/kcache``),
    or None when ``POCL_KERNEL_CACHE=0`` turns it off."""
    if env.get("POCL_KERNEL_CACHE", "1").strip() == "0":
        return None
    if env.get("POCL_CACHE_DIR"):
        return Path(env["POCL_CACHE_DIR"])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "pocl" / "kcache"


# --- is a file damaged? ------------------------------------------------------------------------
def problem(path: Path) -> str | None:
    """What is wrong with PoCL cache file ``path`` (a ``.so`` or ``program.bc``), or None if it
    is whole (or gone, or of another kind). Reads a few headers; never loads the file."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if path.suffix == ".so":
                return _elf_problem(f, size)
            if path.name == "program.bc":
                return _bitcode_problem(f, size)
    except OSError:
        return None  # gone meanwhile, or unreadable: nothing PoCL would load either
    return None


def _elf_problem(f: Any, size: int) -> str | None:
    """A 64-bit ELF file must reach the end of its program headers, segments and section headers."""
    head = f.read(64)
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:
        return f"not a whole 64-bit ELF file ({size} bytes)"
    order = "<" if head[5] == 1 else ">"
    phoff, shoff = struct.unpack_from(order + "QQ", head, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from(order + "HHHH", head, 0x36)
    need = max(phoff + phentsize * phnum, shoff + shentsize * shnum)
    if phoff + phentsize * phnum <= size and phentsize >= 40:
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        for i in range(phnum):  # each segment's bytes in the file: p_offset (+8) and p_filesz (+32)
            offset, = struct.unpack_from(order + "Q", table, i * phentsize + 8)
            filesz, = struct.unpack_from(order + "Q", table, i * phentsize + 32)
            need = max(need, offset + filesz)
    return f"truncated: {size:,} bytes of at least {need:,}" if size < need else None


def _bitcode_problem(f: Any, size: int) -> str | None:
    """LLVM bitcode is a sequence of top-level blocks, each giving its length in 32-bit words;
    a whole file holds every block it starts, and a module block."""
    if f.read(4) != _BITCODE_MAGIC:
        return f"not LLVM bitcode ({size} bytes)"
    if size % 4:
        return f"truncated: {size:,} bytes is not a whole number of 32-bit words"
    pos, blocks = 4, []
    while pos + 4 <= size:
        f.seek(pos)
        head = f.read(16)
        bits = int.from_bytes(head[:8].ljust(8, b"\0"), "little")  # bitstream fields run from the low bit
        if bits & 0xFFFFFFFF == 0:
            break  # zero padding after the last block
        if bits & 3 != 1:  # ENTER_SUBBLOCK, abbreviation width 2 at the top level
            return f"damaged: no bitcode block at byte {pos}"
        used, block_id, shift = 2, 0, 0
        bits >>= 2
        while True:  # block id: VBR8
            chunk, bits, used = bits & 0xFF, bits >> 8, used + 8
            block_id |= (chunk & 0x7F) << shift
            shift += 7
            if not chunk & 0x80 or used > 40:
                break
        while True:  # the block's abbreviation width: VBR4
            chunk, bits, used = bits & 0xF, bits >> 4, used + 4
            if not chunk & 0x8 or used > 56:
                break
        length_at = -(-used // 32) * 4  # aligned to 32 bits, then the length in words
        if pos + length_at + 4 > size or length_at + 4 > len(head):
            return f"truncated: {size:,} bytes end inside a block header at byte {pos}"
        end = pos + length_at + 4 + 4 * int.from_bytes(head[length_at:length_at + 4], "little")
        if end > size:
            return f"truncated: {size:,} bytes of at least {end:,} (block {block_id} is cut off)"
        blocks.append(block_id)
        pos = end
    return None if _MODULE_BLOCK in blocks else f"damaged: no module block in {size:,} bytes"


# --- which files to check -------------------------------------------------------------------
def programs(top: Path) -> Iterator[tuple[Path, float]]:
    """Each program folder ``<top>/<xx>/<hash>`` with the time PoCL last loaded it (0 if unknown)."""
    try:
        buckets = [e for e in os.scandir(top) if e.is_dir(follow_symlinks=False) and len(e.name) == 2]
    except OSError:
        return
    for bucket in buckets:
        try:
            folders = [e for e in os.scandir(bucket.path) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for folder in folders:
            try:
                used = os.stat(os.path.join(folder.path, "last_accessed")).st_mtime
            except OSError:
                used = 0.0
            yield Path(folder.path), used


def _binaries(program: Path) -> Iterator[Path]:
    for root, _, files in os.walk(program):
        for name in files:
            if name.endswith(".so"):
                yield Path(root) / name


def scan(top: Path, since: float) -> dict[str, str]:
    """Damaged files of the cache at ``top`` that could have killed a process started at time
    ``since``: any ``program.bc`` (PoCL reads it before it records the use), and the ``.so``
    files of the programs loaded since. Path -> problem."""
    found: dict[str, str] = {}
    for program, used in programs(top):
        files = [program / "program.bc"] + (list(_binaries(program)) if used >= since else [])
        for path in files:
            why = problem(path)
            if why:
                found[str(path)] = why
    return found


def check_programs(top: Path, names: list[str]) -> dict[str, str]:
    """Damaged files in the program folders ``names`` (``"xx/hash"``) of the cache at ``top``."""
    found: dict[str, str] = {}
    for name in names:
        program = top / name
        for path in [program / "program.bc", *_binaries(program)]:
            why = problem(path)
            if why:
                found[str(path)] = why
    return found


def program_names(top: Path) -> list[str]:
    """The program folders (``"xx/hash"``) of the cache at ``top``."""
    return sorted(f"{p.parent.name}/{p.name}" for p, _ in programs(top))


def _program_folder(top: Path, path: Path) -> Path:
    """The program folder ``<top>/<xx>/<hash>`` that holds ``path`` (its parent if elsewhere)."""
    if path.is_relative_to(top) and len(path.relative_to(top).parts) > 2:
        return top.joinpath(*path.relative_to(top).parts[:2])
    return path.parent


def describe(top: Path, found: Mapping[str, str]) -> str:
    """The reason and the fix, for a device whose PoCL cache holds the damaged files ``found``."""
    folders = sorted({str(_program_folder(top, Path(p))) for p in found})
    path, why = min(found.items())
    more = f" and {len(found) - 1} more" if len(found) > 1 else ""
    return (f"PoCL's kernel cache {top} holds a damaged file ({path}: {why}){more}, and PoCL aborts any "
            f"process that loads one. Fix: delete {' and '.join(folders)} (or the whole folder {top}); PoCL "
            f"then compiles those kernels again")


# --- small JSON files, written atomically ---------------------------------------------------------
def read_json(path: Path) -> Any:
    """The JSON value in ``path``, or None if it is missing, unreadable or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, value: Any) -> bool:
    """Write ``value`` to ``path`` atomically (a temporary file, then a rename), so a reader
    sees the old file or the new one, never half of one. False if the folder is not writable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(value, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return False
    return True


# --- damage found earlier -------------------------------------------------------------------------
def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def record_damage(cache: Path, top: Path, found: Mapping[str, str]) -> None:
    """Remember ``found`` (path -> problem) in the cache at ``top`` until those files change."""
    record = read_json(cache / "damage.json")
    record = record if isinstance(record, dict) else {}
    entries = record.get(str(top)) if isinstance(record.get(str(top)), dict) else {}
    entries.update({p: [why, _stamp(p)] for p, why in found.items() if _stamp(p) is not None})
    record[str(top)] = entries
    write_json(cache / "damage.json", record)


def known_damage(cache: Path, top: Path) -> dict[str, str]:
    """The recorded damage of the cache at ``top`` that is still there (same size and time);
    entries whose file changed or went are dropped."""
    record = read_json(cache / "damage.json")
    if not isinstance(record, dict) or not isinstance(record.get(str(top)), dict):
        return {}
    entries = record[str(top)]
    still = {p: e for p, e in entries.items()
             if isinstance(e, list) and len(e) == 2 and e[1] is not None and _stamp(p) == e[1]}
    if still != entries:
        if still:
            record[str(top)] = still
        else:
            del record[str(top)]
        write_json(cache / "damage.json", record) if record else _unlink(cache / "damage.json")
    return {p: str(e[0]) for p, e in still.items()}


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


# --- processes that died --------------------------------------------------------------------------
def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot; Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(marker: Mapping[str, Any]) -> bool:
    pid = marker.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process: it exists
    ticks = marker.get("ticks")
    return ticks is None or _start_ticks(pid) in (None, ticks)


def mark_running(cache: Path, top: Path | None) -> None:
    """Leave this process's marker (removed when it exits normally) for the PoCL cache ``top``."""
    pid = os.getpid()
    path = cache / "opencl-running" / f"{socket.gethostname()}-{pid}.json"
    if write_json(path, {"pid": pid, "ticks": _start_ticks(pid), "started": time.time(),
                         "pocl_cache": None if top is None else str(top)}):
        atexit.register(_remove_marker, path, pid)


def _remove_marker(path: Path, pid: int) -> None:
    if os.getpid() == pid:  # not in a forked child that exits normally: the parent still runs
        _unlink(path)


def check_after_crashes(cache: Path) -> None:
    """If processes on this host that used OpenCL died without exiting, check the PoCL caches
    they used for the files that could have killed them, and record what is damaged."""
    folder = cache / "opencl-running"
    host = socket.gethostname() + "-"
    try:
        names = [n for n in os.listdir(folder) if n.startswith(host) and n.endswith(".json")]
    except OSError:
        return
    dead = []
    for name in names:
        marker = read_json(folder / name)
        if not isinstance(marker, dict) or not _alive(marker):
            dead.append((folder / name, marker if isinstance(marker, dict) else {}))
    since: dict[str, float] = {}
    for _, marker in dead:
        top, started = marker.get("pocl_cache"), marker.get("started")
        if isinstance(top, str) and isinstance(started, (int, float)):
            since[top] = min(since.get(top, started), started - 1.0)
    for top, start in since.items():
        found = scan(Path(top), start)
        if found:
            record_damage(cache, Path(top), found)
    for path, _ in dead:  # checked: the record keeps what they found
        _unlink(path)
