"""Warn when a traced function changes a list, dict or set captured from outside.

Such a change happens once, while tracing, not each time the graph runs: ``losses.append(loss)``
inside a ``tc.function`` appends one traced tensor, then never again. TensorFlow has the same
trap. The function's closure cells and the globals its code names are snapshotted before the
trace and compared after it.
"""

from __future__ import annotations

import inspect
import re
import types
import warnings
from collections.abc import Callable
from typing import Any

_CONTAINERS = (list, dict, set)


def _names(code: types.CodeType) -> set[str]:
    """Global names read by ``code`` and the code nested in it (lambdas, inner functions)."""
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _names(const)
    return found


def _snapshot(value: Any) -> Any:
    if isinstance(value, dict):
        return [(k, id(v)) for k, v in value.items()]
    return [id(v) for v in value]


class CapturedContainers:
    """The containers ``fn`` captures (closure cells and globals), as they were when created."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = inspect.unwrap(fn)
        self.watched: dict[str, tuple[Any, Any]] = {}
        code = getattr(self.fn, "__code__", None)
        if code is None:
            return
        cells = zip(code.co_freevars, self.fn.__closure__ or ())
        candidates = {name: _cell_value(cell) for name, cell in cells}
        module_globals = getattr(self.fn, "__globals__", {})
        candidates.update({n: module_globals[n] for n in _names(code) if n in module_globals and n not in candidates})
        for name, value in candidates.items():
            if type(value) in _CONTAINERS:
                self.watched[name] = (value, _snapshot(value))

    def warn_if_changed(self, fn_name: str) -> None:
        """Warn, naming the variable and the line, for each captured container the trace changed."""
        for name, (value, before) in self.watched.items():
            if _snapshot(value) != before:
                warnings.warn(
                    f"tc.function {fn_name!r} changed {type(value).__name__} {name!r}, captured from outside, "
                    f"while tracing ({self._line(name)}). That happens once, at trace time, not each time the "
                    "graph runs: return the values from the function instead, or keep state in tc.Variable",
                    stacklevel=4)

    def _line(self, name: str) -> str:
        """``file:line: source`` of the first line of the function that seems to change ``name``."""
        try:
            lines, start = inspect.getsourcelines(self.fn)
            filename = inspect.getsourcefile(self.fn)
        except (OSError, TypeError):
            return "line unknown"
        change = re.compile(rf"\b{re.escape(name)}\s*(\.\s*(append|extend|insert|pop|remove|clear|update|add|"
                            rf"setdefault|discard|sort|reverse)\b|\[[^\]]*\]\s*=[^=]|\+=|-=|\|=)")
        for offset, text in enumerate(lines):
            if change.search(text):
                return f"{filename}:{start + offset}: {text.strip()}"
        return f"in {filename}:{start}"


def _cell_value(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell (a variable assigned later)
        return None
