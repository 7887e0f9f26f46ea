"""Every Array API function's signature as the standard writes it: parameter names, the
positional-only and keyword-only markers, and defaults, against array-api-strict (the
standard's reference namespace), for the main namespace and the ``linalg`` and ``fft``
extensions."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import tensorcore as tc

xp = pytest.importorskip("array_api_strict")

# Where tensorcore deliberately differs, and why.
ACCEPTED = {
    # 2023.12 and 2024.12 write `axis: int = 0` (keyword-only in 2024.12); array-api-strict
    # follows the draft (`axis` required, positional or keyword). Ours takes all of these.
    "expand_dims": [("x", inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.empty),
                    ("axis", inspect.Parameter.POSITIONAL_OR_KEYWORD, 0)],
}
# array-api-strict's own utilities, not part of the standard.
NOT_SPEC = {"get_array_api_strict_flags", "reset_array_api_strict_flags", "set_array_api_strict_flags"}


def _functions(namespace: Any) -> list[str]:
    """The functions ``namespace`` exports (``__all__``: its modules import helpers too)."""
    names = getattr(namespace, "__all__", dir(namespace))
    return sorted(n for n in names if not n.startswith("_") and n not in NOT_SPEC
                  and callable(getattr(namespace, n)) and not isinstance(getattr(namespace, n), type))


def _shape(fn: Any) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of each parameter; a sentinel default (array-api-strict's
    ``Undef``, meaning "not given") reads as None, which is ours."""
    out = []
    for p in inspect.signature(fn).parameters.values():
        default = p.default
        if default is not inspect.Parameter.empty and type(default).__name__ == "Undef":
            default = None
        out.append((p.name, p.kind, default))
    return out


def _text(fn: Any) -> str:
    return "(" + ", ".join(str(p).split(":")[0].split("=")[0].strip() + (f"={p.default!r}" if p.default is not inspect.Parameter.empty else "")
                           for p in inspect.signature(fn).parameters.values()) + ")"


@pytest.mark.parametrize("module", ["", "linalg", "fft"])
def test_every_function_has_the_standards_signature(module: str) -> None:
    ref = getattr(xp, module) if module else xp
    mine = getattr(tc, module) if module else tc
    missing = [n for n in _functions(ref) if not hasattr(mine, n)]
    assert not missing, f"not in tensorcore{'.' + module if module else ''}: {missing}"
    wrong = []
    for name in _functions(ref):
        ours = getattr(mine, name)
        expected = ACCEPTED[name] if name in ACCEPTED and not module else _shape(getattr(ref, name))
        if _shape(ours) != expected:
            wrong.append(f"{name}: standard {_text(getattr(ref, name))}, tensorcore {_text(ours)}")
    assert not wrong, "\n".join(wrong)


def test_elementwise_functions_check_their_arity() -> None:
    with pytest.raises(TypeError):
        tc.sin(tc.ones(2), tc.ones(2))
    with pytest.raises(TypeError):
        tc.add(tc.ones(2))
    with pytest.raises(TypeError):
        tc.add(x1=tc.ones(2), x2=tc.ones(2))  # positional-only, as the standard writes them
