"""Every op of the op table (``OPS``), by family: fuzzed with its spec, or skipped with the
reason. ``tests/test_fuzz_coverage.py`` checks that no op is missing from both."""

from __future__ import annotations

from fuzz import table_elementwise, table_linalg, table_movement, table_nn, table_reduce
from fuzz.spec import Spec

FAMILIES: dict[str, dict[str, Spec]] = {
    "elementwise": {s.name: s for s in table_elementwise.SPECS},
    "reduce": {s.name: s for s in table_reduce.SPECS},
    "movement": {s.name: s for s in table_movement.SPECS},
    "nn": {s.name: s for s in table_nn.SPECS},
    "linalg": {s.name: s for s in table_linalg.SPECS},
}
SPECS: dict[str, Spec] = {name: spec for family in FAMILIES.values() for name, spec in family.items()}

SKIPPED = {
    "all_reduce": "a collective: it meets the other replicas of a group in their threads (tests/test_distribute.py)",
    # The fuzz tests draw real dtypes only (fuzz/values.py); complex numbers are tests/test_complex*.py's.
    "real": "complex inputs only (a real tensor never reaches the op): tests/test_complex.py",
    "imag": "complex inputs only (a real tensor never reaches the op): tests/test_complex.py",
    "conj": "complex inputs only (a real tensor never reaches the op): tests/test_complex.py",
    **{f"fft.{name}": "complex inputs or outputs: tests/test_fft.py and tests/test_fft_grad.py"
       for name in ("fftn", "ifftn", "rfftn", "irfftn")},
}
