"""Run one fuzz case on one device and judge it against NumPy.

For each drawn :class:`~fuzz.spec.Case`: the op's NumPy reference runs on the NumPy views;
the device runs the op through dispatch on the same views built there with tensorcore ops.
If the reference refuses the inputs, the device must refuse them too, with an ``OpError``
naming the op (raised at the call or, on an asynchronous device, at the next read). Either
way, the device inputs (their base tensors) must be unchanged afterwards, bit for bit.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import tensorcore as tc
from fuzz.spec import Spec, Tol
from fuzz.values import Arg
from tensorcore.dispatch import apply, apply_inplace
from tensorcore.ops.registry import OPS

DEFAULT_EXAMPLES = 8  # per op and device in the default run; `pytest --fuzz-examples N` for long runs


@contextmanager
def quiet() -> Any:
    """NumPy's floating-point warnings and placement's fallback warnings are not under test."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def outputs(value: Any) -> list:
    """An op's result as a list of its outputs."""
    return list(value) if isinstance(value, (tuple, list)) else [value]


def _mismatch(actual: np.ndarray, expected: np.ndarray, bad: np.ndarray, what: str) -> str:
    """The message of a failed comparison: how many elements differ, and the first few."""
    where = np.argwhere(bad)[:8]
    lines = [f"{what}: {int(bad.sum())} of {bad.size} elements differ (shape {expected.shape}, {expected.dtype})"]
    for idx in where:
        i = tuple(int(v) for v in idx)
        a, e = actual[i], expected[i]
        ulp = ""
        if expected.dtype.kind == "f" and np.isfinite(e) and np.isfinite(a):
            ulp = f" ({abs(float(a) - float(e)) / float(np.spacing(np.abs(e))):.3g} ulp)"
        lines.append(f"  at {i}: got {a!r}, expected {e!r}{ulp}")
    return "\n".join(lines)


def assert_agrees(actual: np.ndarray, expected: np.ndarray, tol: Tol, bound: Any = None, what: str = "result") -> None:
    """``actual`` equals ``expected`` as ``tol`` says (see :mod:`fuzz.spec`)."""
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype}, expected {expected.dtype}"
    if expected.dtype.kind != "f":
        bad = actual != expected
        assert not bad.any(), _mismatch(actual, expected, bad, what)
        return
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    bad = nan_a != nan_e
    numbers = ~nan_a & ~nan_e
    if tol.exact:
        bad |= numbers & (a != e)
        if tol.signed_zeros:
            bad |= numbers & (np.signbit(a) != np.signbit(e))
    else:
        infinite = numbers & (np.isinf(a) | np.isinf(e))
        bad |= infinite & (a != e)
        finite = numbers & ~infinite
        with np.errstate(invalid="ignore", over="ignore"):
            allowed = tol.ulps * np.spacing(np.abs(expected)).astype(np.float64)
            if bound is not None:
                allowed = allowed + np.broadcast_to(bound, e.shape)
            bad |= finite & ~(np.abs(a - e) <= allowed)
    assert not bad.any(), _mismatch(actual, expected, bad, what)


def _reference(spec: Spec, args: list, attrs: dict) -> Any:
    """The expected outputs (a list of arrays), or the exception the reference raised."""
    op = OPS[spec.name]
    if spec.inplace:  # the reference writes into its inputs: into copies, so the bounds see the originals
        args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    try:
        with quiet():
            if spec.reference is not None:
                return outputs(spec.reference(op, args, attrs))
            if spec.inplace:
                op.reference(*args, **attrs)
                return [args[0]] + [args[1 + i] for i in op.mutates if args[1 + i] is not None]
            return [np.asarray(o) for o in outputs(op.reference(*args, **attrs))]
    except Exception as exc:  # noqa: BLE001 - any refusal: the device must refuse too
        return exc


def _run(spec: Spec, device: str, inputs: list, attrs: dict) -> list:
    """The op on ``device``: its outputs (or, in place, the tensors it writes), read back."""
    op = OPS[spec.name]
    with quiet():
        if spec.call is not None:
            outs = outputs(spec.call(op, inputs, attrs, device))
        elif spec.inplace:
            apply_inplace(op, inputs[0], tuple(inputs[1:]), attrs)
            outs = [inputs[0]] + [inputs[1 + i] for i in op.mutates if inputs[1 + i] is not None]
        else:
            outs = outputs(apply(op, tuple(inputs), attrs))
        for o in outs:
            assert str(o.device) == str(tc.Device(device)), f"{spec.name}: result on {o.device}, expected {device}"
        return [o.numpy() for o in outs]


