"""The fuzz tables cover the whole op table: every op is fuzzed or skipped with a reason."""

from __future__ import annotations

from fuzz.table import FAMILIES, SKIPPED, SPECS

from tensorcore.ops.registry import OPS


def test_every_op_is_fuzzed_or_skipped_with_a_reason() -> None:
    """A new op must get a spec in tests/fuzz/table_*.py (or a reason in ``SKIPPED``)."""
    # Only tensorcore's own ops: other test modules register custom ops (test_scale, ...) in this process.
    own = {name for name, op in OPS.items()
           if not str(getattr(op.reference, "__module__", "")).startswith(("test_", "__main__", "support"))}
    missing = sorted(own - set(SPECS) - set(SKIPPED))
    assert not missing, f"ops with no fuzz spec and no reason to skip them: {missing}"
    assert not set(SPECS) - set(OPS), f"specs of ops that do not exist: {sorted(set(SPECS) - set(OPS))}"
    assert not set(SPECS) & set(SKIPPED), "an op is both fuzzed and skipped"
    assert all(reason for reason in SKIPPED.values())


def test_each_op_is_in_one_family() -> None:
    """Family tables do not overlap, so each op runs in exactly one test module."""
    assert sum(len(f) for f in FAMILIES.values()) == len(SPECS)