def check_case(spec: Spec, case: Any, device: str) -> None:
    """Run ``case`` on ``device`` and judge it (see the module docstring)."""
    args = [a.numpy() if isinstance(a, Arg) else a for a in case.args]
    expected = _reference(spec, args, case.attrs)
    built = [a.tensor(device) if isinstance(a, Arg) else (None, a) for a in case.args]
    inputs = [view for _, view in built]
    written = {0} | {1 + i for i in OPS[spec.name].mutates} if spec.inplace else set()
    if isinstance(expected, Exception):
        _expect_refusal(spec, device, inputs, case.attrs, f"NumPy refuses them ({type(expected).__name__}: {expected})")
        written = set()  # a refused call writes nothing
    else:
        actual = _run(spec, device, inputs, case.attrs)
        assert len(actual) == len(expected), f"{len(actual)} outputs, expected {len(expected)}"
        with quiet():
            bounds = spec.tol.bound(OPS[spec.name], args, case.attrs, expected) if spec.tol.bound else [None] * len(expected)
        if spec.tol.mask is not None:
            keep = spec.tol.mask(args, case.attrs)
            actual[0], expected[0] = actual[0][keep], np.asarray(expected[0])[keep]
        if spec.tol.normalize is not None:
            actual, expected = spec.tol.normalize(actual), spec.tol.normalize([np.asarray(e) for e in expected])
        for k, (a, e, b) in enumerate(zip(actual, expected, bounds)):
            assert_agrees(a, e, spec.tol, b, what=f"{spec.name} on {device}, output {k}")
    for k, (a, (base, _)) in enumerate(zip(case.args, built)):
        if isinstance(a, Arg) and k not in written:
            assert base.numpy().tobytes() == a.base.tobytes(), f"{spec.name} on {device} changed input {k}"


def _expect_refusal(spec: Spec, device: str, inputs: list, attrs: dict, why: str) -> None:
    """The call must raise an ``OpError`` naming the op, at the call or at the next read."""
    try:
        _run(spec, device, inputs, attrs)
        tc.synchronize(device)
    except Exception as exc:  # noqa: BLE001 - which type is checked below
        err = exc
    else:
        pytest.fail(f"{spec.name} on {device} accepted inputs it must refuse: {why}")
    assert isinstance(err, tc.OpError), (
        f"{spec.name} on {device} refused the inputs with {type(err).__name__}: {err}; expected an OpError ({why})")
    assert any(n in str(err) for n in (spec.name.split(".")[-1],) + spec.names), \
        f"the error does not name {spec.name}: {err}"
    tc.synchronize(device)  # nothing else is pending


def check_refused(spec: Spec, case: Any, device: str) -> None:
    """``case`` is invalid by construction: ``device`` must refuse it (an ``OpError`` naming the
    op) and leave every input as it was, the target of an in-place op included."""
    built = [a.tensor(device) if isinstance(a, Arg) else (None, a) for a in case.args]
    _expect_refusal(spec, device, [view for _, view in built], case.attrs, "they are invalid")
    for k, (a, (base, _)) in enumerate(zip(case.args, built)):
        if isinstance(a, Arg):
            assert base.numpy().tobytes() == a.base.tobytes(), f"{spec.name} on {device} refused but changed input {k}"


def examples(config: pytest.Config, spec: Spec) -> int:
    """The example budget of ``spec``: ``--fuzz-examples`` if given, else the default scaled."""
    n = config.getoption("--fuzz-examples", default=None)
    return int(n) if n else max(1, math.ceil(DEFAULT_EXAMPLES * spec.examples))


def fuzz(spec: Spec, device: str, config: pytest.Config, check: Callable[..., None] = check_case,
         cases: st.SearchStrategy | None = None) -> None:
    """Run ``check(spec, case, device)`` on ``spec``'s cases (or ``cases``) under hypothesis.

    Derandomized: a fixed seed per op, and no example database, so a run (CI's included) tests
    the same examples every time and a failure reproduces with the same command.
    """

    @settings(max_examples=examples(config, spec), deadline=None, database=None, print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example, HealthCheck.filter_too_much])
    @seed(zlib.crc32(spec.name.encode()))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        check(spec, data.draw(cases if cases is not None else spec.cases, label=spec.name), device)

    run()
